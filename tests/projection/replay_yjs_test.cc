// Replay of yjs documents: each snapshot must be the fold of what it covers as a document
// (yjs::SameDocument), whatever its bytes.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "core/yjs/update.h"
#include "eventlog/backend.h"
#include "projection/replay.h"
#include "tests/core/yjs_support.h"

namespace quire::projection {
namespace {

using eventlog::Event;
using eventlog::EventKind;

Event Make(Seq seq, EventKind kind) {
  Event e;
  e.document_id = "y";
  e.seq = seq;
  e.kind = kind;
  e.created_at = 1000 + seq;
  return e;
}

// created (seq 1), then "Hello" typed as five updates (seq 2..6), as yjs 13.6 made them.
std::vector<Event> TypedHello() {
  const auto vectors = yjs::testing::LoadVectors("vectors.json");
  std::vector<Event> events;
  Event created = Make(1, EventKind::kCreated);
  created.title = "t";
  created.crdt = CrdtKind::kYjs;
  created.actor_id = "owner";
  events.push_back(created);
  for (const auto& c : vectors["cases"]) {
    if (c["name"] != "single_client_typing") continue;
    Seq seq = 2;
    for (const auto& u : c["updates"]) {
      Event e = Make(seq, EventKind::kUpdate);
      e.op_id = "op" + std::to_string(seq++);
      e.payload = yjs::testing::B64(u.get<std::string>());
      events.push_back(e);
    }
  }
  REQUIRE(events.size() == 6);
  return events;
}

Event Snapshot(Seq seq, Seq version, Bytes payload) {
  Event e = Make(seq, EventKind::kSnapshot);
  e.version = version;
  e.payload = std::move(payload);
  return e;
}

ReplayReport Check(const std::vector<Event>& events) {
  ReplayChecker checker;
  for (const Event& e : events) checker.Observe(e);
  checker.CheckCatalog(checker.Catalog());
  return checker.Finish();
}

Bytes Hello() {
  return yjs::testing::B64("AQEBAAQBAXQFSGVsbG8A");  // Y.encodeStateAsUpdate: one 5-char item
}

TEST_CASE("YjsSnapshotWithOtherBytesButTheSameDocumentReplaysClean", "[replay][yjs]") {
  std::vector<Event> events = TypedHello();
  events.push_back(Snapshot(7, 6, Hello()));
  ReplayReport r = Check(events);
  CHECK(r.clean());
  CHECK(r.folds_checked == 1);
  for (const auto& v : r.violations) FAIL(v.check << ": " << v.message);
}

TEST_CASE("YjsSnapshotWithOtherTextIsAFoldViolation", "[replay][yjs]") {
  std::vector<Event> events = TypedHello();
  Bytes changed = Hello();
  changed[changed.size() - 2] = 'p';  // "Hellp"
  events.push_back(Snapshot(7, 6, changed));
  ReplayReport r = Check(events);
  REQUIRE(r.violation_count == 1);
  CHECK(r.violations[0].check == "snapshot_fold");
  CHECK(r.violations[0].seq == 7);
  CHECK_THAT(r.violations[0].message, Catch::Contains("struct (1,0): content differs"));
}

TEST_CASE("YjsSnapshotMissingAnUpdateIsAFoldViolation", "[replay][yjs]") {
  std::vector<Event> events = TypedHello();
  std::vector<ByteView> first_four;
  for (size_t i = 1; i <= 4; ++i) first_four.push_back(events[i].payload);
  auto partial = yjs::MergeUpdates(first_four);
  REQUIRE(partial.ok());
  events.push_back(Snapshot(7, 6, *partial));  // claims to cover seq 6, lacks the "o"
  ReplayReport r = Check(events);
  REQUIRE(r.violation_count == 1);
  CHECK(r.violations[0].check == "snapshot_fold");
  CHECK_THAT(r.violations[0].message, Catch::Contains("state vectors differ"));
}

TEST_CASE("YjsSnapshotsChainOnTheStoredBytes", "[replay][yjs]") {
  // A document-equal snapshot becomes the base of the next fold, as on the server.
  std::vector<Event> events = TypedHello();
  events.push_back(Snapshot(7, 6, Hello()));
  Event more = Make(8, EventKind::kUpdate);
  more.op_id = "op8";
  more.payload = yjs::testing::Hex("01010105840104012100");  // "!" after the "o"
  REQUIRE(yjs::ValidateUpdate(more.payload).ok());
  events.push_back(more);
  const Bytes hello = Hello();
  ByteView parts[] = {hello, more.payload};
  auto fold = yjs::MergeUpdates(std::span<const ByteView>(parts, 2));
  REQUIRE(fold.ok());
  events.push_back(Snapshot(9, 8, *fold));
  ReplayReport r = Check(events);
  CHECK(r.clean());
  CHECK(r.folds_checked == 2);
}

}  // namespace
}  // namespace quire::projection
