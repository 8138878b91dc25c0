#include <algorithm>
#include <catch2/catch.hpp>
#include <memory>
#include <string>
#include <vector>

#include "eventlog/backend.h"
#include "eventlog/document_record.h"
#include "projection/replay.h"

namespace quire::projection {
namespace {

using eventlog::DocumentRecord;
using eventlog::Event;
using eventlog::EventKind;

Event Make(const DocumentId& id, Seq seq, EventKind kind) {
  Event e;
  e.document_id = id;
  e.seq = seq;
  e.kind = kind;
  e.created_at = 1000 + seq;
  return e;
}
Event Created(const DocumentId& id, CrdtKind crdt = CrdtKind::kAutomerge) {
  Event e = Make(id, 1, EventKind::kCreated);
  e.title = "t";
  e.crdt = crdt;
  e.actor_id = "owner";
  return e;
}
Event Update(const DocumentId& id, Seq seq, std::string op, std::string bytes) {
  Event e = Make(id, seq, EventKind::kUpdate);
  e.op_id = std::move(op);
  e.payload.assign(bytes.begin(), bytes.end());
  return e;
}
Event Snap(const DocumentId& id, Seq seq, Seq version, std::string bytes) {
  Event e = Make(id, seq, EventKind::kSnapshot);
  e.version = version;
  e.payload.assign(bytes.begin(), bytes.end());
  return e;
}

// Feeds `events` and compares with the catalog eventlog::Apply makes from the same events
// (or `catalog` when given).
ReplayReport Check(const std::vector<Event>& events,
                   std::optional<std::vector<DocumentRecord>> catalog = std::nullopt) {
  ReplayChecker checker;
  for (const Event& e : events) checker.Observe(e);
  if (!catalog) catalog = checker.Catalog();
  checker.CheckCatalog(*catalog);
  return checker.Finish();
}

std::vector<std::string> Checks(const ReplayReport& r) {
  std::vector<std::string> out;
  for (const ReplayViolation& v : r.violations) out.push_back(v.check);
  return out;
}

TEST_CASE("ReplayOfAConsistentStreamIsClean", "[replay]") {
  std::vector<Event> events{Created("a"),
                            Created("b", CrdtKind::kOpaque),
                            Update("a", 2, "1", "x"),
                            Update("b", 2, "1", "opaque"),
                            Update("a", 3, "2", "y"),
                            Snap("a", 4, 3, "xy"),
                            Snap("b", 3, 2, "client"),
                            Update("a", 5, "3", "z")};
  ReplayReport r = Check(events);
  CHECK(r.clean());
  CHECK(r.documents == 2);
  CHECK(r.events == 8);
  CHECK(r.updates == 4);
  CHECK(r.snapshots == 2);
  CHECK(r.bytes == 1 + 6 + 1 + 2 + 6 + 1);
  CHECK(r.folds_checked == 1);  // the opaque snapshot is not the server's to check
}

TEST_CASE("ReplayReportsSeqNotStrictlyIncreasing", "[replay]") {
  ReplayReport r = Check({Created("a"), Update("a", 2, "1", "x"), Update("a", 2, "2", "y")});
  CHECK(Checks(r) == std::vector<std::string>{"seq_order"});
  CHECK(r.violations[0].seq == 2);
  CHECK(r.violations[0].document_id == "a");
}

TEST_CASE("ReplayReportsDuplicateOpIdWithinADocumentOnly", "[replay]") {
  ReplayReport r = Check({Created("a"), Created("b"), Update("a", 2, "op", "x"),
                          Update("b", 2, "op", "x"), Update("a", 3, "op", "y")});
  CHECK(Checks(r) == std::vector<std::string>{"duplicate_op_id"});
  CHECK(r.violations[0].document_id == "a");
  CHECK(r.violations[0].seq == 3);
}

TEST_CASE("ReplayFindsDuplicateOpIdsFarApartInALongDocument", "[replay]") {
  // Thousands of op_ids, so the first use and the repeats sit in different chunks of the
  // document's op_id log; "op-12" and "op-120" share a prefix but are different ids.
  std::vector<Event> events{Created("a", CrdtKind::kOpaque)};
  Seq seq = 1;
  for (int i = 0; i < 5000; ++i)
    events.push_back(Update("a", ++seq, "op-" + std::to_string(i), "x"));
  events.push_back(Update("a", ++seq, "op-12", "y"));    // seq 5002; first at seq 14
  events.push_back(Update("a", ++seq, "op-4999", "y"));  // seq 5003; first at seq 5001
  ReplayReport r = Check(events);
  REQUIRE(Checks(r) == std::vector<std::string>{"duplicate_op_id", "duplicate_op_id"});
  CHECK(r.violations[0].seq == 5002);
  CHECK(r.violations[0].message == "op_id \"op-12\" was used before, at seq 14");
  CHECK(r.violations[1].seq == 5003);
  CHECK(r.violations[1].message == "op_id \"op-4999\" was used before, at seq 5001");
  CHECK(r.updates == 5002);
}

TEST_CASE("ReplayReportsStreamsThatDoNotStartWithCreated", "[replay]") {
  ReplayChecker checker;
  checker.Observe(Update("a", 1, "op", "x"));
  ReplayReport r = checker.Finish();
  CHECK(Checks(r) == std::vector<std::string>{"first_event"});
}

TEST_CASE("ReplayReportsSnapshotThatIsNotTheFoldOfItsPrefix", "[replay]") {
  ReplayReport r = Check(
      {Created("a"), Update("a", 2, "1", "x"), Update("a", 3, "2", "y"), Snap("a", 4, 3, "yx")});
  CHECK(Checks(r) == std::vector<std::string>{"snapshot_fold"});
  // The fold starts from the previous snapshot.
  ReplayReport chained = Check({Created("a"), Update("a", 2, "1", "x"), Snap("a", 3, 2, "x"),
                                Update("a", 4, "2", "y"), Snap("a", 5, 4, "xy")});
  CHECK(chained.clean());
  CHECK(chained.folds_checked == 2);
}

TEST_CASE("ReplayReportsSnapshotVersionPastItsHeadOrGoingBack", "[replay]") {
  ReplayReport past = Check({Created("a", CrdtKind::kOpaque), Snap("a", 2, 2, "s")});
  CHECK(Checks(past) == std::vector<std::string>{"snapshot_version"});
  ReplayReport back = Check({Created("a", CrdtKind::kOpaque), Update("a", 2, "1", "x"),
                             Snap("a", 3, 2, "s"), Snap("a", 4, 1, "s")});
  CHECK(Checks(back) == std::vector<std::string>{"snapshot_version"});
}

TEST_CASE("ReplayAcceptsPrunedUpdatesOnlyUnderASnapshot", "[replay]") {
  // seq 2..3 pruned, covered by the snapshot at version 3.
  std::vector<Event> pruned{Created("a"), Snap("a", 4, 3, "xy"), Update("a", 5, "3", "z")};
  DocumentRecord stored;
  for (const Event& e : {Created("a"), Update("a", 2, "1", "x"), Update("a", 3, "2", "y"),
                         Snap("a", 4, 3, "xy"), Update("a", 5, "3", "z")}) {
    eventlog::Apply(stored, e);
  }
  ReplayReport ok = Check(pruned, std::vector<DocumentRecord>{stored});
  CHECK(ok.clean());
  CHECK(ok.folds_unverifiable == 1);

  // A hole no snapshot covers.
  ReplayReport hole = Check({Created("a"), Update("a", 2, "1", "x"), Update("a", 5, "3", "z")});
  CHECK(Checks(hole) == std::vector<std::string>{"pruned_uncovered"});
}

TEST_CASE("ReplayReportsCatalogRowsThatDifferMissingOrExtra", "[replay]") {
  std::vector<Event> events{Created("a"), Update("a", 2, "1", "x"), Created("b")};
  ReplayChecker checker;
  for (const Event& e : events) checker.Observe(e);
  std::vector<DocumentRecord> catalog = checker.Catalog();
  REQUIRE(catalog.size() == 2);
  catalog[0].title = "tampered";
  catalog[1].id = "c";
  checker.CheckCatalog(catalog);
  ReplayReport r = checker.Finish();
  std::vector<std::string> checks = Checks(r);
  std::sort(checks.begin(), checks.end());
  CHECK(checks == std::vector<std::string>{"catalog_extra", "catalog_mismatch", "catalog_missing"});
}

TEST_CASE("ReplayKeepsAtMostMaxViolationsButCountsAll", "[replay]") {
  ReplayOptions options;
  options.max_violations = 2;
  ReplayChecker checker(options);
  checker.Observe(Created("a"));
  for (int i = 0; i < 5; ++i) checker.Observe(Update("a", 2 + i, "same", "x"));
  ReplayReport r = checker.Finish();
  CHECK(r.violation_count == 4);
  CHECK(r.violations.size() == 2);
}

// A log of 40 interleaved documents, 300 snapshots (more than the fold threads keep queued),
// some of them wrong, among other violations.
std::vector<Event> ManySnapshotsSomeWrong() {
  std::vector<Event> events;
  constexpr int kDocs = 40;
  std::vector<Seq> seq(kDocs, 1);
  std::vector<std::string> folded(kDocs);
  for (int d = 0; d < kDocs; ++d) {
    events.push_back(
        Created("d" + std::to_string(d), d == 7 ? CrdtKind::kYjs : CrdtKind::kAutomerge));
  }
  for (int round = 0; round < 8; ++round) {
    for (int d = 0; d < kDocs; ++d) {
      const DocumentId id = "d" + std::to_string(d);
      for (int u = 0; u < 3; ++u) {
        const std::string bytes = std::to_string(round) + ":" + std::to_string(u) + ";";
        // d7 is Yjs with bytes that are no Yjs update: its folds fail.
        events.push_back(Update(id, ++seq[d], std::to_string(round * 3 + u), bytes));
        folded[d] += bytes;
      }
      if (round % 2 == 1 && d % 5 == 0) {
        events.push_back(Update(id, ++seq[d], "0", "dup"));  // duplicate op_id
        folded[d] += "dup";
      }
      const bool wrong = (round + d) % 11 == 0;
      events.push_back(Snap(id, seq[d] + 1, seq[d], wrong ? folded[d] + "!" : folded[d]));
      ++seq[d];
      // A wrong snapshot is still what the next fold starts from.
      if (wrong) folded[d] += "!";
      if (round == 5 && d == 3) events.push_back(Update(id, seq[d], "again", "z"));  // seq_order
    }
  }
  return events;
}

TEST_CASE("ReplayWithFoldThreadsReportsWhatAnInlineReplayReports", "[replay]") {
  const std::vector<Event> events = ManySnapshotsSomeWrong();
  auto run = [&](int threads, size_t max_violations) {
    ReplayOptions options;
    options.fold_threads = threads;
    options.max_violations = max_violations;
    ReplayChecker checker(options);
    for (const Event& e : events) checker.Observe(e);
    checker.CheckCatalog(checker.Catalog());
    return checker.Finish();
  };
  auto summary = [](const ReplayReport& r) {
    std::vector<std::string> out;
    for (const ReplayViolation& v : r.violations) {
      out.push_back(v.check + " " + v.document_id + " " + std::to_string(v.seq) + " " + v.message);
    }
    out.push_back("count " + std::to_string(r.violation_count) + " folds " +
                  std::to_string(r.folds_checked) + " unverifiable " +
                  std::to_string(r.folds_unverifiable) + " events " + std::to_string(r.events) +
                  " updates " + std::to_string(r.updates) + " snapshots " +
                  std::to_string(r.snapshots) + " bytes " + std::to_string(r.bytes));
    return out;
  };
  for (size_t max_violations : {size_t{0}, size_t{1}, size_t{7}, size_t{1000}}) {
    const std::vector<std::string> inline_report = summary(run(0, max_violations));
    for (int threads : {1, 2}) {
      INFO("max_violations " << max_violations << " threads " << threads);
      CHECK(summary(run(threads, max_violations)) == inline_report);
    }
  }
  ReplayReport all = run(0, 1000);
  CHECK(all.snapshots == 320);
  CHECK(all.folds_checked == 320);
  auto count = [&](const std::string& check) {
    return std::count_if(all.violations.begin(), all.violations.end(),
                         [&](const ReplayViolation& v) { return v.check == check; });
  };
  CHECK(count("snapshot_fold") > 8 + 20);  // every fold of d7 fails, plus the wrong ones
  CHECK(count("duplicate_op_id") > 0);
  CHECK(count("seq_order") == 1);
  // Sequential order: the violation a fold finds sits before later events' violations.
  CHECK(all.violations.front().check == "snapshot_fold");
  CHECK(all.violations.front().document_id == "d0");
}

TEST_CASE("ReplayCheckerDroppedBeforeFinishStopsItsFoldThreads", "[replay]") {
  const std::vector<Event> events = ManySnapshotsSomeWrong();
  ReplayOptions options;
  options.fold_threads = 2;
  auto checker = std::make_unique<ReplayChecker>(options);
  for (const Event& e : events) checker->Observe(e);
  checker.reset();  // folds still queued or running: they are dropped or joined, not leaked
  SUCCEED();
}

// Serves the stored events but loses one update on the per-document read path, or the
// latest snapshot: what a broken index or query would do.
class LossyBackend final : public eventlog::Backend {
 public:
  explicit LossyBackend(std::unique_ptr<eventlog::Backend> inner) : inner_(std::move(inner)) {}
  Seq lose_update_seq = 0;
  bool lose_snapshot = false;

