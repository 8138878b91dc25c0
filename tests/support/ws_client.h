// WsClient: a real, blocking WebSocket client for tests and benchmarks. One TCP socket to
// 127.0.0.1, the RFC 6455 handshake, and wslay's event API in client context (masked frames).
// Every wait is a poll() with a timeout; nothing blocks forever. Not thread-safe.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "core/types.h"

struct wslay_event_context;

namespace quire::test {

struct WsMessage {
  enum class Kind { kText, kBinary, kClose };
  Kind kind = Kind::kText;
  std::string data;         // payload (text or binary); the reason for a close
  uint16_t close_code = 0;  // kClose only (0 when the frame carried none)
};

struct WsConnectOptions {
  int timeout_ms = 5000;
  // SO_RCVBUF set before connecting (0 keeps the default): a slow reader with a small window.
  int receive_buffer_bytes = 0;
  // Extra request header lines, each "Name: value".
  std::vector<std::string> extra_headers;
  // Overrides the Sec-WebSocket-Version header (tests of rejected handshakes).
  std::string version = "13";
};

// The HTTP answer to the upgrade request.
struct WsHandshake {
  int status = 0;
  std::string head;  // status line and headers
  std::string body;
};

class WsClient {
 public:
  // Connects to 127.0.0.1:`port` and upgrades `target` ("/ws/documents/d?userId=u"). Returns
  // the client on 101 (after checking Sec-WebSocket-Accept). Otherwise returns an error; the
  // HTTP answer, if one came, is in `*handshake`.
  static Result<std::unique_ptr<WsClient>> Connect(int port, std::string_view target,
                                                   const WsConnectOptions& options = {},
                                                   WsHandshake* handshake = nullptr);
  ~WsClient();
  WsClient(const WsClient&) = delete;
  WsClient& operator=(const WsClient&) = delete;

  Status SendText(std::string_view text, int timeout_ms = 5000);
  Status SendJson(const nlohmann::json& message, int timeout_ms = 5000);
  Status SendBinary(ByteView data, int timeout_ms = 5000);
  // Writes `bytes` to the socket as they are, bypassing framing (malformed-frame tests).
  Status SendRaw(std::string_view bytes, int timeout_ms = 5000);

  // The next text, binary or close message. Pings are answered internally and not returned.
  // DeadlineExceeded-like errors are reported as Unavailable("timeout").
  Result<WsMessage> Next(int timeout_ms = 5000);
  // The next message, which must be text holding JSON.
  Result<nlohmann::json> NextJson(int timeout_ms = 5000);
  // Skips messages until one with "type" == `type` (others are discarded).
  Result<nlohmann::json> NextOfType(std::string_view type, int timeout_ms = 5000);
  // True when no message arrives within `ms` (a message that does arrive stays queued).
  bool QuietFor(int ms);
  // Reads whatever the socket has without waiting and queues the complete messages.
  Status Pump(int timeout_ms = 0);

  // Sends a close frame and waits for the server's close (or EOF). Returns the server's code.
  Result<uint16_t> Close(uint16_t code = 1000, int timeout_ms = 5000);
  // Waits for the server to close: returns its close code (0 if the socket just ended).
  Result<uint16_t> WaitClosed(int timeout_ms = 5000);

  bool eof() const { return eof_; }
  int fd() const { return fd_; }
  uint64_t bytes_received() const { return bytes_received_; }

 private:
  friend struct WsClientCallbacks;
  WsClient() = default;
  Status Flush(int timeout_ms);
  // Waits up to `timeout_ms` for readable bytes and feeds them to wslay.
  Status ReadSome(int timeout_ms);

  int fd_ = -1;
  wslay_event_context* ctx_ = nullptr;
  std::string preread_;  // bytes that came with the handshake answer
  std::deque<WsMessage> inbox_;
  bool eof_ = false;
  uint64_t bytes_received_ = 0;
  uint8_t frame_opcode_ = 0;   // of the frame being received
  std::string frame_payload_;  // of the close frame being received
};

}  // namespace quire::test
