#include "eventlog/async_log.h"

#include <uv.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "eventlog/fault_injection.h"
#include "tests/eventlog/eventlog_test_util.h"

namespace quire::eventlog {
namespace {

using testing::Created;
using testing::TempDir;
using testing::Update;

struct Loop {
  uv_loop_t loop;
  Loop() { uv_loop_init(&loop); }
  ~Loop() {
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(uv_loop_close(&loop) == 0);  // not REQUIRE: this runs during unwinding too
  }
};

std::unique_ptr<Backend> Open(const std::string& url) {
  auto backend = OpenBackend(url, BackendOptions{});
  REQUIRE(backend.ok());
  return std::move(backend).value();
}

void CloseAndRun(uv_loop_t* loop, AsyncLog& log) {
  bool closed = false;
  log.Close([&] { closed = true; });
  uv_run(loop, UV_RUN_DEFAULT);
  REQUIRE(closed);
}

struct Ack {
  std::thread::id thread;
  StatusCode code;
  Seq seq;
  bool duplicate;
  std::string op_id;
};

AsyncLog::AppendCallback Record(std::vector<Ack>& acks) {
  return [&acks](Result<AppendResult> r, const Event& e) {
    acks.push_back(Ack{std::this_thread::get_id(), r.status().code(), r.ok() ? r->seq : 0,
                       r.ok() && r->duplicate, e.op_id});
  };
}

std::string BackendUrl(const TempDir& dir, const std::string& kind) {
  return kind == "memory" ? "memory://" : dir.SqliteUrl();
}

// Submits a task that holds the storage thread until `release` is ready; `started` is set
// when it begins (the task reaches the thread at the end of the loop iteration).
void HoldStorage(AsyncLog& log, std::promise<void>& started, std::shared_future<void> release) {
  log.Run<int>(
      [&started, release](Backend&) {
        started.set_value();
        release.wait();
        return 0;
      },
      [](int) {});
}

TEST_CASE("AppendsCompleteOnLoopThreadInSeqOrderInOneGroupCommit", "[asynclog]") {
  auto kind = GENERATE(as<std::string>{}, "memory", "sqlite");
  TempDir dir;
  Loop loop;
  AsyncLog log(&loop.loop, Open(BackendUrl(dir, kind)));
  std::vector<Ack> acks;
  log.Append(Created("doc"), Record(acks));
  for (int i = 0; i < 50; ++i) log.Append(Update("doc", "op" + std::to_string(i)), Record(acks));
  std::vector<int64_t> batch_sizes;
  log.set_batch_observer([&](int64_t size, int64_t, int64_t) { batch_sizes.push_back(size); });
  REQUIRE(acks.empty());  // never synchronous
  uv_run(&loop.loop, UV_RUN_DEFAULT);
  REQUIRE(acks.size() == 51);
  for (size_t i = 0; i < acks.size(); ++i) {
    CHECK(acks[i].thread == std::this_thread::get_id());
    CHECK(acks[i].code == StatusCode::kOk);
    CHECK(acks[i].seq == static_cast<Seq>(i + 1));
  }
  // Everything was submitted before the loop ran: one wake, one transaction.
  CHECK(batch_sizes == std::vector<int64_t>{51});
  CHECK(log.stats().batches == 1);
  CHECK(log.stats().appends == 51);
  CloseAndRun(&loop.loop, log);
}

TEST_CASE("DuplicateOpIdIsAckedWithOriginalSeq", "[asynclog]") {
  auto kind = GENERATE(as<std::string>{}, "memory", "sqlite");
  TempDir dir;
  Loop loop;
  AsyncLog log(&loop.loop, Open(BackendUrl(dir, kind)));
  std::vector<Ack> acks;
  log.Append(Created("doc"), Record(acks));
  log.Append(Update("doc", "a"), Record(acks));
  log.Append(Update("doc", "a"), Record(acks));  // same batch
  uv_run(&loop.loop, UV_RUN_DEFAULT);
  log.Append(Update("doc", "a"), Record(acks));  // later batch
  log.Append(Update("doc", "b"), Record(acks));
  uv_run(&loop.loop, UV_RUN_DEFAULT);
  REQUIRE(acks.size() == 5);
  CHECK(acks[1].seq == 2);
  CHECK_FALSE(acks[1].duplicate);
  CHECK(acks[2].seq == 2);
  CHECK(acks[2].duplicate);
  CHECK(acks[3].seq == 2);
  CHECK(acks[3].duplicate);
  CHECK(acks[4].seq == 3);
  CHECK_FALSE(acks[4].duplicate);
  CloseAndRun(&loop.loop, log);
}

TEST_CASE("RunTaskSeesCommittedAppendsAndCompletesInOrder", "[asynclog]") {
  auto kind = GENERATE(as<std::string>{}, "memory", "sqlite");
  TempDir dir;
  Loop loop;
  AsyncLog log(&loop.loop, Open(BackendUrl(dir, kind)));
  std::vector<std::string> order;
  log.Append(Created("doc"), [&](Result<AppendResult>, const Event&) { order.push_back("c"); });
  log.Append(Update("doc", "x"), [&](Result<AppendResult>, const Event&) { order.push_back("u"); });
  std::thread::id work_thread;
  log.Run<size_t>(
      [&](Backend& b) {
        work_thread = std::this_thread::get_id();
        auto events = b.ReadEvents("doc", 0, 100);
        return events.ok() ? events->size() : size_t{999};
      },
      [&](size_t n) {
        order.push_back("task:" + std::to_string(n));
        CHECK(work_thread != std::this_thread::get_id());
      });
  log.Append(Update("doc", "y"), [&](Result<AppendResult>, const Event&) { order.push_back("u"); });
  uv_run(&loop.loop, UV_RUN_DEFAULT);
  CHECK(order == std::vector<std::string>{"c", "u", "task:2", "u"});
  CloseAndRun(&loop.loop, log);
}

TEST_CASE("CloseFlushesPendingAppends", "[asynclog]") {
  auto kind = GENERATE(as<std::string>{}, "memory", "sqlite");
  TempDir dir;
  std::string url = BackendUrl(dir, kind);
  Loop loop;
  auto backend = Open(url);
  Backend* raw = backend.get();
  AsyncLog log(&loop.loop, std::move(backend));
  std::vector<Ack> acks;
  log.Append(Created("doc"), Record(acks));
  for (int i = 0; i < 10; ++i) log.Append(Update("doc", "op" + std::to_string(i)), Record(acks));
  bool closed = false;
  log.Close([&] { closed = true; });
  log.Append(Update("doc", "late"), Record(acks));  // after Close: refused, still async
  CHECK(acks.empty());
  uv_run(&loop.loop, UV_RUN_DEFAULT);
  REQUIRE(closed);
  REQUIRE(acks.size() == 12);
  for (int i = 0; i < 11; ++i) CHECK(acks[i].code == StatusCode::kOk);
  CHECK(acks[11].code == StatusCode::kUnavailable);
  // The storage thread is joined: the backend may be used from here.
  auto events = raw->ReadEvents("doc", 0, 100);
  REQUIRE(events.ok());
  CHECK(events->size() == 11);
}

// The names of this process's threads (/proc/self/task/*/comm).
std::multiset<std::string> ThreadNames() {
  std::multiset<std::string> names;
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
    std::ifstream comm(task.path() / "comm");
    std::string name;
    if (std::getline(comm, name)) names.insert(name);
  }
  return names;
}

TEST_CASE("TheLogsThreadsCarryTheirNamesWhileTheyRun", "[asynclog]") {
  // What top -H, perf and gdb show: the storage thread, the compute thread and SQLite's
  // checkpointer apart from the loop.
  TempDir dir;
  Loop loop;
  const std::vector<std::string> wanted = {"quire-storage", "quire-compute", "quire-checkpt"};
  auto all_named = [&] {
    auto names = ThreadNames();
    for (const auto& w : wanted) {
      if (names.count(w) != 1) return false;
    }
    return true;
  };
  {
    AsyncLog log(&loop.loop, Open(dir.SqliteUrl()));
    // Each thread names itself as it starts.
    for (int i = 0; i < 500 && !all_named(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    INFO("threads: " << [] {
      std::string out;
      for (const auto& n : ThreadNames()) out += n + " ";
      return out;
    }());
    CHECK(all_named());
    CloseAndRun(&loop.loop, log);
  }
  // Joined with the log and its backend: none of them is left.
  auto names = ThreadNames();
  for (const auto& w : wanted) CHECK(names.count(w) == 0);
}

TEST_CASE("FailedCommitFailsWholeBatchAndStaysStickyUntilRecover", "[asynclog][fault]") {
  auto kind = GENERATE(as<std::string>{}, "memory", "sqlite");
  TempDir dir;
  Loop loop;
  auto faulty = std::make_unique<FaultInjectingBackend>(Open(BackendUrl(dir, kind)));
  FaultInjectingBackend* faults = faulty.get();
  AsyncLog log(&loop.loop, std::move(faulty));
  std::vector<Ack> acks;
  log.Append(Created("doc"), Record(acks));
  log.Append(Update("doc", "ok1"), Record(acks));
  uv_run(&loop.loop, UV_RUN_DEFAULT);
  REQUIRE(acks.size() == 2);
  REQUIRE(log.sticky_error().ok());

  faults->FailNextCommits(1);
  for (int i = 0; i < 5; ++i) log.Append(Update("doc", "lost" + std::to_string(i)), Record(acks));
  uv_run(&loop.loop, UV_RUN_DEFAULT);
  REQUIRE(acks.size() == 7);
  for (int i = 2; i < 7; ++i) CHECK(acks[i].code == StatusCode::kUnavailable);
  CHECK(log.sticky_error().code() == StatusCode::kUnavailable);
  CHECK(log.stats().failed_batches == 1);

  // The injected fault is spent, but the log stays failed until Recover().
  log.Append(Update("doc", "refused"), Record(acks));
  uv_run(&loop.loop, UV_RUN_DEFAULT);
  REQUIRE(acks.size() == 8);
  CHECK(acks[7].code == StatusCode::kUnavailable);
  CHECK(faults->commits_attempted() == 2);  // the refused append never reached storage

  Status recovered = Status::Internal("not called");
  log.Recover([&](Status s) { recovered = s; });
  log.Append(Update("doc", "after"), Record(acks));
  uv_run(&loop.loop, UV_RUN_DEFAULT);
  REQUIRE(recovered.ok());
  CHECK(log.sticky_error().ok());
  REQUIRE(acks.size() == 9);
  CHECK(acks[8].code == StatusCode::kOk);
  CHECK(acks[8].seq == 3);  // nothing that failed took a seq

  std::vector<std::string> stored;
  log.Run<std::vector<std::string>>(
      [](Backend& b) {
        std::vector<std::string> ops;
        auto events = b.ReadEvents("doc", 0, 100);
        if (events.ok()) {
          for (const Event& e : *events) ops.push_back(e.op_id);
        }
        return ops;
      },
      [&](std::vector<std::string> ops) { stored = std::move(ops); });
  uv_run(&loop.loop, UV_RUN_DEFAULT);
  CHECK(stored == std::vector<std::string>{"", "ok1", "after"});
  CloseAndRun(&loop.loop, log);
}

TEST_CASE("ComputeRunsOnItsOwnThreadAndAppendsDoNotWaitForIt", "[asynclog]") {
  auto kind = GENERATE(as<std::string>{}, "memory", "sqlite");
  TempDir dir;
  Loop loop;
  AsyncLog log(&loop.loop, Open(BackendUrl(dir, kind)));
  std::thread::id storage_thread;
  log.Run<int>(
      [&](Backend&) {
        storage_thread = std::this_thread::get_id();
        return 0;
      },
      [](int) {});
  uv_run(&loop.loop, UV_RUN_DEFAULT);

  // A compute job holds the compute thread (10 s at most, so that a regression fails instead
  // of hanging); an append submitted after it is acknowledged meanwhile.
  std::promise<void> started, release;
  std::shared_future<void> released = release.get_future().share();
  std::thread::id compute_thread, done_thread;
  std::optional<int> computed;
  log.Compute<int>(
      [&started, &compute_thread, released] {
        compute_thread = std::this_thread::get_id();
        started.set_value();
        released.wait_for(std::chrono::seconds(10));
        return 42;
      },
      [&](int v) {
        computed = v;
        done_thread = std::this_thread::get_id();
      });
  started.get_future().wait();
  std::vector<Ack> acks;
  log.Append(Created("doc"), Record(acks));
  while (acks.empty()) uv_run(&loop.loop, UV_RUN_ONCE);  // the held job keeps the loop alive
  CHECK(acks[0].code == StatusCode::kOk);
  CHECK_FALSE(computed.has_value());
  release.set_value();
  uv_run(&loop.loop, UV_RUN_DEFAULT);
  CHECK(computed == 42);
  CHECK(compute_thread != std::this_thread::get_id());
  CHECK(compute_thread != storage_thread);
  CHECK(done_thread == std::this_thread::get_id());
  CloseAndRun(&loop.loop, log);
}

TEST_CASE("CloseRunsTheComputeJobsSubmittedBeforeItAndDropsLaterOnes", "[asynclog]") {
  Loop loop;
  AsyncLog log(&loop.loop, Open("memory://"));
  std::vector<std::string> order;
  for (int i = 0; i < 3; ++i) {
    log.Compute<int>(
        [i] {
          std::this_thread::sleep_for(std::chrono::milliseconds(20));
          return i;
        },
        [&order](int v) { order.push_back("job " + std::to_string(v)); });
  }
  log.Close([&] { order.push_back("closed"); });
  bool ran_after_close = false;
  log.Compute<int>(
      [&ran_after_close] {
        ran_after_close = true;
        return 0;
      },
      [&ran_after_close](int) { ran_after_close = true; });
  uv_run(&loop.loop, UV_RUN_DEFAULT);
  CHECK(order == std::vector<std::string>{"job 0", "job 1", "job 2", "closed"});
  CHECK_FALSE(ran_after_close);
}

}  // namespace
}  // namespace quire::eventlog

namespace quire::eventlog {
namespace {

TEST_CASE("FailedRecoverKeepsTheLogRefusingWrites", "[asynclog][fault]") {
  auto kind = GENERATE(as<std::string>{}, "memory", "sqlite");
  TempDir dir;
  Loop loop;
  auto faulty = std::make_unique<FaultInjectingBackend>(Open(BackendUrl(dir, kind)));
  FaultInjectingBackend* faults = faulty.get();
  AsyncLog log(&loop.loop, std::move(faulty));
  std::vector<Ack> acks;
  faults->FailAllCommits(true);
  log.Append(Created("doc"), Record(acks));
  uv_run(&loop.loop, UV_RUN_DEFAULT);
  REQUIRE(acks.size() == 1);
  CHECK(acks[0].code == StatusCode::kUnavailable);

  faults->FailAllCommits(false);
  faults->FailRecover(true);
  Status recovered;
  log.Recover([&](Status s) { recovered = s; });
  log.Append(Created("doc"), Record(acks));
  uv_run(&loop.loop, UV_RUN_DEFAULT);
  CHECK(recovered.code() == StatusCode::kIoError);
  CHECK_FALSE(log.sticky_error().ok());
  REQUIRE(acks.size() == 2);
  CHECK(acks[1].code == StatusCode::kUnavailable);

  faults->FailRecover(false);
  log.Recover([&](Status s) { recovered = s; });
  log.Append(Created("doc"), Record(acks));
  uv_run(&loop.loop, UV_RUN_DEFAULT);
  CHECK(recovered.ok());
  REQUIRE(acks.size() == 3);
  CHECK(acks[2].code == StatusCode::kOk);
  CHECK(acks[2].seq == 1);
  CloseAndRun(&loop.loop, log);
}

TEST_CASE("AppendsSubmittedWhileACommitRunsFormTheNextBatch", "[asynclog]") {
  auto kind = GENERATE(as<std::string>{}, "memory", "sqlite");
  TempDir dir;
  Loop loop;
  AsyncLog log(&loop.loop, Open(BackendUrl(dir, kind)));
  std::vector<int64_t> batch_sizes;
  log.set_batch_observer([&](int64_t size, int64_t, int64_t) { batch_sizes.push_back(size); });
  std::vector<Ack> acks;
  // Each acknowledgement of the first batch submits two appends: they are handed over
  // together at the end of that loop iteration and committed as one batch.
  log.Append(Created("doc"), Record(acks));
  int submitted_in_callbacks = 0;
  for (int i = 0; i < 3; ++i) {
    log.Append(Update("doc", "first" + std::to_string(i)), [&, i](Result<AppendResult> r, const Event&) {
      REQUIRE(r.ok());
      for (int j = 0; j < 2; ++j) {
        ++submitted_in_callbacks;
        log.Append(Update("doc", "second" + std::to_string(i) + std::to_string(j)), Record(acks));
      }
    });
  }
  uv_run(&loop.loop, UV_RUN_DEFAULT);
  CHECK(submitted_in_callbacks == 6);
  CHECK(batch_sizes == std::vector<int64_t>{4, 6});
  REQUIRE(acks.size() == 7);
  for (size_t i = 1; i < acks.size(); ++i) CHECK(acks[i].seq == static_cast<Seq>(i + 4));
  CHECK(log.stats().last_batch_size == 6);
  CloseAndRun(&loop.loop, log);
}

TEST_CASE("AppendsQueuedOverManyIterationsWhileTheStorageThreadIsBusyFormOneBatch", "[asynclog]") {
  auto kind = GENERATE(as<std::string>{}, "memory", "sqlite");
  TempDir dir;
  Loop loop;
  AsyncLog log(&loop.loop, Open(BackendUrl(dir, kind)));
  std::vector<int64_t> batch_sizes;
  log.set_batch_observer([&](int64_t size, int64_t, int64_t) { batch_sizes.push_back(size); });
  std::vector<Ack> acks;
  log.Append(Created("doc"), Record(acks));
  uv_run(&loop.loop, UV_RUN_DEFAULT);
  REQUIRE(acks.size() == 1);

  // A task holds the storage thread; meanwhile five loop iterations submit one append each
  // (the fourth repeats the first's op id). All five must wait behind the task and then
  // commit as one transaction, in submission order.
  std::promise<void> started, release;
  HoldStorage(log, started, release.get_future().share());
  struct State {
    AsyncLog* log;
    std::vector<Ack>* acks;
    std::future<void> started;
    std::promise<void>* release;
    int iteration = 0;
  } state{&log, &acks, started.get_future(), &release};
  uv_idle_t idle;
  uv_idle_init(&loop.loop, &idle);
  idle.data = &state;
  uv_idle_start(&idle, [](uv_idle_t* h) noexcept {
    auto* st = static_cast<State*>(h->data);
    int i = st->iteration++;
    if (i == 0) return;  // the task is handed over at the end of this first iteration
    if (i == 1) st->started.wait();
    if (i <= 5) {
      std::string op = i == 4 ? "op1" : "op" + std::to_string(i);
      st->log->Append(Update("doc", op), Record(*st->acks));
      return;
    }
    st->release->set_value();
    uv_idle_stop(h);
    uv_close(reinterpret_cast<uv_handle_t*>(h), nullptr);
  });
  uv_run(&loop.loop, UV_RUN_DEFAULT);
  CHECK(batch_sizes == std::vector<int64_t>{1, 5});
  REQUIRE(acks.size() == 6);
  std::vector<Seq> seqs;
  for (size_t i = 1; i < acks.size(); ++i) seqs.push_back(acks[i].seq);
  CHECK(seqs == std::vector<Seq>{2, 3, 4, 2, 5});
  CHECK(acks[4].duplicate);
  CHECK(acks[4].op_id == "op1");
  CloseAndRun(&loop.loop, log);
}

TEST_CASE("PostRunsOnTheLoopWithoutWaitingForTheStorageThread", "[asynclog]") {
  TempDir dir;
  Loop loop;
  AsyncLog log(&loop.loop, Open(dir.SqliteUrl()));
  std::vector<Ack> acks;
  log.Append(Created("doc"), Record(acks));
  uv_run(&loop.loop, UV_RUN_DEFAULT);
  REQUIRE(acks.size() == 1);

  // A task holds the storage thread, and an append waits behind it. A posted function runs
  // on the loop thread meanwhile, never inside Post(); Run() would wait for the release.
  std::promise<void> started, release;
  HoldStorage(log, started, release.get_future().share());
  log.Append(Update("doc", "held"), Record(acks));
  std::vector<std::string> order;
  std::thread::id posted_on;
  log.Post([&] {
    order.push_back("first");
    posted_on = std::this_thread::get_id();
    log.Post([&] { order.push_back("posted by the first"); });
  });
  log.Post([&] { order.push_back("second"); });
  CHECK(order.empty());
  // The task reaches the storage thread at the end of the first iteration.
  for (int i = 0; i < 10'000 && order.size() < 3; ++i) uv_run(&loop.loop, UV_RUN_NOWAIT);
  CHECK(order == std::vector<std::string>{"first", "second", "posted by the first"});
  CHECK(posted_on == std::this_thread::get_id());
  started.get_future().wait();
  CHECK(acks.size() == 1);  // the append is still behind the held task
  release.set_value();
  uv_run(&loop.loop, UV_RUN_DEFAULT);
  CHECK(acks.size() == 2);
  CloseAndRun(&loop.loop, log);
}

TEST_CASE("AnAppendIsAcknowledgedWithoutWaitingForATaskTakenWithIt", "[asynclog]") {
  TempDir dir;
  Loop loop;
  AsyncLog log(&loop.loop, Open(dir.SqliteUrl()));
  std::vector<Ack> acks;
  log.Append(Created("doc"), Record(acks));
  uv_run(&loop.loop, UV_RUN_DEFAULT);
  REQUIRE(acks.size() == 1);

  // Submitted in one iteration, so the storage thread takes both at once: the append, then a
  // task that holds the thread. The append is acknowledged while the task still holds it.
  log.Append(Update("doc", "u1"), Record(acks));
  std::promise<void> started, release;
  HoldStorage(log, started, release.get_future().share());
  for (int i = 0; i < 10'000 && acks.size() < 2; ++i) {
    uv_run(&loop.loop, UV_RUN_NOWAIT);
    std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
  CHECK(acks.size() == 2);
  started.get_future().wait();  // the task did run, and is holding the thread
  release.set_value();
  uv_run(&loop.loop, UV_RUN_DEFAULT);
  CHECK(acks.size() == 2);
  CloseAndRun(&loop.loop, log);
}

TEST_CASE("PostKeepsTheLoopAliveAndStillRunsAroundClose", "[asynclog]") {
  Loop loop;
  AsyncLog log(&loop.loop, Open("memory://"));
  int ran = 0;
  log.Post([&] { ++ran; });
  uv_run(&loop.loop, UV_RUN_DEFAULT);  // returns only once the posted function ran
  CHECK(ran == 1);

  bool closed = false;
  log.Post([&] { ++ran; });
  log.Close([&] {
    closed = true;
    CHECK(ran == 3);  // posted during Close(), before the handles went away
  });
  log.Post([&] { ++ran; });
  uv_run(&loop.loop, UV_RUN_DEFAULT);
  CHECK(closed);
  CHECK(ran == 3);
}

}  // namespace
}  // namespace quire::eventlog
