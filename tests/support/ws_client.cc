#include "tests/support/ws_client.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <wslay/wslay.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <random>

#include "core/base64.h"
#include "io/internal/ws_sha1.h"

namespace quire::test {
namespace {

using Clock = std::chrono::steady_clock;

int RemainingMs(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return left.count() < 0 ? 0 : static_cast<int>(left.count());
}

Status Errno(const char* what) {
  return Status::IoError(std::string(what) + ": " + std::strerror(errno));
}

Status Timeout(const char* what) { return Status::Unavailable(std::string("timeout: ") + what); }

// Writes all of `data` to a non-blocking socket, waiting for writability until the deadline.
Status WriteAll(int fd, std::string_view data, Clock::time_point deadline) {
  while (!data.empty()) {
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n > 0) {
      data.remove_prefix(static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return Errno("send");
    pollfd p{fd, POLLOUT, 0};
    int r = ::poll(&p, 1, RemainingMs(deadline));
    if (r == 0) return Timeout("send");
    if (r < 0 && errno != EINTR) return Errno("poll");
  }
  return Status::Ok();
}

}  // namespace

struct WsClientCallbacks {
  static ssize_t Recv(wslay_event_context_ptr ctx, uint8_t* buf, size_t len, int,
                      void* user_data) noexcept {
    auto* c = static_cast<WsClient*>(user_data);
    if (!c->preread_.empty()) {
      size_t n = std::min(len, c->preread_.size());
      std::memcpy(buf, c->preread_.data(), n);
      c->preread_.erase(0, n);
      return static_cast<ssize_t>(n);
    }
    ssize_t n = ::recv(c->fd_, buf, len, 0);
    if (n > 0) {
      c->bytes_received_ += static_cast<uint64_t>(n);
      return n;
    }
    if (n == 0) {
      c->eof_ = true;
      wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
      return -1;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
      wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
    } else {
      c->eof_ = true;
      wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
    }
    return -1;
  }

  static ssize_t Send(wslay_event_context_ptr ctx, const uint8_t* data, size_t len, int,
                      void* user_data) noexcept {
    auto* c = static_cast<WsClient*>(user_data);
    ssize_t n = ::send(c->fd_, data, len, MSG_NOSIGNAL);
    if (n >= 0) return n;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
      wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
    } else {
      wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
    }
    return -1;
  }

  static int GenMask(wslay_event_context_ptr, uint8_t* buf, size_t len, void*) noexcept {
    static thread_local std::mt19937 rng(std::random_device{}());
    for (size_t i = 0; i < len; ++i) buf[i] = static_cast<uint8_t>(rng());
    return 0;
  }

  // Close frames are taken at the frame level: wslay 1.1 refuses close codes registered after
  // RFC 6455 (1012-1014, e.g. 1013 "try again later") as protocol errors before any message
  // callback, and the tests must see them.
  static void OnFrameStart(wslay_event_context_ptr, const wslay_event_on_frame_recv_start_arg* arg,
                           void* user_data) noexcept {
    auto* c = static_cast<WsClient*>(user_data);
    c->frame_opcode_ = arg->opcode;
    c->frame_payload_.clear();
  }
  static void OnFrameChunk(wslay_event_context_ptr, const wslay_event_on_frame_recv_chunk_arg* arg,
                           void* user_data) noexcept {
    auto* c = static_cast<WsClient*>(user_data);
    if (c->frame_opcode_ == WSLAY_CONNECTION_CLOSE) {
      c->frame_payload_.append(reinterpret_cast<const char*>(arg->data), arg->data_length);
    }
  }
  static void OnFrameEnd(wslay_event_context_ptr, void* user_data) noexcept {
    auto* c = static_cast<WsClient*>(user_data);
    if (c->frame_opcode_ != WSLAY_CONNECTION_CLOSE) return;
    WsMessage m;
    m.kind = WsMessage::Kind::kClose;
    if (c->frame_payload_.size() >= 2) {
      m.close_code = static_cast<uint16_t>((static_cast<uint8_t>(c->frame_payload_[0]) << 8) |
                                           static_cast<uint8_t>(c->frame_payload_[1]));
      m.data = c->frame_payload_.substr(2);
    }
    c->inbox_.push_back(std::move(m));
  }

