// SQLite's staged batches (Backend::StageBatch): durable in the redo journal before SQLite
// commits them. A process that dies with batches staged loses nothing: the next open stores
// them from the journal (a read-only open shows them from an in-memory copy), and a failed
// transaction is made whole again by Recover().
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <functional>
#include <thread>
#include <vector>

#include "eventlog/async_log.h"
#include "eventlog/backend.h"
#include "eventlog/fault_injection.h"
#include "eventlog/internal/redo_journal.h"
#include "tests/eventlog/eventlog_test_util.h"

namespace quire::eventlog {
namespace {

using testing::Created;
using testing::TempDir;
using testing::Update;

constexpr int kBatches = 60;
constexpr int kPerBatch = 3;

struct Staged {
  std::vector<AppendResult> results;
  std::vector<Status> statuses;
  Status status;
};

Staged Stage(Backend& backend, const std::vector<Event>& batch) {
  Staged s;
  s.results.resize(batch.size());
  s.statuses.resize(batch.size());
  s.status = backend.StageBatch(batch, s.results, s.statuses);
  return s;
}

std::unique_ptr<Backend> MustOpen(const std::string& url, BackendOptions options = {}) {
  auto backend = OpenBackend(url, options);
  INFO(url << ": " << backend.status().ToString());
  REQUIRE(backend.ok());
  return std::move(backend).value();
}

// Rows of `events` as another connection sees them in the file.
int64_t RowsInFile(const std::string& path) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
  sqlite3_stmt* s = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, "SELECT count(*) FROM events", -1, &s, nullptr) == SQLITE_OK);
  REQUIRE(sqlite3_step(s) == SQLITE_ROW);
  int64_t n = sqlite3_column_int64(s, 0);
  sqlite3_finalize(s);
  sqlite3_close(db);
  return n;
}

// Closes the log, runs the loop until it is released, and closes the loop.
void CloseLog(uv_loop_t& loop, std::unique_ptr<AsyncLog>& log) {
  bool closed = false;
  log->Close([&] { closed = true; });
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK(closed);
  log.reset();
  CHECK(uv_loop_close(&loop) == 0);
}

// Runs the loop until `done` holds (checked every 10 ms) or 10 s have passed. A timer keeps the
// loop running meanwhile, as sockets do the server's: what the storage thread reports on its
// own arrives through the log's async handle, which alone does not keep a loop alive.
void RunLoopUntil(uv_loop_t& loop, std::function<bool()> done) {
  struct Watch {
    uv_timer_t timer;
    std::function<bool()> done;
    int ticks = 0;
  } watch;
  watch.done = std::move(done);
  watch.timer.data = &watch;
  uv_timer_init(&loop, &watch.timer);
  uv_timer_start(
      &watch.timer,
      [](uv_timer_t* t) {
        auto* w = static_cast<Watch*>(t->data);
        if (w->done() || ++w->ticks > 1000) uv_timer_stop(t);
      },
      10, 10);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_close(reinterpret_cast<uv_handle_t*>(&watch.timer), nullptr);
  uv_run(&loop, UV_RUN_DEFAULT);
}

std::string Doc(int batch) { return batch % 2 == 0 ? "even" : "odd"; }
OpId Op(int batch, int i) { return "op" + std::to_string(batch) + "-" + std::to_string(i); }

void CheckEverythingStaged(Backend& backend) {
  for (const char* doc : {"even", "odd"}) {
    INFO(doc);
    auto events = backend.ReadEvents(doc, 0, SIZE_MAX);
    REQUIRE(events.ok());
    REQUIRE(events->size() == 1 + kBatches / 2 * kPerBatch);
    for (size_t i = 0; i < events->size(); ++i) CHECK((*events)[i].seq == static_cast<Seq>(i + 1));
    // The last update of the document is the last one staged.
    const int last_batch = std::string(doc) == "even" ? kBatches - 2 : kBatches - 1;
    CHECK(events->back().op_id == Op(last_batch, kPerBatch - 1));
  }
  std::vector<std::string> problems;
  auto folded = testing::FoldCatalog(backend, problems);
  CHECK(problems.empty());
  CHECK(testing::CatalogById(backend) == folded);
}

