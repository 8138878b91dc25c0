#include "io/websocket_session.h"

#include <wslay/wslay.h>

#include <algorithm>
#include <cstring>

namespace quire::io {

// wslay trampolines. Exceptions never cross into C: the delegate's handlers are noexcept in
// effect (they catch what they can raise), and anything else terminates.
struct WebSocketSessionCallbacks {
  static ssize_t Recv(wslay_event_context_ptr ctx, uint8_t* buf, size_t len, int /*flags*/,
                      void* user_data) noexcept {
    auto* s = static_cast<WebSocketSession*>(user_data);
    if (s->input_.empty()) {
      wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
      return -1;
    }
    size_t n = std::min(len, s->input_.size());
    std::memcpy(buf, s->input_.data(), n);
    s->input_ = s->input_.subspan(n);
    return static_cast<ssize_t>(n);
  }

  static ssize_t Send(wslay_event_context_ptr /*ctx*/, const uint8_t* data, size_t len,
                      int /*flags*/, void* user_data) noexcept {
    auto* s = static_cast<WebSocketSession*>(user_data);
    // The transport queue is unbounded at this layer; the owner enforces its bound before
    // queueing messages, so accepting everything here never grows memory past that bound.
    s->output_.append(reinterpret_cast<const char*>(data), len);
    return static_cast<ssize_t>(len);
  }

