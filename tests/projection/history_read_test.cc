// projection/history over real backends (memory and a SQLite file), without the server: the
// cursor format, paging in both directions across pruned holes, the retention bounds, and the
// state at a seq next to a snapshot.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "eventlog/backend.h"
#include "projection/history.h"
#include "projection/replay.h"
#include "tests/projection/projection_test_util.h"

namespace quire::projection {
namespace {

using eventlog::AppendRequest;
using eventlog::AppendResult;
using eventlog::Event;
using eventlog::EventKind;

std::unique_ptr<eventlog::Backend> Open(const std::string& kind, const testing::TempDir& dir) {
  auto b = eventlog::OpenBackend(kind == "sqlite" ? dir.SqliteUrl() : "memory://",
                                 eventlog::BackendOptions{SyncMode::kNormal, false});
  REQUIRE(b.ok());
  return std::move(*b);
}

void Commit(eventlog::Backend& b, AppendRequest e) {
  AppendResult result;
  Status status;
  REQUIRE(b.CommitBatch({&e, 1}, {&result, 1}, {&status, 1}).ok());
  REQUIRE(status.ok());
}

// "d": created, then updates "a".."j" at seqs 2..11 (automerge), a snapshot covering 6 at
// seq 12, then updates "k", "l" at 13, 14.
void Fill(eventlog::Backend& b) {
  Event c;
  c.document_id = "d";
  c.kind = EventKind::kCreated;
  c.title = "t";
  c.crdt = CrdtKind::kAutomerge;
  Commit(b, c);
  auto update = [&](char ch) {
    Event u;
    u.document_id = "d";
    u.kind = EventKind::kUpdate;
    u.op_id = std::string(1, ch);
    u.payload = Bytes{static_cast<uint8_t>(ch)};
    Commit(b, u);
  };
  for (char ch = 'a'; ch <= 'j'; ++ch) update(ch);
  Event s;
  s.document_id = "d";
  s.kind = EventKind::kSnapshot;
  s.version = 6;
  s.payload = testing::B("abcde");
  Commit(b, s);
  update('k');
  update('l');
}

std::vector<Seq> Seqs(const HistoryPage& p) {
  std::vector<Seq> out;
  for (const Event& e : p.items) out.push_back(e.seq);
  return out;
}

}  // namespace

TEST_CASE("HistoryCursorRoundTripsAndRejectsForeignText", "[history]") {
  for (HistoryCursor c : {HistoryCursor{false, 0}, HistoryCursor{true, 42},
                          HistoryCursor{false, 9'000'000'000'000}}) {
    auto back = DecodeHistoryCursor(EncodeHistoryCursor(c));
    REQUIRE(back.has_value());
    CHECK(back->descending == c.descending);
    CHECK(back->position == c.position);
  }
  CHECK_FALSE(DecodeHistoryCursor("").has_value());
  CHECK_FALSE(DecodeHistoryCursor("!!").has_value());
  CHECK_FALSE(DecodeHistoryCursor("aGVsbG8=").has_value());      // "hello"
  CHECK_FALSE(DecodeHistoryCursor("aDE6eDo1").has_value());      // "h1:x:5"
  CHECK_FALSE(DecodeHistoryCursor("aDE6YTotNQ==").has_value());  // "h1:a:-5"
  CHECK_FALSE(DecodeHistoryCursor("aDE6YTo1eA==").has_value());  // "h1:a:5x"
}

TEST_CASE("HistoryPagesSkipPrunedUpdatesInBothDirections", "[history]") {
  for (std::string kind : {"memory", "sqlite"}) {
    SECTION(kind) {
      testing::TempDir dir;
      auto b = Open(kind, dir);
      Fill(*b);
      auto before = ReadRetention(*b, "d");
      REQUIRE(before.ok());
      CHECK(before->pruned_through == 0);
      CHECK(before->oldest_state_seq == 1);
      REQUIRE(b->PruneUpdates("d", 6).ok());  // seqs 2..6 become tombstones

      auto asc = ReadHistoryPage(*b, "d", {false, 0}, 4);
      REQUIRE(asc.ok());
      CHECK(Seqs(*asc) == std::vector<Seq>{1, 7, 8, 9});
      CHECK(asc->more);
      CHECK(asc->retention.pruned_through == 6);
      CHECK(asc->retention.oldest_state_seq == 6);

      std::vector<Seq> desc;
      HistoryCursor cursor{true, 15};
      for (int i = 0; i < 10; ++i) {
        auto page = ReadHistoryPage(*b, "d", cursor, 3);
        REQUIRE(page.ok());
        for (Seq s : Seqs(*page)) desc.push_back(s);
        if (!page->more) break;
        cursor.position = page->items.back().seq;
      }
      CHECK(desc == std::vector<Seq>{14, 13, 12, 11, 10, 9, 8, 7, 1});

      // State: below the oldest is gone; at it, the snapshot; above, snapshot + updates.
      auto gone = ReadStateAt(*b, "d", CrdtKind::kAutomerge, 5);
      REQUIRE(gone.ok());
      CHECK_FALSE(gone->state.has_value());
      auto at8 = ReadStateAt(*b, "d", CrdtKind::kAutomerge, 8);
      REQUIRE(at8.ok());
      REQUIRE(at8->state.has_value());
      CHECK(at8->state->snapshot == testing::B("abcdefg"));
      auto at14 = ReadStateAt(*b, "d", CrdtKind::kOpaque, 14);
      REQUIRE(at14.ok());
      REQUIRE(at14->state.has_value());
      CHECK(at14->state->snapshot == testing::B("abcde"));
      CHECK(at14->state->snapshot_version == 6);
      CHECK(at14->state->updates.size() == 7);  // 7..11, 13, 14
    }
  }
}

TEST_CASE("ReplayFlagsMalformedVersionAndForkEvents", "[history]") {
  auto created = [](const std::string& id) {
    Event c;
    c.document_id = id;
    c.seq = 1;
    c.kind = EventKind::kCreated;
    c.title = "t";
    return c;
  };
  auto checks = [](const std::vector<Event>& events) {
    ReplayChecker checker;
    for (const Event& e : events) checker.Observe(e);
    std::vector<std::string> out;
    for (const auto& v : checker.Finish().violations) out.push_back(v.check);
    return out;
  };
  Event good_from;
  good_from.document_id = "f";
  good_from.seq = 2;
  good_from.kind = EventKind::kForkedFrom;
  good_from.title = "src";
  good_from.version = 4;
  Event named = good_from;
  named.kind = EventKind::kVersion;
  named.seq = 3;
  named.title = "v1";
  CHECK(checks({created("f"), good_from, named}).empty());

  Event unnamed = named;
  unnamed.title.clear();
  CHECK(checks({created("f"), good_from, unnamed}) == std::vector<std::string>{"version_event"});
  Event early_named = named;
  early_named.seq = 2;
  Event late_from = good_from;
  late_from.seq = 3;
  CHECK(checks({created("f"), early_named, late_from}) == std::vector<std::string>{"fork_event"});
  Event to_nowhere = good_from;
  to_nowhere.kind = EventKind::kForkedTo;
  to_nowhere.title.clear();
  CHECK(checks({created("f"), to_nowhere}) == std::vector<std::string>{"fork_event"});
}

}  // namespace quire::projection
