#include <catch2/catch.hpp>

#include "core/base64.h"

namespace quire {
namespace {

TEST_CASE("Base64RoundTripsEveryLength", "[core][base64]") {
  Bytes data;
  for (int n = 0; n < 70; ++n) {
    std::string encoded = Base64Encode(data);
    auto decoded = Base64Decode(encoded);
    REQUIRE(decoded.ok());
    CHECK(*decoded == data);
    data.push_back(static_cast<uint8_t>(n * 37 + 11));
  }
}

TEST_CASE("Base64MatchesRfc4648Vectors", "[core][base64]") {
  CHECK(Base64Encode(AsBytes("")) == "");
  CHECK(Base64Encode(AsBytes("f")) == "Zg==");
  CHECK(Base64Encode(AsBytes("fo")) == "Zm8=");
  CHECK(Base64Encode(AsBytes("foo")) == "Zm9v");
  CHECK(Base64Encode(AsBytes("foobar")) == "Zm9vYmFy");
}

TEST_CASE("Base64RejectsMalformedInput", "[core][base64]") {
  CHECK_FALSE(Base64Decode("Zg=").ok());     // bad length
  CHECK_FALSE(Base64Decode("Z!==").ok());    // bad character
  CHECK_FALSE(Base64Decode("Zh==").ok());    // non-canonical padding bits
  CHECK_FALSE(Base64Decode("Zg==Zg==").ok());// padding in the middle
}

}  // namespace
}  // namespace quire
