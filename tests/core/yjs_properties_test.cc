// Properties any merge and diff must have (SPEC.md section 8), checked on the vectors and on
// random regroupings of the 500-op random session, plus the Codec's fold and merge cost.
#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "core/yjs/lib0_internal.h"
#include "core/yjs/update.h"
#include "core/yjs/update_internal.h"
#include "core/yjs/yjs_codec.h"
#include "tests/core/yjs_support.h"

namespace quire::yjs {
namespace {

using nlohmann::json;
using testing::B64;
using testing::LoadVectors;
using testing::ToHex;

const json& Vectors() {
  static const json v = LoadVectors("vectors.json");
  return v;
}
const json& Case(const std::string& name) {
  for (const auto& c : Vectors()["cases"]) {
    if (c["name"] == name) return c;
  }
  throw std::runtime_error("no case " + name);
}
std::vector<Bytes> Updates(const json& c) {
  std::vector<Bytes> out;
  for (const auto& u : c["updates"]) out.push_back(B64(u));
  return out;
}
Bytes Merge(const std::vector<Bytes>& parts) {
  std::vector<ByteView> views(parts.begin(), parts.end());
  auto merged = MergeUpdates(views);
  INFO(merged.status().ToString());
  REQUIRE(merged.ok());
  return *merged;
}

std::string IdText(const Id& id) {
  return "(" + std::to_string(id.client) + "," + std::to_string(id.clock) + ")";
}

// The UTF-16 code units of UTF-8 `s`.
std::vector<uint16_t> Utf16(std::string_view s) {
  std::vector<uint16_t> out;
  for (size_t i = 0; i < s.size();) {
    auto c = static_cast<uint8_t>(s[i]);
    size_t len = c < 0x80 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
    uint32_t cp = len == 1 ? c : c & (0xff >> (len + 1));
    for (size_t k = 1; k < len; ++k) cp = (cp << 6) | (static_cast<uint8_t>(s[i + k]) & 0x3f);
    if (cp >= 0x10000) {
      out.push_back(static_cast<uint16_t>(0xd800 + ((cp - 0x10000) >> 10)));
      out.push_back(static_cast<uint16_t>(0xdc00 + ((cp - 0x10000) & 0x3ff)));
    } else {
      out.push_back(static_cast<uint16_t>(cp));
    }
    i += len;
  }
  return out;
}

// A document as a map from every id to what it holds: the unit of content and how it is
// attached (origin, right origin, parent). Two updates with the same units describe the same
// structs however those are split into Items.
using Units = std::map<std::pair<uint64_t, uint64_t>, std::string>;

Units UnitsOf(ByteView update) {
  auto decoded = DecodeUpdate(update);
  REQUIRE(decoded.ok());
  Units units;
  for (const Struct& s : decoded->structs) {
    if (s.kind == StructKind::kSkip) continue;
    std::vector<std::string> content(s.length);
    internal::Reader r(s.content);
    uint64_t n = 0;
    switch (s.content_kind) {
      case ContentKind::kString: {
        std::string_view str;
        REQUIRE(r.ReadVarString(&str));
        auto u16 = Utf16(str);
        REQUIRE(u16.size() == s.length);
        for (size_t k = 0; k < u16.size(); ++k) content[k] = "s" + std::to_string(u16[k]);
        break;
      }
      case ContentKind::kAny:
      case ContentKind::kJson:
        REQUIRE(r.ReadVarUint(&n));
        for (uint64_t k = 0; k < n; ++k) {
          size_t begin = r.pos();
          if (s.content_kind == ContentKind::kAny) {
            REQUIRE(internal::ReadAnys(r, 1, nullptr));
          } else {
            ByteView skipped;
            REQUIRE(r.ReadVarBytes(&skipped));
          }
          content[k] = "a" + ToHex(r.Span(begin, r.pos()));
        }
        break;
      case ContentKind::kDeleted:
        std::fill(content.begin(), content.end(), "deleted");
        break;
      case ContentKind::kNone:
        std::fill(content.begin(), content.end(), "gc");
        break;
      default:
        content[0] = std::to_string(static_cast<int>(s.content_kind)) + ":" + ToHex(s.content);
    }
    for (uint64_t k = 0; k < s.length; ++k) {
      std::string unit = content[k];
      if (s.kind == StructKind::kItem) {
        if (k > 0) {
          unit += " origin " + IdText({s.id.client, s.id.clock + k - 1});
        } else if (s.has_origin) {
          unit += " origin " + IdText(s.origin);
        }
        if (s.has_right_origin) unit += " right " + IdText(s.right_origin);
        if (k == 0 && !s.has_origin && !s.has_right_origin) {
          unit += s.parent_kind == ParentKind::kRoot ? " root " + std::string(s.parent_root)
                                                     : " parent " + IdText(s.parent_item);
          if (s.has_parent_sub) unit += " key " + std::string(s.parent_sub);
        }
      }
      auto [it, inserted] = units.emplace(std::make_pair(s.id.client, s.id.clock + k), unit);
      if (!inserted) REQUIRE(it->second == unit);
    }
  }
  return units;
}

DeleteSet MergedDeleteSetOf(const std::vector<Bytes>& updates) {
  std::vector<DeleteSet> sets;
  for (const Bytes& u : updates) sets.push_back(DecodeUpdate(u)->delete_set);
  return MergeDeleteSets(sets);
}

void ExpectSameDocument(const Bytes& a, const Bytes& b) {
  CHECK(UnitsOf(a) == UnitsOf(b));
  CHECK(DecodeUpdate(a)->delete_set == DecodeUpdate(b)->delete_set);
  CHECK(ToHex(*StateVectorFromUpdate(a)) == ToHex(*StateVectorFromUpdate(b)));
}

TEST_CASE("MergeKeepsEveryUnitOfEveryInputAndNothingElse", "[yjs][properties]") {
  for (const auto& c : Vectors()["cases"]) {
    // In gc_structs the inputs disagree on purpose (a live item and a GC for the same ids).
    if (c["name"] == "gc_structs") continue;
    const std::string name = c["name"];
    SECTION(name) {
      auto updates = Updates(c);
      Units expected;
      for (const Bytes& u : updates) {
        for (auto& [id, unit] : UnitsOf(u)) {
          auto [it, inserted] = expected.emplace(id, unit);
          if (!inserted) REQUIRE(it->second == unit);
        }
      }
      Bytes merged = Merge(updates);
      CHECK(UnitsOf(merged) == expected);
      CHECK(DecodeUpdate(merged)->delete_set == MergedDeleteSetOf(updates));
      // The full-state encoding of the document holds the same ids.
      Units full = UnitsOf(B64(c["full_state_update"]));
      std::set<std::pair<uint64_t, uint64_t>> merged_ids, full_ids;
      for (auto& [id, unit] : expected) merged_ids.insert(id);
      for (auto& [id, unit] : full) full_ids.insert(id);
      if (c["name"] != "gap_skip_struct") CHECK(merged_ids == full_ids);
    }
  }
}

TEST_CASE("MergeOfOneUpdateIsThatUpdate", "[yjs][properties]") {
  for (const auto& c : Vectors()["cases"]) {
    for (const auto& u : c["updates"]) {
      Bytes b = B64(u);
      CHECK(Merge({b}) == b);
    }
  }
}

TEST_CASE("DiffAgainstOwnStateVectorHoldsNoStructs", "[yjs][properties]") {
  for (const auto& c : Vectors()["cases"]) {
    // With a gap, the structs after the Skip are not covered by the state vector.
    if (c["name"] == "gap_skip_struct") continue;
    INFO(c["name"].get<std::string>());
    Bytes merged = B64(c["merged"]);
    auto sv = StateVectorFromUpdate(merged);
    REQUIRE(sv.ok());
    auto diff = DiffUpdate(merged, *sv);
    REQUIRE(diff.ok());
    auto decoded = DecodeUpdate(*diff);
    REQUIRE(decoded.ok());
    CHECK(decoded->structs.empty());
    CHECK(MergeDeleteSets(std::vector<DeleteSet>{decoded->delete_set}) ==
          DecodeUpdate(merged)->delete_set);
    // An empty state vector gives everything back, re-encoded identically.
    CHECK(*DiffUpdate(merged, Bytes{0}) == merged);
  }
}

TEST_CASE("MergeIsInsensitiveToGroupingOrderAndDuplicates", "[yjs][properties]") {
  auto updates = Updates(Case("random_session_3_clients_500_ops"));
  REQUIRE(updates.size() > 300);
  const Bytes reference = B64(Case("random_session_3_clients_500_ops")["merged"]);
  for (uint32_t seed : {1u, 2u, 3u, 4u, 5u}) {
    INFO("seed " << seed);
    std::mt19937 rng(seed);
    std::vector<Bytes> shuffled = updates;
    std::shuffle(shuffled.begin(), shuffled.end(), rng);
    // Duplicate a few inputs.
    for (int i = 0; i < 20; ++i) shuffled.push_back(updates[rng() % updates.size()]);
    std::vector<Bytes> chunks;
    for (size_t i = 0; i < shuffled.size();) {
      size_t n = 1 + rng() % 40;
      std::vector<Bytes> chunk(shuffled.begin() + i,
                               shuffled.begin() + std::min(shuffled.size(), i + n));
      chunks.push_back(Merge(chunk));
      i += n;
    }
    // Merge the chunk merges pairwise, in a tree.
    while (chunks.size() > 1) {
      std::vector<Bytes> next;
      for (size_t i = 0; i + 1 < chunks.size(); i += 2)
        next.push_back(Merge({chunks[i], chunks[i + 1]}));
      if (chunks.size() % 2) next.push_back(chunks.back());
      chunks = std::move(next);
    }
    ExpectSameDocument(chunks[0], reference);
  }
}

TEST_CASE("DiffAgainstAPrefixStateVectorCompletesIt", "[yjs][properties]") {
  auto updates = Updates(Case("random_session_3_clients_500_ops"));
  const Bytes full = Merge(updates);
  for (size_t k : {size_t{1}, size_t{17}, updates.size() / 3, updates.size() - 1}) {
    INFO("prefix " << k);
    Bytes prefix = Merge(std::vector<Bytes>(updates.begin(), updates.begin() + k));
    auto sv = StateVectorFromUpdate(prefix);
    REQUIRE(sv.ok());
    auto diff = DiffUpdate(full, *sv);
    REQUIRE(diff.ok());
    CHECK(diff->size() < full.size());
    ExpectSameDocument(Merge({prefix, *diff}), full);
    // Diffing against a decoded state vector gives the same bytes.
    CHECK(*DiffUpdate(full, *DecodeStateVector(*sv)) == *diff);
  }
}

TEST_CASE("MergedDeleteSetsAreSortedDisjointAndCoverTheUnion", "[yjs][properties]") {
  std::mt19937 rng(7);
  for (int round = 0; round < 200; ++round) {
    std::vector<DeleteSet> sets(1 + rng() % 4);
    std::set<std::pair<uint64_t, uint64_t>> deleted;
    for (DeleteSet& ds : sets) {
      for (uint64_t client : {3u, 9u, 1u}) {
        if (rng() % 2) continue;
        DeleteSetClient entry{client, {}};
        for (int i = 0, n = 1 + static_cast<int>(rng() % 5); i < n; ++i) {
          DeleteRange r{rng() % 40, 1 + rng() % 6};
          entry.ranges.push_back(r);
          for (uint64_t k = 0; k < r.len; ++k) deleted.insert({client, r.clock + k});
        }
        ds.push_back(entry);
      }
    }
    DeleteSet merged = MergeDeleteSets(sets);
    std::set<std::pair<uint64_t, uint64_t>> covered;
    for (size_t i = 0; i < merged.size(); ++i) {
      if (i > 0) CHECK(merged[i - 1].client > merged[i].client);
      const auto& ranges = merged[i].ranges;
      for (size_t k = 0; k < ranges.size(); ++k) {
        if (k > 0) CHECK(ranges[k - 1].clock + ranges[k - 1].len < ranges[k].clock);
        for (uint64_t x = 0; x < ranges[k].len; ++x)
          covered.insert({merged[i].client, ranges[k].clock + x});
      }
    }
    CHECK(covered == deleted);
    CHECK(MergeDeleteSets(std::vector<DeleteSet>{merged}) == merged);
  }
  // The example of SPEC.md section 3.
  DeleteSet example = {{1, {{2, 2}, {4, 1}, {3, 3}, {9, 1}}}};
  CHECK(MergeDeleteSets(std::vector<DeleteSet>{example}) == DeleteSet{{1, {{2, 4}, {9, 1}}}});
}

TEST_CASE("StateVectorsRoundTrip", "[yjs][properties]") {
  StateVector sv = {{1, 5}, {300, 2}, {4294967295u, 1}, {internal::kMaxSafeInteger, 7}};
  Bytes encoded = EncodeStateVector(sv);
  auto decoded = DecodeStateVector(encoded);
  REQUIRE(decoded.ok());
  CHECK(*decoded == sv);
  // Descending client order; a repeated client keeps its last clock.
  Bytes repeated = {2, 1, 5, 1, 9};
  CHECK(*DecodeStateVector(repeated) == StateVector{{1, 9}});
  CHECK_FALSE(DecodeStateVector(Bytes{}).ok());
  CHECK_FALSE(DecodeStateVector(Bytes{1, 1}).ok());
  CHECK_FALSE(DecodeStateVector(Bytes{0, 0}).ok());
  CHECK_FALSE(DecodeStateVector(Bytes{0xff, 0xff, 0xff, 0x7f}).ok());
}

TEST_CASE("BlocksInAnyOrderMergeWithoutLoss", "[yjs][properties]") {
  // Client 1 and client 2 blocks written in ascending client order (yjs writes descending).
  Bytes ascending = {2, 1, 1, 0, 0x04, 1, 1, 't', 1, 'a', 1, 2, 0, 0x84, 1, 0, 1, 'b', 0};
  REQUIRE(ValidateUpdate(ascending).ok());
  Bytes other = {1, 1, 3, 0, 0x84, 2, 0, 1, 'c', 0};
  Bytes merged = Merge({ascending, other});
  Units expected = UnitsOf(ascending);
  for (auto& [id, unit] : UnitsOf(other)) expected.emplace(id, unit);
  CHECK(UnitsOf(merged) == expected);
  auto sv = StateVectorFromUpdate(merged);
  REQUIRE(sv.ok());
  CHECK(*DecodeStateVector(*sv) == StateVector{{1, 1}, {2, 1}, {3, 1}});
}

// A merge copies a struct's wire bytes only when writing its fields gives them back. yjs writes
// the parentSub bit (0x20) of an Item with an origin although the key is not written then, and
// reads a GC by its low five bits; a merge writes both again as yjs's mergeUpdates does.
TEST_CASE("MergeCopiesAStructsBytesOnlyWhenTheyAreItsCanonicalEncoding", "[yjs][properties]") {
  // Client 5: an Item with an origin and the parentSub bit, then one without an origin.
  const Bytes items = {1, 2, 5, 0, 0x84 | 0x20, 7, 0, 1, 'a', 0x04, 1, 1, 'm', 2, 'b', 'c', 0};
  // Client 3: a GC whose info byte has high bits set, then a canonical GC; then in another
  // update the GC that follows it, which the merge adds to the last one.
  const Bytes gcs = {1, 2, 3, 0, 0xe0, 2, 0x00, 1, 0};
  const Bytes more_gc = {1, 1, 3, 3, 0x00, 2, 0};
  // Client 9: an Item whose parent info is 2, which yjs reads as 0 (a parent Item) and writes 0.
  const Bytes odd_parent = {1, 1, 9, 0, 0x04, 2, 1, 0, 1, 'x', 0};
  for (const Bytes& u : {items, gcs, more_gc, odd_parent}) REQUIRE(ValidateUpdate(u).ok());

  internal::UpdateReader reader(items);
  Struct first, second;
  REQUIRE(reader.Next(&first));
  REQUIRE(reader.Next(&second));
  CHECK(first.raw.empty());
  CHECK(ToHex(Bytes(second.raw.begin(), second.raw.end())) ==
        ToHex(Bytes(items.begin() + 9, items.end() - 1)));
  internal::Arena arena;
  auto sliced = internal::SliceStruct(second, 1, &arena);
  REQUIRE(sliced.ok());
  CHECK(sliced->raw.empty());

  // Blocks by client, descending; each one's structs written as yjs's mergeUpdates writes them.
  Bytes expected = {3};
  for (const Bytes& block : {Bytes{1, 9, 0, 0x04, 0, 1, 0, 1, 'x'},
                             Bytes{2, 5, 0, 0x84, 7, 0, 1, 'a', 0x04, 1, 1, 'm', 2, 'b', 'c'},
                             Bytes{2, 3, 0, 0x00, 2, 0x00, 3}}) {
    expected.insert(expected.end(), block.begin(), block.end());
  }
  expected.push_back(0);  // an empty delete set
  CHECK(ToHex(Merge({items, gcs, more_gc, odd_parent})) == ToHex(expected));
}

TEST_CASE("YjsCodecValidatesAndFoldsByMerging", "[yjs][codec]") {
  const Codec& codec = YjsCodec();
  CHECK(codec.kind() == CrdtKind::kYjs);
  CHECK(codec.CanFold());
  auto updates = Updates(Case("random_session_3_clients_500_ops"));
  for (const Bytes& u : updates) REQUIRE(codec.ValidateUpdate(u).ok());
  CHECK_FALSE(codec.ValidateUpdate(Bytes{}).ok());
  CHECK_FALSE(codec.ValidateUpdate(Bytes{1, 2, 3}).ok());

  // A fold with no snapshot is the merge of the updates; yjs made the same bytes.
  std::vector<ByteView> views(updates.begin(), updates.end());
  auto folded = codec.Fold({}, views);
  REQUIRE(folded.ok());
  CHECK(ToHex(*folded) == ToHex(B64(Case("random_session_3_clients_500_ops")["merged"])));

  // The compactor folds every 200 updates into the previous snapshot.
  Bytes snapshot;
  for (size_t i = 0; i < updates.size(); i += 200) {
    std::vector<ByteView> part(views.begin() + i, views.begin() + std::min(views.size(), i + 200));
    auto next = codec.Fold(snapshot, part);
    REQUIRE(next.ok());
    snapshot = *next;
  }
  ExpectSameDocument(snapshot, *folded);
  // A bad update fails the fold.
  Bytes bad = {1, 2, 3};
  ByteView with_bad[] = {views[0], bad};
  CHECK_FALSE(codec.Fold(snapshot, with_bad).ok());
}

// Client `client` typing one character per update after its previous one.
Bytes Keystroke(uint64_t client, uint64_t clock, char ch) {
  Bytes u;
  internal::PutVarUint(&u, 1);
  internal::PutVarUint(&u, 1);
  internal::PutVarUint(&u, client);
  internal::PutVarUint(&u, clock);
  if (clock == 0) {
    u.insert(u.end(), {0x04, 0x01, 0x01, 't'});
  } else {
    u.push_back(0x84);
    internal::PutVarUint(&u, client);
    internal::PutVarUint(&u, clock - 1);
  }
  u.insert(u.end(), {0x01, static_cast<uint8_t>(ch), 0x00});
  return u;
}

TEST_CASE("MergingManyUpdatesIsNotQuadratic", "[yjs][codec]") {
  // 60,000 keystrokes of three clients, merged in one call (yjs re-sorts all inputs for every
  // struct; a quadratic merge would take minutes here).
  std::vector<Bytes> updates;
  for (uint64_t clock = 0; clock < 20000; ++clock) {
    for (uint64_t client : {11u, 7u, 3000000001u}) {
      updates.push_back(Keystroke(client, clock, static_cast<char>('a' + clock % 26)));
    }
  }
  const auto start = std::chrono::steady_clock::now();
  Bytes merged = Merge(updates);
  const auto elapsed = std::chrono::steady_clock::now() - start;
  CHECK(elapsed < std::chrono::seconds(5));
  auto decoded = DecodeUpdate(merged);
  REQUIRE(decoded.ok());
  CHECK(decoded->structs.size() == updates.size());
  CHECK(*DecodeStateVector(*StateVectorFromUpdate(merged)) ==
        StateVector{{7, 20000}, {11, 20000}, {3000000001u, 20000}});

  // Folding 200 keystrokes into a large snapshot.
  std::vector<Bytes> more;
  for (uint64_t clock = 20000; clock < 20200; ++clock) more.push_back(Keystroke(7, clock, 'z'));
  std::vector<ByteView> views(more.begin(), more.end());
  const auto fold_start = std::chrono::steady_clock::now();
  auto folded = YjsCodec().Fold(merged, views);
  CHECK(std::chrono::steady_clock::now() - fold_start < std::chrono::seconds(1));
  REQUIRE(folded.ok());
  CHECK(DecodeStateVector(*StateVectorFromUpdate(*folded))->at(7) == 20200);
}

}  // namespace
}  // namespace quire::yjs
