#include "core/base64.h"

#include <catch2/catch.hpp>

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
  CHECK_FALSE(Base64Decode("Zg=").ok());       // bad length
  CHECK_FALSE(Base64Decode("Z!==").ok());      // bad character
  CHECK_FALSE(Base64Decode("Zh==").ok());      // non-canonical padding bits
  CHECK_FALSE(Base64Decode("Zg==Zg==").ok());  // padding in the middle
}

TEST_CASE("Base64AppendsToWhatIsThereAndRoundTripsLongInputs", "[core][base64]") {
  Bytes data;
  for (int n = 0; n < 3000; ++n) data.push_back(static_cast<uint8_t>((n * 7919) >> 3));
  for (size_t len : {size_t{0}, size_t{1}, size_t{2}, size_t{3}, size_t{299}, size_t{2998},
                     size_t{2999}, size_t{3000}}) {
    ByteView view(data.data(), len);
    std::string out = R"({"b":")";
    AppendBase64(out, view);
    CHECK(out.substr(0, 6) == R"({"b":")");
    CHECK(out.substr(6) == Base64Encode(view));
    auto decoded = Base64Decode(out.substr(6));
    REQUIRE(decoded.ok());
    CHECK(Bytes(view.begin(), view.end()) == *decoded);
  }
}

TEST_CASE("Base64RejectsABadCharacterInAnyPosition", "[core][base64]") {
  std::string good = Base64Encode(AsBytes("the quick brown fox jumps"));  // 36 chars, "=="
  REQUIRE(Base64Decode(good).ok());
  for (size_t i = 0; i < good.size(); ++i) {
    for (char bad : {'!', '-', '_', '\0', '=', '\x80'}) {
      std::string text = good;
      if (text[i] == bad) continue;
      text[i] = bad;
      // A '=' in the last two positions can be valid padding only with canonical bits.
      if (bad == '=' && i + 2 >= text.size()) continue;
      INFO("position " << i << " character " << static_cast<int>(bad));
      CHECK_FALSE(Base64Decode(text).ok());
    }
  }
}

}  // namespace
}  // namespace quire
