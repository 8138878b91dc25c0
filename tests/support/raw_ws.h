// Byte-level WebSocket helpers over HttpClient, for tests that must see what WsClient hides or
// cannot do: the server's ping frames (WsClient answers them silently), a client that never
// answers anything, and frames pipelined right behind the upgrade request (before the 101).
//
//   HttpClient c(port);
//   c.SendRaw(RawUpgradeRequest("/yjs/doc") + RawClientFrame(0x2, bytes));
//   auto r = c.ReadResponse();               // the 101
//   auto f = ReadRawServerFrame(c, 5000);    // then frame by frame, pings included
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "tests/support/http_client.h"

namespace quire::test {

// One frame as the server sent it (server frames are never masked).
struct RawServerFrame {
  uint8_t opcode = 0;  // 0x1 text, 0x2 binary, 0x8 close, 0x9 ping, 0xa pong
  bool fin = true;
  std::string payload;
  // For a close frame: its code (0 when it carried none) and reason.
  uint16_t close_code() const;
  std::string close_reason() const;
};

// The GET request that upgrades `target` (Host 127.0.0.1, version 13, a fixed key).
std::string RawUpgradeRequest(std::string_view target);
// A complete masked client frame (FIN set) with `opcode` and `payload`.
std::string RawClientFrame(uint8_t opcode, std::string_view payload);
// The next frame from `client` (after ReadResponse() took the 101), or nullopt on timeout,
// close or a masked server frame.
std::optional<RawServerFrame> ReadRawServerFrame(HttpClient& client, int timeout_ms = 5000);

}  // namespace quire::test