TEST_CASE("BatchesStagedByAProcessThatDiesBeforeCommittingAreStoredOnTheNextOpen",
          "[sqlite][journal]") {
  TempDir dir;
  const std::string url = dir.SqliteUrl();
  const std::string file = dir.path() + "/log.db";
  int ready[2];
  REQUIRE(pipe(ready) == 0);
  pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    // A tiny journal starts over many times: the generations before the last one must have
    // been made durable in SQLite before they were retired.
    BackendOptions options;
    options.journal_bytes = 1024;
    auto backend = OpenBackend(url, options);
    if (!backend.ok()) _exit(3);
    for (int b = 0; b < kBatches; ++b) {
      std::vector<Event> batch;
      if (b == 0) batch = {Created("even"), Created("odd")};
      for (int i = 0; i < kPerBatch; ++i) batch.push_back(Update(Doc(b), Op(b, i)));
      if (!Stage(**backend, batch).status.ok()) _exit(4);
    }
    if (!(*backend)->has_staged()) _exit(5);
    char ok = 'k';
    if (write(ready[1], &ok, 1) != 1) _exit(6);
    _exit(0);  // no destructor: the open transaction dies with the process
  }
  close(ready[1]);
  int status = 0;
  REQUIRE(waitpid(child, &status, 0) == child);
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);
  char ok = 0;
  CHECK(read(ready[0], &ok, 1) == 1);
  close(ready[0]);

  const int64_t all = 2 + kBatches * kPerBatch;
  // The file lacks the batches of the last journal generation...
  CHECK(RowsInFile(file) < all);
  {
    // ... which a read-only open shows from an in-memory copy, leaving the file alone.
    BackendOptions ro;
    ro.read_only = true;
    auto backend = MustOpen(url, ro);
    CHECK(backend->Describe().find("redo journal applied in memory") != std::string::npos);
    CheckEverythingStaged(*backend);
  }
  CHECK(RowsInFile(file) < all);
  {
    auto backend = MustOpen(url);
    CheckEverythingStaged(*backend);
    // Idempotency holds for the stored-again events, and seqs continue after them.
    auto again = Stage(*backend, {Update("odd", Op(kBatches - 1, 0)), Update("odd", "new")});
    REQUIRE(again.status.ok());
    CHECK(again.results[0].duplicate);
    CHECK(again.results[0].seq == 1 + kBatches / 2 * kPerBatch - 2);
    CHECK_FALSE(again.results[1].duplicate);
    CHECK(again.results[1].seq == 2 + kBatches / 2 * kPerBatch);
  }
  CHECK(RowsInFile(file) == all + 1);
  BackendOptions ro;
  ro.read_only = true;
  CHECK(MustOpen(url, ro)->Describe().find("in memory") == std::string::npos);
}

TEST_CASE("AFailedStageRollsBackWhatWasStagedAndRecoverStoresItAgain", "[sqlite][journal]") {
  TempDir dir;
  auto backend = MustOpen(dir.SqliteUrl());
  auto created = Stage(*backend, {Created("doc")});
  REQUIRE(created.status.ok());
  REQUIRE(backend->CommitStaged().ok());
  CHECK_FALSE(backend->has_staged());
  REQUIRE(testing::PlantPoisonTrigger(dir.path() + "/log.db"));
  auto a = Stage(*backend, {Update("doc", "a")});
  REQUIRE(a.status.ok());
  CHECK(a.results[0].seq == 2);
  CHECK(backend->has_staged());
  // Staged events are visible to the backend's own reads before the commit.
  auto events = backend->ReadEvents("doc", 0, 10);
  REQUIRE(events.ok());
  CHECK(events->size() == 2);

  auto poisoned = Stage(*backend, {Update("doc", "p", "poison")});
  CHECK_FALSE(poisoned.status.ok());
  CHECK_FALSE(backend->has_staged());
  // The failed transaction took the acknowledged "a" with it...
  events = backend->ReadEvents("doc", 0, 10);
  REQUIRE(events.ok());
  CHECK(events->size() == 1);
  // ... and Recover() stores it again from the journal (the poisoned batch was never in it).
  REQUIRE(backend->Recover().ok());
  events = backend->ReadEvents("doc", 0, 10);
  REQUIRE(events.ok());
  REQUIRE(events->size() == 2);
  CHECK((*events)[1].op_id == "a");
  CHECK((*events)[1].seq == 2);
  auto b = Stage(*backend, {Update("doc", "b"), Update("doc", "a")});
  REQUIRE(b.status.ok());
  CHECK(b.results[0].seq == 3);
  CHECK(b.results[1].duplicate);
  CHECK(b.results[1].seq == 2);
  REQUIRE(backend->CommitStaged().ok());
  CHECK(RowsInFile(dir.path() + "/log.db") == 3);
  std::vector<std::string> problems;
  auto folded = testing::FoldCatalog(*backend, problems);
  CHECK(problems.empty());
  CHECK(testing::CatalogById(*backend) == folded);
}

