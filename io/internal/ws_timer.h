// WsTimer: a libuv timer owned by a C++ object. The handle lives on the heap and is freed in its
// close callback, so the owner may be destroyed at any time, even from inside the callback.
// The handle is made on the first Start(): a connection has several timers that most
// connections never start (slow reader, rate limit, close, token expiry), and an idle
// connection should not pay ~170 bytes for each. Loop thread only.
#pragma once

#include <uv.h>

#include <cstdint>
#include <limits>

namespace quire::io::internal {

class WsTimer {
 public:
  using Fn = void (*)(void* arg);
  WsTimer(uv_loop_t* loop, Fn fn, void* arg) : loop_(loop), fn_(fn), arg_(arg) {}
  ~WsTimer() { Release(); }
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
  // Stops the timer and frees its handle (closed asynchronously; the callback never runs
  // again). A later Start() makes a new one.
  void Release() {
    if (handle_ == nullptr) return;
    handle_->data = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(handle_), &WsTimer::OnClose);
    handle_ = nullptr;
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

// WsTimerSet: N one-shot deadlines of one owner on one WsTimer (so one libuv handle). A
// WebSocket connection has six (ping, idle, slow reader, rate close, close, token expiry);
// even an idle one arms two of them (ping, idle), and each handle costs ~170 bytes. The owner's
// callback runs when at least one deadline is due and calls TakeDue() to learn which ones. Loop
// thread only.
template <int N>
class WsTimerSet {
  static_assert(N > 0 && N <= 32, "deadlines are reported as a 32-bit mask");

 public:
  WsTimerSet(uv_loop_t* loop, WsTimer::Fn fn, void* arg) : loop_(loop), timer_(loop, fn, arg) {
    for (uint64_t& d : due_) d = kNever;
  }

  // (Re)arms deadline `slot` at `timeout_ms` from the loop's now.
  void Start(int slot, uint64_t timeout_ms) {
    due_[slot] = uv_now(loop_) + timeout_ms;
    Rearm();
  }
  void Stop(int slot) {
    if (due_[slot] == kNever) return;
    due_[slot] = kNever;
    Rearm();
  }
  void StopAll() {
    for (uint64_t& d : due_) d = kNever;
    timer_.Stop();
  }
  bool active(int slot) const { return due_[slot] != kNever; }

  // The deadlines due now (bit i: slot i), disarmed; the others stay armed.
  uint32_t TakeDue() {
    uint64_t now = uv_now(loop_);
    uint32_t mask = 0;
    for (int i = 0; i < N; ++i) {
      if (due_[i] <= now) {
        due_[i] = kNever;
        mask |= 1u << i;
      }
    }
    Rearm();
    return mask;
  }

 private:
  static constexpr uint64_t kNever = std::numeric_limits<uint64_t>::max();

  void Rearm() {
    uint64_t next = kNever;
    for (uint64_t d : due_) next = d < next ? d : next;
    if (next == kNever) {
      timer_.Stop();
      return;
    }
    uint64_t now = uv_now(loop_);
    timer_.Start(next > now ? next - now : 0);
  }

  uv_loop_t* loop_;
  WsTimer timer_;
  uint64_t due_[N];
};

}  // namespace quire::io::internal