  Status CommitBatch(std::span<const eventlog::AppendRequest> batch,
                     std::span<eventlog::AppendResult> results,
                     std::span<Status> statuses) override {
    return inner_->CommitBatch(batch, results, statuses);
  }
  Result<std::vector<Event>> ReadEvents(const DocumentId& id, Seq after, size_t limit) override {
    auto events = inner_->ReadEvents(id, after, limit);
    if (events.ok()) {
      std::erase_if(*events, [&](const Event& e) { return e.seq == lose_update_seq; });
    }
    return events;
  }
  Result<std::optional<Event>> ReadLatestSnapshot(const DocumentId& id) override {
    if (lose_snapshot) return std::optional<Event>();
    return inner_->ReadLatestSnapshot(id);
  }
  Result<std::vector<DocumentRecord>> ReadCatalog() override { return inner_->ReadCatalog(); }
  Status ForEachEvent(const std::function<Status(const Event&)>& visit) override {
    return inner_->ForEachEvent(visit);
  }
  Status PruneUpdates(const DocumentId& id, Seq up_to) override {
    return inner_->PruneUpdates(id, up_to);
  }
  Status Recover() override { return inner_->Recover(); }
  std::string Describe() const override { return "lossy " + inner_->Describe(); }

 private:
  std::unique_ptr<eventlog::Backend> inner_;
};

TEST_CASE("ReplayReportsHeadStateTheBackendLoadsDifferently", "[replay]") {
  auto memory = eventlog::OpenBackend("memory://", {});
  REQUIRE(memory.ok());
  LossyBackend backend(std::move(memory).value());
  std::vector<eventlog::AppendRequest> batch;
  for (int d = 0; d < 3; ++d) {
    std::string id = "doc-" + std::to_string(d);
    batch.push_back(Created(id));
    for (int u = 0; u < 100; ++u) batch.push_back(Update(id, 0, "op-" + std::to_string(u), "x"));
    batch.push_back(Snap(id, 0, 51, std::string(50, 'x')));
  }
  std::vector<eventlog::AppendResult> results(batch.size());
  std::vector<Status> statuses(batch.size());
  REQUIRE(backend.CommitBatch(batch, results, statuses).ok());
  for (const Status& st : statuses) REQUIRE(st.ok());

  auto clean = Replay(backend);
  REQUIRE(clean.ok());
  CHECK(clean->clean());
  CHECK(clean->folds_checked == 3);

  backend.lose_update_seq = 90;  // in every document's tail (after version 51)
  auto lossy = Replay(backend);
  REQUIRE(lossy.ok());
  CHECK(Checks(*lossy) == std::vector<std::string>{"head_state", "head_state", "head_state"});

  backend.lose_update_seq = 0;
  backend.lose_snapshot = true;
  auto no_snapshot = Replay(backend);
  REQUIRE(no_snapshot.ok());
  CHECK(no_snapshot->violation_count == 3);
  CHECK(Checks(*no_snapshot)[0] == "head_state");
}

}  // namespace
}  // namespace quire::projection
