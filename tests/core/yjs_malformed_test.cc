// Malformed updates: every one is an InvalidArgument, never a crash, undefined behaviour or an
// allocation sized by a count the bytes cannot back (the ASan build runs these too).
#include <catch2/catch.hpp>
#include <random>
#include <string>
#include <vector>

#include "core/yjs/lib0_internal.h"
#include "core/yjs/update.h"
#include "core/yjs/yjs_codec.h"
#include "tests/core/yjs_support.h"

namespace quire::yjs {
namespace {

using nlohmann::json;
using testing::B64;
using testing::LoadVectors;
using testing::ToHex;

// Every update blob of the vectors (inputs, merges, diffs, full states).
std::vector<Bytes> AllVectorUpdates() {
  static const json v = LoadVectors("vectors.json");
  std::vector<Bytes> out;
  for (const auto& c : v["cases"]) {
    if (c["name"] == "random_session_3_clients_500_ops") {
      out.push_back(B64(c["merged"]));
      continue;
    }
    for (const auto& u : c["updates"]) out.push_back(B64(u));
    out.push_back(B64(c["merged"]));
    out.push_back(B64(c["full_state_update"]));
    for (const auto& d : c["diffs"]) out.push_back(B64(d["diff"]));
  }
  return out;
}

// Runs every entry point on `update`; all must agree on whether it is valid.
void ExpectRejectedEverywhere(ByteView update) {
  INFO(ToHex(update));
  Status st = ValidateUpdate(update);
  CHECK_FALSE(st.ok());
  CHECK(st.code() == StatusCode::kInvalidArgument);
  CHECK_FALSE(DecodeUpdate(update).ok());
  CHECK_FALSE(YjsCodec().ValidateUpdate(update).ok());
  CHECK_FALSE(StateVectorFromUpdate(update).ok());
  CHECK_FALSE(DiffUpdate(update, Bytes{0}).ok());
  CHECK_FALSE(InspectUpdate(update, InspectFormat::kJson).ok());
  Bytes empty = {0, 0};
  ByteView both[] = {empty, update};
  CHECK_FALSE(MergeUpdates(both).ok());
  ByteView one[] = {update};
  CHECK_FALSE(MergeUpdates(one).ok());
}

Bytes Concat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const Bytes& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

// One client block {client 1, clock 0} holding one struct with `body`, then an empty delete set.
Bytes OneStruct(const Bytes& body) { return Concat({{1, 1, 1, 0}, body, {0}}); }
// A String item under root "t".
Bytes StringItem(const Bytes& varstring) {
  return OneStruct(Concat({{0x04, 0x01, 0x01, 't'}, varstring}));
}

TEST_CASE("EveryTruncationOfAValidUpdateIsRejected", "[yjs][malformed]") {
  size_t checked = 0;
  for (const Bytes& u : AllVectorUpdates()) {
    REQUIRE(ValidateUpdate(u).ok());
    // The 500-op merge is long: cut it at a sample of offsets.
    const size_t step = u.size() > 4000 ? 37 : 1;
    for (size_t n = 0; n < u.size(); n += step) {
      ExpectRejectedEverywhere(ByteView(u.data(), n));
      ++checked;
    }
  }
  CHECK(checked > 2000);
}

TEST_CASE("TrailingBytesAreRejected", "[yjs][malformed]") {
  ExpectRejectedEverywhere(Bytes{0, 0, 0});
  ExpectRejectedEverywhere(Concat({StringItem({1, 'H'}), {0}}));
}

TEST_CASE("OverlongAndOversizedVarintsAreRejected", "[yjs][malformed]") {
  // Client id 1 written as 81 00 (not minimal).
  ExpectRejectedEverywhere(Bytes{1, 1, 0x81, 0x00, 0, 0x04, 1, 1, 't', 1, 'H', 0});
  // Nine continuation bytes.
  ExpectRejectedEverywhere(Bytes{1, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0,
                                 0x04, 1, 1, 't', 1, 'H', 0});
  // 2^53 (one above lib0's limit) as the start clock.
  ExpectRejectedEverywhere(
      Bytes{1, 1, 1, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x10, 0x04, 1, 1, 't', 1, 'H', 0});
  // 2^53-1 is accepted as a clock, but a struct there would pass it.
  ExpectRejectedEverywhere(
      Bytes{1, 1, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x04, 1, 1, 't', 1, 'H', 0});
  // Overlong varInt inside an `any`: 7d 80 00.
  ExpectRejectedEverywhere(OneStruct({0x08, 1, 1, 'a', 1, 0x7d, 0x80, 0x00}));
  // A delete range past 2^53-1.
  ExpectRejectedEverywhere(Bytes{0, 1, 1, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x02});
}

TEST_CASE("UnknownRefsAreRejected", "[yjs][malformed]") {
  for (uint8_t ref = 11; ref < 32; ++ref) {
    ExpectRejectedEverywhere(OneStruct({ref, 1}));
    ExpectRejectedEverywhere(OneStruct({static_cast<uint8_t>(ref | 0x80), 1, 0, 1}));
  }
  // Type ref 7 does not exist.
  ExpectRejectedEverywhere(OneStruct({0x07, 1, 1, 'm', 0x07}));
  // `any` tag 115 does not exist.
  ExpectRejectedEverywhere(OneStruct({0x08, 1, 1, 'a', 1, 115}));
  // Subdocument options must be an object.
  ExpectRejectedEverywhere(OneStruct({0x09, 1, 1, 'm', 1, 'g', 0x7e}));
}

TEST_CASE("InvalidUtf8IsRejected", "[yjs][malformed]") {
  const std::vector<Bytes> bad = {
      {1, 0xff},                    // not a lead byte
      {2, 0xc0, 0x80},              // overlong NUL
      {3, 0xed, 0xa0, 0x80},        // UTF-16 surrogate
      {4, 0xf4, 0x90, 0x80, 0x80},  // above U+10FFFF
      {2, 0xe2, 0x82},              // cut code point
      {1, 0x80},                    // lone continuation
  };
  for (const Bytes& s : bad) {
    ExpectRejectedEverywhere(StringItem(s));
    // ...in a root type name and a map key too.
    ExpectRejectedEverywhere(OneStruct(Concat({{0x04, 0x01}, s, {1, 'H'}})));
    ExpectRejectedEverywhere(OneStruct(Concat({{0x28, 0x01, 1, 'm'}, s, {0x08, 1, 0x7e}})));
  }
  // The same bytes, valid: U+00E9, U+1F600.
  CHECK(ValidateUpdate(StringItem({2, 0xc3, 0xa9})).ok());
  CHECK(ValidateUpdate(StringItem({4, 0xf0, 0x9f, 0x98, 0x80})).ok());
}

TEST_CASE("InvalidJsonContentIsRejected", "[yjs][malformed]") {
  const std::vector<std::string> bad = {"",         "{",   "[1,]",       "{\"a\"}", "01",  "tru",
                                        "\"\x01\"", "1 2", "{\"a\":1,}", "\"\\x\"", "nul", "-"};
  for (const std::string& text : bad) {
    INFO(text);
    CHECK_FALSE(internal::ValidJson(text));
    Bytes vs = {static_cast<uint8_t>(text.size())};
    vs.insert(vs.end(), text.begin(), text.end());
    ExpectRejectedEverywhere(OneStruct(Concat({{0x05, 1, 1, 't'}, vs})));          // embed
    ExpectRejectedEverywhere(OneStruct(Concat({{0x06, 1, 1, 't', 1, 'b'}, vs})));  // format
    ExpectRejectedEverywhere(OneStruct(Concat({{0x02, 1, 1, 'a', 1}, vs})));       // JSON
  }
  for (const std::string text :
       {"null", " {\"a\" : [1, -2.5e3, true, \"\\u00e9\"]} ", "0", "\"\""}) {
    INFO(text);
    CHECK(internal::ValidJson(text));
  }
}

TEST_CASE("LengthsPastTheBufferAreRejected", "[yjs][malformed]") {
  ExpectRejectedEverywhere(StringItem({100, 'a', 'b', 'c'}));
  ExpectRejectedEverywhere(OneStruct({0x03, 1, 1, 'a', 0x90, 0x4e, 1, 2, 3}));  // binary
  ExpectRejectedEverywhere(OneStruct({0x04, 1, 50, 't', 1, 'H'}));              // root name
  ExpectRejectedEverywhere(OneStruct({0x08, 1, 1, 'a', 1, 0x74, 9, 1}));        // any bytes
  ExpectRejectedEverywhere(OneStruct({0x08, 1, 1, 'a', 1, 0x7b, 0x3f, 0xf0}));  // float64
}

TEST_CASE("AbsurdCountsAreRejectedWithoutAllocating", "[yjs][malformed]") {
  const Bytes huge = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f};  // 2^53-1
  ExpectRejectedEverywhere(Concat({huge, {0}}));                        // client blocks
  ExpectRejectedEverywhere(Concat({{1}, huge, {1, 0, 0x0a, 1, 0}}));    // structs
  ExpectRejectedEverywhere(Concat({{0}, huge}));                        // delete set clients
  ExpectRejectedEverywhere(Concat({{0, 1, 1}, huge, {0, 1}}));          // delete ranges
  ExpectRejectedEverywhere(OneStruct(Concat({{0x08, 1, 1, 'a'}, huge, {0x7e}})));  // any run
  ExpectRejectedEverywhere(OneStruct(Concat({{0x08, 1, 1, 'a', 1, 0x75}, huge, {0x7e}})));  // array
  ExpectRejectedEverywhere(
      OneStruct(Concat({{0x08, 1, 1, 'a', 1, 0x76}, huge, {0x7e}})));                // object
  ExpectRejectedEverywhere(OneStruct(Concat({{0x02, 1, 1, 'a'}, huge, {1, '1'}})));  // JSON run
  // A deleted run of 2^53-1 units is representable; two of them overflow the clock space.
  CHECK(ValidateUpdate(OneStruct(Concat({{0x01, 1, 1, 'a'}, huge}))).ok());
  ExpectRejectedEverywhere(Concat({{1, 2, 1, 0, 0x01, 1, 1, 'a'}, huge, {0x81, 1, 0}, huge, {0}}));
}

TEST_CASE("ZeroLengthStructsAreRejected", "[yjs][malformed]") {
  ExpectRejectedEverywhere(OneStruct({0x00, 0}));             // GC
  ExpectRejectedEverywhere(OneStruct({0x0a, 0}));             // Skip
  ExpectRejectedEverywhere(StringItem({0}));                  // ""
  ExpectRejectedEverywhere(OneStruct({0x08, 1, 1, 'a', 0}));  // Any with no values
  ExpectRejectedEverywhere(OneStruct({0x01, 1, 1, 'a', 0}));  // Deleted 0
}

TEST_CASE("DeepNestingIsHandledIteratively", "[yjs][malformed]") {
  // 200,000 nested arrays inside an `any` and inside embed JSON: valid, and no stack overflow.
  const size_t depth = 200000;
  Bytes any = {1};
  for (size_t i = 0; i < depth; ++i) {
    any.push_back(0x75);
    any.push_back(i + 1 == depth ? 0 : 1);
  }
  Bytes update = OneStruct(Concat({{0x08, 1, 1, 'a'}, any}));
  CHECK(ValidateUpdate(update).ok());
  auto inspected = InspectUpdate(update, InspectFormat::kJson);
  REQUIRE(inspected.ok());
  CHECK(inspected->find(std::string(depth, '[')) != std::string::npos);
  // Unclosed: truncated.
  Bytes cut(update.begin(), update.end() - 2);
  ExpectRejectedEverywhere(cut);

  std::string deep_json = std::string(depth, '[') + std::string(depth, ']');
  CHECK(internal::ValidJson(deep_json));
  CHECK_FALSE(internal::ValidJson(std::string(depth, '[') + std::string(depth - 1, ']')));
}

TEST_CASE("CorruptedBytesNeverCrashAndValidityIsConsistent", "[yjs][malformed]") {
  std::mt19937 rng(4);  // fixed seed
  size_t rejected = 0, accepted = 0;
  Bytes sv = {2, 1, 3, 16, 2};
  for (const Bytes& original : AllVectorUpdates()) {
    if (original.size() > 4000) continue;
    for (int round = 0; round < 24; ++round) {
      Bytes u = original;
      const int flips = 1 + static_cast<int>(rng() % 3);
      for (int f = 0; f < flips; ++f) u[rng() % u.size()] = static_cast<uint8_t>(rng());
      const bool valid = ValidateUpdate(u).ok();
      (valid ? accepted : rejected)++;
      CHECK(DecodeUpdate(u).ok() == valid);
      CHECK(StateVectorFromUpdate(u).ok() == valid);
      CHECK(DiffUpdate(u, sv).ok() == valid);
      CHECK(InspectUpdate(u, InspectFormat::kText).ok() == valid);
      ByteView parts[] = {original, u};
      auto merged = MergeUpdates(parts);
      CHECK(merged.ok() == valid);
      if (merged.ok()) CHECK(ValidateUpdate(*merged).ok());
    }
  }
  CHECK(rejected > 100);
  CHECK(accepted > 100);
}

}  // namespace
}  // namespace quire::yjs