  static void OnMessage(wslay_event_context_ptr, const wslay_event_on_msg_recv_arg* arg,
                        void* user_data) noexcept {
    auto* c = static_cast<WsClient*>(user_data);
    WsMessage m;
    switch (arg->opcode) {
      case WSLAY_TEXT_FRAME:
        m.kind = WsMessage::Kind::kText;
        break;
      case WSLAY_BINARY_FRAME:
        m.kind = WsMessage::Kind::kBinary;
        break;
      default:
        return;  // ping (answered by wslay), pong, close (see OnFrameEnd)
    }
    const char* p = reinterpret_cast<const char*>(arg->msg);
    m.data.assign(p, arg->msg_length);
    c->inbox_.push_back(std::move(m));
  }
};

Result<std::unique_ptr<WsClient>> WsClient::Connect(int port, std::string_view target,
                                                    const WsConnectOptions& options,
                                                    WsHandshake* handshake) {
  auto deadline = Clock::now() + std::chrono::milliseconds(options.timeout_ms);
  std::unique_ptr<WsClient> c(new WsClient());
  c->fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (c->fd_ < 0) return Errno("socket");
  int one = 1;
  ::setsockopt(c->fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (options.receive_buffer_bytes > 0) {
    int size = options.receive_buffer_bytes;
    ::setsockopt(c->fd_, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(c->fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    if (errno != EINPROGRESS) return Errno("connect");
    pollfd p{c->fd_, POLLOUT, 0};
    int r = ::poll(&p, 1, RemainingMs(deadline));
    if (r == 0) return Timeout("connect");
    int err = 0;
    socklen_t len = sizeof err;
    ::getsockopt(c->fd_, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      errno = err;
      return Errno("connect");
    }
  }

  uint8_t nonce[16];
  WsClientCallbacks::GenMask(nullptr, nonce, sizeof nonce, nullptr);
  std::string key = Base64Encode(ByteView(nonce, sizeof nonce));
  std::string request =
      "GET " + std::string(target) + " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) +
      "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + key +
      "\r\nSec-WebSocket-Version: " + options.version + "\r\n";
  for (const auto& h : options.extra_headers) request += h + "\r\n";
  request += "\r\n";
  QUIRE_RETURN_IF_ERROR(WriteAll(c->fd_, request, deadline));

  // Read the answer head, then (for a refusal) its body by Content-Length.
  std::string in;
  size_t head_end = std::string::npos;
  size_t body_len = 0;
  bool have_length = false;
  for (;;) {
    if (head_end == std::string::npos) {
      head_end = in.find("\r\n\r\n");
      if (head_end != std::string::npos) {
        std::string head = in.substr(0, head_end);
        std::string lower = head;
        for (char& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        auto cl = lower.find("\r\ncontent-length:");
        if (cl != std::string::npos) {
          have_length = true;
          body_len = std::strtoull(head.c_str() + cl + 17, nullptr, 10);
        }
      }
    }
    if (head_end != std::string::npos) {
      int status = std::atoi(in.c_str() + in.find(' ') + 1);
      if (status == 101 || !have_length || in.size() >= head_end + 4 + body_len) break;
    }
    pollfd p{c->fd_, POLLIN, 0};
    int r = ::poll(&p, 1, RemainingMs(deadline));
    if (r == 0) return Timeout("handshake");
    char buf[16384];
    ssize_t n = ::recv(c->fd_, buf, sizeof buf, 0);
    if (n == 0) {
      if (head_end != std::string::npos) break;
      return Status::IoError("connection closed during the handshake");
    }
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      return Errno("recv");
    }
    in.append(buf, static_cast<size_t>(n));
  }
  WsHandshake hs;
  hs.head = in.substr(0, head_end);
  hs.status = std::atoi(in.c_str() + in.find(' ') + 1);
  if (hs.status != 101) {
    hs.body = in.substr(head_end + 4);
    if (handshake != nullptr) *handshake = hs;
    return Status::FailedPrecondition("upgrade refused with HTTP " + std::to_string(hs.status));
  }
  if (handshake != nullptr) *handshake = hs;
  std::string expected = "Sec-WebSocket-Accept: " + io::internal::WebSocketAcceptKey(key);
  if (hs.head.find(expected) == std::string::npos) {
    return Status::Corruption("bad Sec-WebSocket-Accept in: " + hs.head);
  }
  c->preread_ = in.substr(head_end + 4);

  wslay_event_callbacks callbacks{};
  callbacks.recv_callback = &WsClientCallbacks::Recv;
  callbacks.send_callback = &WsClientCallbacks::Send;
  callbacks.genmask_callback = &WsClientCallbacks::GenMask;
  callbacks.on_msg_recv_callback = &WsClientCallbacks::OnMessage;
  callbacks.on_frame_recv_start_callback = &WsClientCallbacks::OnFrameStart;
  callbacks.on_frame_recv_chunk_callback = &WsClientCallbacks::OnFrameChunk;
  callbacks.on_frame_recv_end_callback = &WsClientCallbacks::OnFrameEnd;
  if (wslay_event_context_client_init(&c->ctx_, &callbacks, c.get()) != 0) {
    return Status::Internal("wslay_event_context_client_init failed");
  }
  // Tests send large frames on purpose; the server enforces the limits under test.
  wslay_event_config_set_max_recv_msg_length(c->ctx_, 256ull << 20);
  if (!c->preread_.empty()) QUIRE_RETURN_IF_ERROR(c->ReadSome(0));
  return c;
}

WsClient::~WsClient() {
  if (ctx_ != nullptr) wslay_event_context_free(ctx_);
  if (fd_ >= 0) ::close(fd_);
}

Status WsClient::Flush(int timeout_ms) {
  auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  while (wslay_event_want_write(ctx_)) {
    if (wslay_event_send(ctx_) != 0) return Status::IoError("wslay_event_send failed");
    if (!wslay_event_want_write(ctx_)) break;
    // Blocked on the socket: keep reading meanwhile so a server writing to us cannot deadlock.
    pollfd p{fd_, POLLOUT | POLLIN, 0};
    int r = ::poll(&p, 1, RemainingMs(deadline));
    if (r == 0) return Timeout("flush");
    if (r < 0 && errno != EINTR) return Errno("poll");
    if ((p.revents & POLLIN) != 0 && !eof_) {
      if (wslay_event_recv(ctx_) != 0 && eof_) return Status::IoError("connection closed");
    }
  }
  return Status::Ok();
}

Status WsClient::SendText(std::string_view text, int timeout_ms) {
  wslay_event_msg msg{WSLAY_TEXT_FRAME, reinterpret_cast<const uint8_t*>(text.data()), text.size()};
  if (wslay_event_queue_msg(ctx_, &msg) != 0) return Status::FailedPrecondition("cannot queue");
  return Flush(timeout_ms);
}

Status WsClient::SendJson(const nlohmann::json& message, int timeout_ms) {
  return SendText(message.dump(), timeout_ms);
}

Status WsClient::SendBinary(ByteView data, int timeout_ms) {
  wslay_event_msg msg{WSLAY_BINARY_FRAME, data.data(), data.size()};
  if (wslay_event_queue_msg(ctx_, &msg) != 0) return Status::FailedPrecondition("cannot queue");
  return Flush(timeout_ms);
}

Status WsClient::SendRaw(std::string_view bytes, int timeout_ms) {
  return WriteAll(fd_, bytes, Clock::now() + std::chrono::milliseconds(timeout_ms));
}

Status WsClient::ReadSome(int timeout_ms) {
  if (preread_.empty()) {
    if (eof_) return Status::IoError("connection closed");
    pollfd p{fd_, POLLIN, 0};
    int r = ::poll(&p, 1, timeout_ms);
    if (r == 0) return Timeout("read");
    if (r < 0) return errno == EINTR ? Status::Ok() : Errno("poll");
  }
  if (wslay_event_get_read_enabled(ctx_) == 0) {
    // wslay reads nothing after a close frame or a protocol error; drain to see the EOF.
    char buf[16384];
    ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n > 0) bytes_received_ += static_cast<uint64_t>(n);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
      eof_ = true;
    }
    return Status::Ok();
  }
  int rv = wslay_event_recv(ctx_);
  // Answer pings and close frames at once; a failure to write here shows up on the next read.
  if (wslay_event_want_write(ctx_)) wslay_event_send(ctx_);
  if (rv != 0 && !eof_) return Status::IoError("wslay_event_recv failed: " + std::to_string(rv));
  return Status::Ok();
}

Status WsClient::Pump(int timeout_ms) {
  Status s = ReadSome(timeout_ms);
  if (!s.ok() && s.code() == StatusCode::kUnavailable) return Status::Ok();
  return s;
}

Result<WsMessage> WsClient::Next(int timeout_ms) {
  auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  while (inbox_.empty()) {
    if (eof_) return Status::IoError("connection closed");
    int left = RemainingMs(deadline);
    Status s = ReadSome(left);
    if (!s.ok() && !inbox_.empty()) break;
    if (!s.ok()) return s;
    if (left == 0 && inbox_.empty()) return Timeout("message");
  }
  WsMessage m = std::move(inbox_.front());
  inbox_.pop_front();
  return m;
}

Result<nlohmann::json> WsClient::NextJson(int timeout_ms) {
  auto m = Next(timeout_ms);
  if (!m.ok()) return m.status();
  if (m->kind == WsMessage::Kind::kClose) {
    return Status::FailedPrecondition("closed by the server with " + std::to_string(m->close_code) +
                                      " " + m->data);
  }
  if (m->kind != WsMessage::Kind::kText) return Status::InvalidArgument("binary message");
  auto j = nlohmann::json::parse(m->data, nullptr, false);
  if (j.is_discarded()) return Status::InvalidArgument("not JSON: " + m->data.substr(0, 200));
  return j;
}

Result<nlohmann::json> WsClient::NextOfType(std::string_view type, int timeout_ms) {
  auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    auto j = NextJson(RemainingMs(deadline));
    if (!j.ok()) return j;
    if (j->is_object() && j->value("type", "") == type) return j;
  }
}

bool WsClient::QuietFor(int ms) {
  auto deadline = Clock::now() + std::chrono::milliseconds(ms);
  while (inbox_.empty()) {
    int left = RemainingMs(deadline);
    if (left == 0 || eof_) break;
    if (!ReadSome(left).ok()) break;
  }
  return inbox_.empty();
}

Result<uint16_t> WsClient::WaitClosed(int timeout_ms) {
  auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    while (!inbox_.empty()) {
      WsMessage m = std::move(inbox_.front());
      inbox_.pop_front();
      if (m.kind == WsMessage::Kind::kClose) return m.close_code;
    }
    if (eof_) return static_cast<uint16_t>(0);
    int left = RemainingMs(deadline);
    if (left == 0) return Timeout("close");
    Status s = ReadSome(left);
    if (!s.ok() && inbox_.empty() && !eof_) return s;
  }
}

Result<uint16_t> WsClient::Close(uint16_t code, int timeout_ms) {
  if (!wslay_event_get_close_sent(ctx_)) {
    wslay_event_queue_close(ctx_, code, nullptr, 0);
    Status s = Flush(timeout_ms);
    if (!s.ok() && !eof_) return s;
  }
  return WaitClosed(timeout_ms);
}

}  // namespace quire::test
