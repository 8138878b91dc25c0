// yjs::SameDocument: equality of updates as documents (state vector, delete set, joined structs).
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "core/yjs/lib0_internal.h"
#include "core/yjs/update.h"
#include "tests/core/yjs_support.h"

namespace quire::yjs {
namespace {

using testing::B64;
using testing::Hex;
using testing::LoadVectors;

bool Same(ByteView a, ByteView b, std::string* why = nullptr) {
  auto r = SameDocument(a, b, why);
  REQUIRE(r.ok());
  return *r;
}

Bytes Merge(const std::vector<Bytes>& parts) {
  std::vector<ByteView> views(parts.begin(), parts.end());
  auto merged = MergeUpdates(views);
  REQUIRE(merged.ok());
  return *merged;
}

std::vector<Bytes> Updates(const nlohmann::json& c) {
  std::vector<Bytes> out;
  for (const auto& u : c["updates"]) out.push_back(B64(u.get<std::string>()));
  return out;
}

const nlohmann::json& Case(const nlohmann::json& vectors, const std::string& name) {
  for (const auto& c : vectors["cases"]) {
    if (c["name"] == name) return c;
  }
  FAIL("no vector case " << name);
  throw;
}

TEST_CASE("KeystrokesMergedEqualOneTypedRunAsDocuments", "[yjs][same_document]") {
  const auto vectors = LoadVectors("vectors.json");
  const auto& c = Case(vectors, "single_client_typing");
  // yjs's mergeUpdates keeps five 1-char items; a Y.Doc encodes one 5-char item.
  Bytes merged = B64(c["merged"]);
  Bytes full = B64(c["full_state_update"]);
  REQUIRE(merged != full);
  std::string why = "unset";
  CHECK(Same(merged, full, &why));
  CHECK(why.empty());
  CHECK(Same(full, merged));
}

TEST_CASE("EveryMergeOrderOfTheVectorsGivesTheSameDocument", "[yjs][same_document]") {
  const auto vectors = LoadVectors("vectors.json");
  for (const auto& c : vectors["cases"]) {
    INFO(c["name"].get<std::string>());
    Bytes merged = B64(c["merged"]);
    std::vector<Bytes> parts = Updates(c);
    std::vector<Bytes> reversed(parts.rbegin(), parts.rend());
    CHECK(Same(merged, Merge(reversed)));
    CHECK(Same(merged, B64(c["merged_reversed_input"])));
    CHECK(Same(merged, B64(c["merge_of_merged_with_itself"])));
    if (c.contains("merged_two_level")) CHECK(Same(merged, B64(c["merged_two_level"])));
    // Fold in two halves, as the compactor does with a snapshot and a tail.
    if (parts.size() >= 2) {
      std::vector<Bytes> head(parts.begin(), parts.begin() + parts.size() / 2);
      std::vector<Bytes> tail(parts.begin() + parts.size() / 2, parts.end());
      tail.insert(tail.begin(), Merge(head));
      CHECK(Same(merged, Merge(tail)));
    }
  }
}

TEST_CASE("DeletedContentComparesByItsRangeOnly", "[yjs][same_document]") {
  // yjs keeps the GC run or the deleted items there depending on the input order.
  const auto vectors = LoadVectors("vectors.json");
  const auto& c = Case(vectors, "gc_structs");
  Bytes merged = B64(c["merged"]);
  Bytes reversed = B64(c["merged_reversed_input"]);
  REQUIRE(merged != reversed);
  CHECK(Same(merged, reversed));
}

TEST_CASE("ChangedTextIsADifferentDocument", "[yjs][same_document]") {
  const auto vectors = LoadVectors("vectors.json");
  const auto& c = Case(vectors, "single_client_typing");
  Bytes full = B64(c["full_state_update"]);  // "Hello" as one item
  Bytes changed = full;
  REQUIRE(changed[changed.size() - 2] == 'o');
  changed[changed.size() - 2] = 'p';
  std::string why;
  CHECK_FALSE(Same(B64(c["merged"]), changed, &why));
  CHECK(why == "struct (1,0): content differs");
}

TEST_CASE("AMissingUpdateChangesTheStateVector", "[yjs][same_document]") {
  const auto vectors = LoadVectors("vectors.json");
  const auto& c = Case(vectors, "single_client_typing");
  std::vector<Bytes> parts = Updates(c);
  parts.pop_back();
  std::string why;
  CHECK_FALSE(Same(B64(c["merged"]), Merge(parts), &why));
  CHECK(why == "state vectors differ: client 1 at 5 vs 4");
}

TEST_CASE("DeleteSetsCompareAfterJoiningRanges", "[yjs][same_document]") {
  const auto vectors = LoadVectors("vectors.json");
  const auto& c = Case(vectors, "single_client_typing");
  Bytes merged = B64(c["merged"]);
  // Delete-only updates: client 1, [0,1) and [1,2), versus [0,2) in one range.
  Bytes del_a = Hex("000101010001");
  Bytes del_b = Hex("000101010101");
  Bytes del_ab = Hex("000101010002");
  Bytes two_ranges = Merge({merged, del_a, del_b});
  Bytes one_range = Merge({merged, del_ab});
  CHECK(Same(two_ranges, one_range));
  std::string why;
  CHECK_FALSE(Same(merged, one_range, &why));
  CHECK(why == "delete sets differ");
  CHECK_FALSE(Same(Merge({merged, del_a}), one_range));
}

TEST_CASE("AnItemWithAnotherOriginIsNotJoined", "[yjs][same_document]") {
  // "ab" typed as a, then b with origin (1,0); versus b inserted before a (no origin, right
  // origin (1,0)): same state vector and delete set, different documents.
  Bytes typed =
      Hex("010201000401017401618401000162"
          "00");
  Bytes before =
      Hex("010201000401017401614401000162"
          "00");
  REQUIRE(ValidateUpdate(typed).ok());
  REQUIRE(ValidateUpdate(before).ok());
  std::string why;
  CHECK_FALSE(Same(typed, before, &why));
  CHECK(why == "struct (1,0): length 2 vs 1");
  Bytes typed_as_one =
      Hex("01010100040101740261620"
          "0");
  CHECK(Same(typed, typed_as_one));
  CHECK_FALSE(Same(before, typed_as_one));
}

TEST_CASE("SameDocumentRejectsMalformedUpdates", "[yjs][same_document]") {
  Bytes ok = Hex("0000");
  Bytes truncated = Hex("0101");
  CHECK_FALSE(SameDocument(ok, truncated).ok());
  CHECK_FALSE(SameDocument(truncated, ok).ok());
  CHECK(Same(ok, ok));
}

TEST_CASE("MergeOfMoreInputsThanTheFanInIsTheOnePassMerge", "[yjs][merge]") {
  // 3000 keystrokes of client 1 ("a" after "a"), as yjs encodes them one per update; merged in
  // groups of kMaxMergeFanIn they must still give exactly the one-pass (and yjs) bytes: one
  // block, every struct, in clock order.
  constexpr uint64_t kCount = 3000;
  static_assert(kCount > 2 * kMaxMergeFanIn);
  std::vector<Bytes> updates;
  Bytes expected;
  internal::PutVarUint(&expected, 1);
  internal::PutVarUint(&expected, kCount);
  internal::PutVarUint(&expected, 1);
  internal::PutVarUint(&expected, 0);
  for (uint64_t k = 0; k < kCount; ++k) {
    Bytes body;  // the struct
    if (k == 0) {
      body =
          Hex("0401017401"
              "61");
    } else {
      body = Hex("8401");
      internal::PutVarUint(&body, k - 1);
      body.push_back(1);
      body.push_back('a');
    }
    Bytes u = Hex("010101");
    internal::PutVarUint(&u, k);
    u.insert(u.end(), body.begin(), body.end());
    u.push_back(0);
    updates.push_back(u);
    expected.insert(expected.end(), body.begin(), body.end());
  }
  expected.push_back(0);
  CHECK(Merge(updates) == expected);
  std::vector<Bytes> reversed(updates.rbegin(), updates.rend());
  CHECK(Merge(reversed) == expected);
  Bytes one_item = Hex("0101010004010174");  // the Y.Doc encoding: one 3000-char item
  internal::PutVarString(&one_item, std::string(kCount, 'a'));
  one_item.push_back(0);
  CHECK(Same(expected, one_item));
}

}  // namespace
}  // namespace quire::yjs