  static void OnMessage(wslay_event_context_ptr /*ctx*/,
                        const struct wslay_event_on_msg_recv_arg* arg, void* user_data) noexcept {
    auto* s = static_cast<WebSocketSession*>(user_data);
    if (arg->opcode == WSLAY_TEXT_FRAME) {
      s->delegate_.OnTextMessage(
          std::string_view(reinterpret_cast<const char*>(arg->msg), arg->msg_length));
    } else if (arg->opcode == WSLAY_BINARY_FRAME) {
      s->delegate_.OnBinaryMessage(ByteView(arg->msg, arg->msg_length));
    }
    // Ping, pong and close are handled by wslay itself.
  }
};

WebSocketSession::WebSocketSession(Transport& transport, Delegate& delegate,
                                   uint64_t max_message_bytes)
    : transport_(transport), delegate_(delegate), max_message_bytes_(max_message_bytes) {}

WebSocketSession::~WebSocketSession() {
  if (ctx_ != nullptr) wslay_event_context_free(ctx_);
}

bool WebSocketSession::EnsureContext() {
  if (ctx_ != nullptr) return true;
  if (failed_) return false;
  wslay_event_callbacks callbacks{};
  callbacks.recv_callback = &WebSocketSessionCallbacks::Recv;
  callbacks.send_callback = &WebSocketSessionCallbacks::Send;
  callbacks.on_msg_recv_callback = &WebSocketSessionCallbacks::OnMessage;
  if (wslay_event_context_server_init(&ctx_, &callbacks, this) != 0) {
    ctx_ = nullptr;
    failed_ = true;
    return false;
  }
  wslay_event_config_set_max_recv_msg_length(ctx_, max_message_bytes_);
  return true;
}

void WebSocketSession::ReleaseContextIfIdle() {
  if (ctx_ == nullptr || in_feed_ || !at_frame_boundary() || in_fragmented_message_) return;
  // A close sent, received or queued (write or read shut) keeps the context: it holds that
  // state until the owner closes the transport.
  if (wslay_event_get_close_sent(ctx_) != 0 || wslay_event_get_close_received(ctx_) != 0 ||
      wslay_event_get_read_enabled(ctx_) == 0 || wslay_event_get_write_enabled(ctx_) == 0 ||
      wslay_event_get_queued_msg_count(ctx_) != 0) {
    return;
  }
  wslay_event_context_free(ctx_);
  ctx_ = nullptr;
}

void WebSocketSession::TrackFrames(ByteView data) {
  size_t i = 0;
  while (i < data.size()) {
    if (payload_left_ > 0) {
      uint64_t take = std::min<uint64_t>(payload_left_, data.size() - i);
      payload_left_ -= take;
      i += static_cast<size_t>(take);
      continue;
    }
    header_[header_len_++] = static_cast<uint8_t>(data[i++]);
    if (header_len_ < 2) continue;
    uint8_t len7 = header_[1] & 0x7f;
    size_t need = 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + ((header_[1] & 0x80) ? 4 : 0);
    if (header_len_ < need) continue;
    uint64_t len = len7;
    if (len7 == 126) len = (uint64_t{header_[2]} << 8) | header_[3];
    if (len7 == 127) {
      len = 0;
      for (int k = 2; k < 10; ++k) len = (len << 8) | header_[k];
    }
    uint8_t opcode = header_[0] & 0x0f;
    bool fin = (header_[0] & 0x80) != 0;
    if (opcode <= 0x2) in_fragmented_message_ = !fin;  // continuation, text, binary
    payload_left_ = len;
    header_len_ = 0;
  }
}

void WebSocketSession::SendFrame(uint8_t opcode, ByteView payload) {
  uint8_t header[10];
  size_t n = 0;
  header[n++] = static_cast<uint8_t>(0x80 | opcode);
  uint64_t len = payload.size();
  if (len < 126) {
    header[n++] = static_cast<uint8_t>(len);
  } else if (len <= 0xffff) {
    header[n++] = 126;
    header[n++] = static_cast<uint8_t>(len >> 8);
    header[n++] = static_cast<uint8_t>(len);
  } else {
    header[n++] = 127;
    for (int shift = 56; shift >= 0; shift -= 8) header[n++] = static_cast<uint8_t>(len >> shift);
  }
  std::string frame;
  frame.reserve(n + payload.size());
  frame.append(reinterpret_cast<const char*>(header), n);
  frame.append(reinterpret_cast<const char*>(payload.data()), payload.size());
  bytes_out_ += frame.size();
  transport_.Send(std::move(frame));
}

void WebSocketSession::Feed(ByteView data) {
  bytes_in_ += data.size();
  if (!EnsureContext()) return;
  TrackFrames(data);
  input_ = data;
  in_feed_ = true;
  // Non-zero only on callback failure or out of memory; wslay has then shut reading down and
  // queued nothing more, so the owner sees a dead session. Protocol errors return 0 after
  // queueing a close frame.
  int rv = wslay_event_recv(ctx_);
  in_feed_ = false;
  input_ = {};
  if (rv != 0 && !close_sent()) {
    wslay_event_queue_close(ctx_, WSLAY_CODE_INTERNAL_SERVER_ERROR, nullptr, 0);
  }
  Flush();
  ReleaseContextIfIdle();
}

void WebSocketSession::SendText(std::string_view text) {
  if (close_sent()) return;
  if (ctx_ == nullptr) {
    SendFrame(WSLAY_TEXT_FRAME, AsBytes(text));
    return;
  }
  wslay_event_msg msg{WSLAY_TEXT_FRAME, reinterpret_cast<const uint8_t*>(text.data()), text.size()};
  if (wslay_event_queue_msg(ctx_, &msg) != 0) return;
  if (!in_feed_) Flush();
}

void WebSocketSession::SendBinary(ByteView data) {
  if (close_sent()) return;
  if (ctx_ == nullptr) {
    SendFrame(WSLAY_BINARY_FRAME, data);
    return;
  }
  wslay_event_msg msg{WSLAY_BINARY_FRAME, data.data(), data.size()};
  if (wslay_event_queue_msg(ctx_, &msg) != 0) return;
  if (!in_feed_) Flush();
}

void WebSocketSession::SendPing() {
  if (close_sent()) return;
  if (ctx_ == nullptr) {
    SendFrame(WSLAY_PING, {});
    return;
  }
  wslay_event_msg msg{WSLAY_PING, nullptr, 0};
  if (wslay_event_queue_msg(ctx_, &msg) != 0) return;
  if (!in_feed_) Flush();
}

void WebSocketSession::StartClose(uint16_t code, std::string_view reason) {
  if (close_sent() || !EnsureContext()) return;
  reason = reason.substr(0, 123);  // a control frame payload is at most 125 bytes
  if (wslay_event_queue_close(ctx_, code, reinterpret_cast<const uint8_t*>(reason.data()),
                              reason.size()) != 0) {
    return;
  }
  if (!in_feed_) Flush();
}

bool WebSocketSession::close_sent() const {
  if (ctx_ == nullptr) return failed_;  // released only while no close is under way
  return wslay_event_get_close_sent(ctx_) != 0 || wslay_event_get_write_enabled(ctx_) == 0;
}

bool WebSocketSession::close_received() const {
  return ctx_ != nullptr && wslay_event_get_close_received(ctx_) != 0;
}

uint16_t WebSocketSession::close_code_sent() const {
  if (ctx_ == nullptr || wslay_event_get_close_sent(ctx_) == 0) return 0;
  return wslay_event_get_status_code_sent(ctx_);
}

size_t WebSocketSession::queued_bytes() const {
  size_t wslay_bytes = ctx_ != nullptr ? wslay_event_get_queued_msg_length(ctx_) : 0;
  return transport_.queued_bytes() + output_.size() + wslay_bytes;
}

void WebSocketSession::Flush() {
  if (ctx_ == nullptr) return;
  // The send callback never blocks, so one call writes every queued frame. An error means the
  // context is unusable; close_sent() then reports it as closed.
  if (wslay_event_send(ctx_) != 0) wslay_event_shutdown_write(ctx_);
  if (!output_.empty()) {
    bytes_out_ += output_.size();
    std::string out;
    out.swap(output_);
    transport_.Send(std::move(out));
  }
}

}  // namespace quire::io
