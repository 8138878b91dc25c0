// SHA-1 against the FIPS 180-2 example vectors and the RFC 6455 accept key example.
#include "io/internal/ws_sha1.h"

#include <catch2/catch.hpp>
#include <string>

namespace quire::io::internal {
namespace {

std::string Hex(const std::array<uint8_t, 20>& d) {
  static const char* k = "0123456789abcdef";
  std::string s;
  for (uint8_t b : d) {
    s += k[b >> 4];
    s += k[b & 15];
  }
  return s;
}

TEST_CASE("Sha1MatchesFipsVectors") {
  CHECK(Hex(Sha1Digest(AsBytes("abc"))) == "a9993e364706816aba3e25717850c26c9cd0d89d");
  CHECK(Hex(Sha1Digest(AsBytes(""))) == "da39a3ee5e6b4b0d3255bfef95601890afd80709");
  CHECK(Hex(Sha1Digest(AsBytes("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"))) ==
        "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
  std::string million(1'000'000, 'a');
  CHECK(Hex(Sha1Digest(AsBytes(million))) == "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
}

TEST_CASE("Sha1IsIndependentOfChunkBoundaries") {
  std::string text;
  for (int i = 0; i < 300; ++i) text += static_cast<char>('a' + i % 26);
  auto whole = Sha1Digest(AsBytes(text));
  for (size_t chunk : {1u, 3u, 55u, 56u, 63u, 64u, 65u, 127u}) {
    Sha1 sha;
    for (size_t i = 0; i < text.size(); i += chunk) {
      sha.Update(AsBytes(std::string_view(text).substr(i, chunk)));
    }
    CHECK(Hex(sha.Final()) == Hex(whole));
  }
}

TEST_CASE("AcceptKeyMatchesRfc6455Example") {
  CHECK(WebSocketAcceptKey("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

}  // namespace
}  // namespace quire::io::internal
