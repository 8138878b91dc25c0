// Conformance with the yjs 13.6 test vectors of tests/data/yjs/vectors.json: every merge, diff,
// state vector and decoded struct that yjs produced must come out of the engine byte for byte.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "core/yjs/lib0_internal.h"
#include "core/yjs/update.h"
#include "tests/core/yjs_support.h"

namespace quire::yjs {
namespace {

using nlohmann::json;
using testing::B64;
using testing::Hex;
using testing::LoadVectors;
using testing::ToHex;

const json& Vectors() {
  static const json v = LoadVectors("vectors.json");
  return v;
}

std::vector<Bytes> Updates(const json& c) {
  std::vector<Bytes> out;
  for (const auto& u : c["updates"]) out.push_back(B64(u.get<std::string>()));
  return out;
}

Bytes Merge(const std::vector<Bytes>& parts) {
  std::vector<ByteView> views(parts.begin(), parts.end());
  auto merged = MergeUpdates(views);
  INFO(merged.status().ToString());
  REQUIRE(merged.ok());
  return *merged;
}

json Inspect(ByteView update) {
  auto text = InspectUpdate(update, InspectFormat::kJson);
  INFO(text.status().ToString());
  REQUIRE(text.ok());
  return json::parse(*text);
}

TEST_CASE("VectorsCoverEveryCase", "[yjs][vectors]") {
  CHECK(Vectors()["yjs_version"] == "13.6.33");
  CHECK(Vectors()["cases"].size() == 18);
}

TEST_CASE("MergeIsByteIdenticalToYjs", "[yjs][vectors]") {
  for (const auto& c : Vectors()["cases"]) {
    const std::string name = c["name"];
    SECTION(name) {
      auto updates = Updates(c);
      Bytes merged = B64(c["merged"]);
      CHECK(ToHex(Merge(updates)) == ToHex(merged));

      std::vector<Bytes> reversed(updates.rbegin(), updates.rend());
      CHECK(ToHex(Merge(reversed)) == ToHex(B64(c["merged_reversed_input"])));
      CHECK(ToHex(Merge({merged, merged})) == ToHex(B64(c["merge_of_merged_with_itself"])));

      if (c.contains("merged_of_seeded_shuffle")) {
        std::vector<Bytes> shuffled;
        for (const auto& i : c["seeded_shuffle_order"])
          shuffled.push_back(updates[i.get<size_t>()]);
        CHECK(ToHex(Merge(shuffled)) == ToHex(B64(c["merged_of_seeded_shuffle"])));
        const size_t half = updates.size() / 2;
        Bytes left = Merge(std::vector<Bytes>(updates.begin(), updates.begin() + half));
        Bytes right = Merge(std::vector<Bytes>(updates.begin() + half, updates.end()));
        CHECK(ToHex(Merge({left, right})) == ToHex(B64(c["merged_two_level"])));
      }
    }
  }
}

TEST_CASE("StateVectorsFromUpdatesMatchYjs", "[yjs][vectors]") {
  for (const auto& c : Vectors()["cases"]) {
    const std::string name = c["name"];
    SECTION(name) {
      auto updates = Updates(c);
      for (size_t i = 0; i < updates.size(); ++i) {
        auto sv = StateVectorFromUpdate(updates[i]);
        REQUIRE(sv.ok());
        CHECK(ToHex(*sv) == ToHex(B64(c["update_state_vectors"][i])));
      }
      auto sv = StateVectorFromUpdate(B64(c["merged"]));
      REQUIRE(sv.ok());
      CHECK(ToHex(*sv) == ToHex(B64(c["merged_state_vector"])));

      // The document's state vector is written in descending client order.
      auto doc_sv = DecodeStateVector(B64(c["doc_state_vector"]));
      REQUIRE(doc_sv.ok());
      CHECK(ToHex(EncodeStateVector(*doc_sv)) == ToHex(B64(c["doc_state_vector"])));
      StateVector from_merged = *DecodeStateVector(*sv);
      CHECK((from_merged == *doc_sv) == c["state_vector_from_update_equals_doc_state_vector"]);
    }
  }
}

TEST_CASE("DiffIsByteIdenticalToYjs", "[yjs][vectors]") {
  for (const auto& c : Vectors()["cases"]) {
    const std::string name = c["name"];
    SECTION(name) {
      Bytes merged = B64(c["merged"]);
      for (const auto& d : c["diffs"]) {
        INFO(d["description"].get<std::string>());
        auto diff = DiffUpdate(merged, B64(d["state_vector"]));
        REQUIRE(diff.ok());
        CHECK(ToHex(*diff) == ToHex(B64(d["diff"])));
        if (d.contains("diff_decoded")) CHECK(Inspect(*diff) == d["diff_decoded"]);
      }
    }
  }
}

TEST_CASE("InspectorDescribesStructsAsYjsDecodesThem", "[yjs][vectors]") {
  for (const auto& c : Vectors()["cases"]) {
    const std::string name = c["name"];
    SECTION(name) {
      auto updates = Updates(c);
      if (c.contains("updates_decoded")) {
        for (size_t i = 0; i < updates.size(); ++i) {
          CHECK(Inspect(updates[i]) == c["updates_decoded"][i]);
        }
      }
      CHECK(Inspect(B64(c["merged"])) == c["merged_decoded"]);
      if (c.contains("full_state_update_decoded")) {
        CHECK(Inspect(B64(c["full_state_update"])) == c["full_state_update_decoded"]);
      }
      // Every yjs-made update is valid, including the full-state encoding.
      CHECK(ValidateUpdate(B64(c["full_state_update"])).ok());
      auto text = InspectUpdate(B64(c["merged"]), InspectFormat::kText);
      REQUIRE(text.ok());
      CHECK(text->find("Item (") != std::string::npos);
    }
  }
}

TEST_CASE("SurrogatePairSplitByDiffAndRepairedByMerge", "[yjs][vectors]") {
  const json* c = nullptr;
  for (const auto& x : Vectors()["cases"]) {
    if (x["name"] == "utf16_non_ascii_emoji") c = &x;
  }
  REQUIRE(c != nullptr);
  const json& split = (*c)["surrogate_split"];
  Bytes merged = B64((*c)["merged"]);
  Bytes sv = {1, 3, 12};
  auto diff = DiffUpdate(merged, sv);
  REQUIRE(diff.ok());
  CHECK(ToHex(*diff) == ToHex(B64(split["diff_at_3_12"])));
  CHECK(Inspect(*diff) == split["diff_at_3_12_decoded"]);
  auto updates = Updates(*c);
  Bytes remerged = Merge({*diff, updates[2]});
  CHECK(ToHex(remerged) == ToHex(B64(split["merged_with_updates_2"])));
}

TEST_CASE("GapBecomesSkipAndIsFilledLater", "[yjs][vectors]") {
  const json* c = nullptr;
  for (const auto& x : Vectors()["cases"]) {
    if (x["name"] == "gap_skip_struct") c = &x;
  }
  REQUIRE(c != nullptr);
  const json& extra = (*c)["extra_state_vectors"];
  auto sv = StateVectorFromUpdate(B64(extra["update"]));
  REQUIRE(sv.ok());
  CHECK(ToHex(*sv) == ToHex(B64(extra["state_vector"])));
  const json& filled = (*c)["gap_filled"];
  Bytes full = Merge({B64((*c)["merged"]), B64(filled["missing_update"])});
  CHECK(ToHex(full) == ToHex(B64(filled["update"])));
  CHECK(Inspect(full) == filled["decoded"]);
}

TEST_CASE("PrimitiveEncodingsMatchLib0", "[yjs][vectors]") {
  const json& p = Vectors()["primitives"];
  for (const auto& v : p["varUint"]) {
    Bytes bytes = Hex(v["hex"]);
    internal::Reader r(bytes);
    uint64_t value = 0;
    REQUIRE(r.ReadVarUint(&value));
    CHECK(r.AtEnd());
    CHECK(value == v["value"].get<uint64_t>());
    Bytes out;
    internal::PutVarUint(&out, value);
    CHECK(out == bytes);
  }
  for (const auto& v : p["any"]) {
    Bytes bytes = Hex(v["hex"]);
    internal::Reader r(bytes);
    std::string rendered;
    INFO(v["hex"].get<std::string>());
    REQUIRE(internal::ReadAnys(r, 1, &rendered));
    CHECK(r.AtEnd());
    CHECK(json::parse(rendered) == v["value"]);
  }
  for (const auto& v : p["varString"]) {
    Bytes bytes = Hex(v["hex"]);
    internal::Reader r(bytes);
    std::string_view s;
    uint64_t units = 0;
    REQUIRE(r.ReadVarString(&s, &units));
    CHECK(units == v["utf16_len"].get<uint64_t>());
  }
}

TEST_CASE("EdgeCasesMatchYjs", "[yjs][vectors]") {
  const json& e = Vectors()["edge_cases"];
  auto none = MergeUpdates({});
  REQUIRE(none.ok());
  CHECK(ToHex(*none) == e["merge_of_no_updates"]);
  Bytes empty = Hex(e["empty_doc_update"]);
  CHECK(ValidateUpdate(empty).ok());
  auto sv = StateVectorFromUpdate(empty);
  REQUIRE(sv.ok());
  CHECK(ToHex(*sv) == e["state_vector_of_empty_update"]);
  CHECK(ToHex(EncodeStateVector({})) == e["empty_doc_state_vector"]);

  const json& ds = e["delete_set_passthrough"];
  Bytes update = Hex(ds["update"]);
  auto diff = DiffUpdate(update, Bytes{0});
  REQUIRE(diff.ok());
  CHECK(ToHex(*diff) == ds["diffUpdate_empty_sv"]);
  CHECK(ToHex(Merge({update, empty})) == ds["mergeUpdates_with_empty_update"]);
}

}  // namespace
}  // namespace quire::yjs