TEST_CASE("ACleanCloseStartsTheJournalOverAndAFailedOneKeepsIt", "[sqlite][journal]") {
  TempDir dir;
  const std::string url = dir.SqliteUrl();
  const std::string file = dir.path() + "/log.db";
  auto records = [&] {
    int n = 0;
    Status read = internal::RedoJournal::ReadRecords(file + "-redo", [&](auto) {
      ++n;
      return Status::Ok();
    });
    REQUIRE(read.ok());
    return n;
  };
  {
    auto backend = MustOpen(url);
    REQUIRE(Stage(*backend, {Created("doc"), Update("doc", "a")}).status.ok());
    CHECK(records() == 1);
  }
  // Everything is in SQLite and durable: the next open has no journal to read.
  CHECK(records() == 0);
  CHECK(RowsInFile(file) == 2);
  {
    auto backend = MustOpen(url);
    REQUIRE(testing::PlantPoisonTrigger(file));
    REQUIRE(Stage(*backend, {Update("doc", "b")}).status.ok());
    CHECK_FALSE(Stage(*backend, {Update("doc", "p", "poison")}).status.ok());
    // "b" was rolled back with the failed transaction. Until Recover() stores it again, writes
    // are refused (they would take its seq)...
    CHECK(Stage(*backend, {Update("doc", "c")}).status.code() == StatusCode::kFailedPrecondition);
  }
  // ... and closing keeps the journal that holds it.
  CHECK(records() == 1);
  auto backend = MustOpen(url);
  auto events = backend->ReadEvents("doc", 0, 10);
  REQUIRE(events.ok());
  REQUIRE(events->size() == 3);
  CHECK((*events)[2].op_id == "b");
}

TEST_CASE("ASecondWriterOnTheSameFileIsRefused", "[sqlite][journal]") {
  TempDir dir;
  auto first = MustOpen(dir.SqliteUrl());
  auto second = OpenBackend(dir.SqliteUrl(), {});
  CHECK(second.status().code() == StatusCode::kFailedPrecondition);
  CHECK(second.status().message().find("in use") != std::string::npos);
  // Readers are welcome.
  BackendOptions ro;
  ro.read_only = true;
  CHECK(OpenBackend(dir.SqliteUrl(), ro).ok());
}

TEST_CASE("TheStorageThreadCommitsStagedBatchesSoonAfterAcknowledgingThem", "[sqlite][journal]") {
  TempDir dir;
  const std::string file = dir.path() + "/log.db";
  uv_loop_t loop;
  uv_loop_init(&loop);
  auto log = std::make_unique<AsyncLog>(&loop, MustOpen(dir.SqliteUrl()));
  std::vector<int64_t> commits;
  log->set_staged_commit_observer([&](int64_t ns) { commits.push_back(ns); });
  int acked = 0;
  auto count = [&](Result<AppendResult> r, const Event&) { acked += r.ok() ? 1 : 0; };
  log->Append(Created("doc"), count);
  for (int i = 0; i < 10; ++i) log->Append(Update("doc", "op" + std::to_string(i)), count);
  uv_run(&loop, UV_RUN_DEFAULT);  // returns once every append is acknowledged
  REQUIRE(acked == 11);
  CHECK(commits.empty());
  // Acknowledged (durable in the journal); another connection sees the rows once the storage
  // thread committed them, 2 s after staging, with the log still open and idle.
  int64_t rows = 0;
  for (int i = 0; i < 200 && rows < 11; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    rows = RowsInFile(file);
  }
  CHECK(rows == 11);
  // The loop learns of that commit and how long it held the storage thread (the metric
  // quire_storage_commit_seconds).
  RunLoopUntil(loop, [&] { return !commits.empty(); });
  REQUIRE(commits.size() == 1);
  CHECK(commits[0] > 0);
  CHECK(log->stats().staged_commits == 1);
  CloseLog(loop, log);  // nothing staged: no commit to report
  CHECK(commits.size() == 1);
}

