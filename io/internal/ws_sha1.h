// SHA-1 (FIPS 180-4) and the WebSocket accept key (RFC 6455 section 4.2.2).
//
// SHA-1 is used here only as the handshake digest the WebSocket protocol prescribes; it
// protects nothing and must not be used for security.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/types.h"

namespace quire::io::internal {

class Sha1 {
 public:
  Sha1();
  void Update(ByteView data);
  // Finishes the digest; the object must not be updated afterwards.
  std::array<uint8_t, 20> Final();

 private:
  void Block(const uint8_t* p);
  uint32_t h_[5];
  uint8_t buf_[64];
  size_t buf_len_ = 0;
  uint64_t total_bytes_ = 0;
};

std::array<uint8_t, 20> Sha1Digest(ByteView data);

// base64(SHA-1(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")).
std::string WebSocketAcceptKey(std::string_view sec_websocket_key);

}  // namespace quire::io::internal
