#include "tests/support/raw_ws.h"

#include <vector>

namespace quire::test {

uint16_t RawServerFrame::close_code() const {
  if (opcode != 0x8 || payload.size() < 2) return 0;
  return static_cast<uint16_t>((static_cast<uint8_t>(payload[0]) << 8) |
                               static_cast<uint8_t>(payload[1]));
}

std::string RawServerFrame::close_reason() const {
  if (opcode != 0x8 || payload.size() < 2) return "";
  return payload.substr(2);
}

std::string RawUpgradeRequest(std::string_view target) {
  return "GET " + std::string(target) +
         " HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
}

std::string RawClientFrame(uint8_t opcode, std::string_view payload) {
  std::vector<uint8_t> f;
  f.push_back(static_cast<uint8_t>(0x80 | opcode));
  uint64_t n = payload.size();
  if (n < 126) {
    f.push_back(static_cast<uint8_t>(0x80 | n));
  } else if (n < 65536) {
    f.push_back(0x80 | 126);
    f.push_back(static_cast<uint8_t>(n >> 8));
    f.push_back(static_cast<uint8_t>(n & 0xff));
  } else {
    f.push_back(0x80 | 127);
    for (int i = 7; i >= 0; --i) f.push_back(static_cast<uint8_t>((n >> (8 * i)) & 0xff));
  }
  const uint8_t key[4] = {0x5a, 0x17, 0xc3, 0x08};
  f.insert(f.end(), key, key + 4);
  for (size_t i = 0; i < payload.size(); ++i) {
    f.push_back(static_cast<uint8_t>(static_cast<uint8_t>(payload[i]) ^ key[i % 4]));
  }
  return std::string(f.begin(), f.end());
}

std::optional<RawServerFrame> ReadRawServerFrame(HttpClient& client, int timeout_ms) {
  auto head = client.ReadBytes(2, timeout_ms);
  if (!head) return std::nullopt;
  auto b0 = static_cast<uint8_t>((*head)[0]);
  auto b1 = static_cast<uint8_t>((*head)[1]);
  if ((b1 & 0x80) != 0) return std::nullopt;
  RawServerFrame frame;
  frame.fin = (b0 & 0x80) != 0;
  frame.opcode = b0 & 0x0f;
  uint64_t n = b1 & 0x7f;
  if (n >= 126) {
    size_t width = n == 126 ? 2 : 8;
    auto ext = client.ReadBytes(width, timeout_ms);
    if (!ext) return std::nullopt;
    n = 0;
    for (char c : *ext) n = (n << 8) | static_cast<uint8_t>(c);
  }
  if (n > 0) {
    auto payload = client.ReadBytes(n, timeout_ms);
    if (!payload) return std::nullopt;
    frame.payload = std::move(*payload);
  }
  return frame;
}

}  // namespace quire::test
