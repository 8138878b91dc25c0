// WsTimer: a libuv timer owned by a C++ object. The handle lives on the heap and is freed in its
// close callback, so the owner may be destroyed at any time, even from inside the callback.
// The handle is made on the first Start(): a connection has several timers that most
// connections never start (slow reader, rate limit, close, token expiry), and an idle
// connection should not pay ~170 bytes for each. Loop thread only.
#pragma once

#include <uv.h>

#include <cstdint>

namespace quire::io::internal {

class WsTimer {
 public:
  using Fn = void (*)(void* arg);
  WsTimer(uv_loop_t* loop, Fn fn, void* arg) : loop_(loop), fn_(fn), arg_(arg) {}
  ~WsTimer() {
    if (handle_ == nullptr) return;
    handle_->data = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(handle_), &WsTimer::OnClose);
  }
  WsTimer(const WsTimer&) = delete;
  WsTimer& operator=(const WsTimer&) = delete;

  void Start(uint64_t timeout_ms, uint64_t repeat_ms = 0) {
    if (handle_ == nullptr) {
      handle_ = new uv_timer_t;
      uv_timer_init(loop_, handle_);
      handle_->data = this;
    }
    uv_timer_start(handle_, &WsTimer::OnFire, timeout_ms, repeat_ms);
  }
  void Stop() {
    if (handle_ != nullptr) uv_timer_stop(handle_);
  }
  bool active() const {
    return handle_ != nullptr && uv_is_active(reinterpret_cast<const uv_handle_t*>(handle_)) != 0;
  }

 private:
  static void OnFire(uv_timer_t* handle) noexcept {
    auto* self = static_cast<WsTimer*>(handle->data);
    if (self != nullptr) self->fn_(self->arg_);
  }
  static void OnClose(uv_handle_t* handle) noexcept {
    delete reinterpret_cast<uv_timer_t*>(handle);
  }

  uv_loop_t* loop_;
  Fn fn_;
  void* arg_;
  uv_timer_t* handle_ = nullptr;
};

}  // namespace quire::io::internal