TEST_CASE("EveryBatchTheJournalMadeDurableReportsItsFsyncAndNoOtherDoes", "[sqlite][journal]") {
  // The batch observer's third figure is the journal's fdatasync within the commit (the
  // metric quire_journal_fsync_seconds): there for a batch written to the journal, 0 for one
  // that stored nothing and for backends without a journal of their own.
  struct Batch {
    int64_t size, commit_ns, sync_ns;
  };
  auto run = [](const std::string& url, BackendOptions options) {
    uv_loop_t loop;
    uv_loop_init(&loop);
    auto log = std::make_unique<AsyncLog>(&loop, MustOpen(url, options));
    std::vector<Batch> batches;
    log->set_batch_observer([&](int64_t size, int64_t commit_ns, int64_t sync_ns) {
      batches.push_back({size, commit_ns, sync_ns});
    });
    auto ignore = [](Result<AppendResult>, const Event&) {};
    log->Append(Created("doc"), ignore);
    log->Append(Update("doc", "a"), ignore);
    uv_run(&loop, UV_RUN_DEFAULT);
    log->Append(Update("doc", "a"), ignore);  // a duplicate: the batch stores nothing
    uv_run(&loop, UV_RUN_DEFAULT);
    log->Append(Update("doc", "b"), ignore);
    uv_run(&loop, UV_RUN_DEFAULT);
    CloseLog(loop, log);
    return batches;
  };
  TempDir dir;
  std::vector<Batch> full = run(dir.SqliteUrl("full.db"), {});
  REQUIRE(full.size() == 3);
  CHECK(full[0].size == 2);
  CHECK(full[0].sync_ns > 0);
  CHECK(full[0].sync_ns <= full[0].commit_ns);
  CHECK(full[1].sync_ns == 0);
  CHECK(full[2].sync_ns > 0);
  CHECK(full[2].sync_ns <= full[2].commit_ns);

  BackendOptions normal;
  normal.sync_mode = SyncMode::kNormal;
  for (const auto& [url, options] : {std::pair{dir.SqliteUrl("normal.db"), normal},
                                     std::pair{std::string("memory://"), BackendOptions{}}}) {
    INFO(url);
    std::vector<Batch> batches = run(url, options);
    REQUIRE(batches.size() == 3);
    for (const Batch& b : batches) CHECK(b.sync_ns == 0);
  }
}

TEST_CASE("AFailedCommitOfStagedBatchesFailsTheLogUntilRecoverStoresThem", "[sqlite][journal]") {
  TempDir dir;
  const std::string file = dir.path() + "/log.db";
  uv_loop_t loop;
  uv_loop_init(&loop);
  auto faulty = std::make_unique<FaultInjectingBackend>(MustOpen(dir.SqliteUrl()));
  FaultInjectingBackend* fault = faulty.get();
  fault->FailStagedCommits(true);
  auto log = std::make_unique<AsyncLog>(&loop, std::move(faulty));
  int observed_commits = 0;
  log->set_staged_commit_observer([&](int64_t) { ++observed_commits; });
  int acked = 0;
  auto count = [&](Result<AppendResult> r, const Event&) { acked += r.ok() ? 1 : 0; };
  log->Append(Created("doc"), count);
  log->Append(Update("doc", "a"), count);
  uv_run(&loop, UV_RUN_DEFAULT);
  REQUIRE(acked == 2);
  CHECK(log->sticky_error().ok());
  // The storage thread's own commit fails about 2 s later: the loop learns it without any
  // append of its own.
  RunLoopUntil(loop, [&] { return !log->sticky_error().ok(); });
  CHECK(log->sticky_error().code() == StatusCode::kUnavailable);
  CHECK(observed_commits == 0);  // a failed commit is the sticky error, not a duration
  Status refused;
  log->Append(Update("doc", "b"),
              [&](Result<AppendResult> r, const Event&) { refused = r.status(); });
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK(refused.code() == StatusCode::kUnavailable);
  CHECK(RowsInFile(file) == 0);
  // Recover commits what was acknowledged; writes resume after it.
  fault->FailStagedCommits(false);
  Status recovered = Status::Internal("not run");
  log->Recover([&](Status s) { recovered = s; });
  uv_run(&loop, UV_RUN_DEFAULT);
  REQUIRE(recovered.ok());
  CHECK(log->sticky_error().ok());
  CHECK(RowsInFile(file) == 2);
  Seq b_seq = 0;
  log->Append(Update("doc", "b"), [&](Result<AppendResult> r, const Event&) {
    if (r.ok()) b_seq = r->seq;
  });
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK(b_seq == 3);
  CloseLog(loop, log);  // commits "b", staged since the recovery
  CHECK(RowsInFile(file) == 3);
  CHECK(observed_commits == 1);
}

}  // namespace
}  // namespace quire::eventlog
