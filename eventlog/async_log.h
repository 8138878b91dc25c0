// AsyncLog: the event log as the event loop sees it. One storage thread owns the Backend and
// makes everything pending durable at once (group commit: Backend::StageBatch, one journal
// fsync with SQLite), then wakes the loop through a uv_async_t; completions run on the loop
// thread, in submission order (hence in seq order per document). The backend's own
// transaction is committed 2 s after the first batch it holds, or at Close(), after those
// completions were handed over. The loop thread never waits on disk.
//
// Faults are sticky: after a failed commit every append in that batch completes with
// Unavailable, and so does every later append, until Recover() succeeds (leveldb's
// background error). A failed commit of staged batches (already acknowledged, durable in the
// journal) makes the log fail the same way; Recover() stores them again.
//
// Batching: work submitted during one loop iteration is handed to the storage thread together,
// just before the loop blocks for I/O (a uv_prepare_t, like redis's beforeSleep); the storage
// thread then commits everything pending in one CommitBatch. Appends submitted back to back
// before uv_run therefore land in one transaction, and so do appends of many loop iterations
// that queued up while the previous commit ran (unless a task or recovery sits between them).
//
// A second thread, the compute thread, runs CPU-heavy work that needs no backend (Compute()),
// so that appends never wait behind it on the storage thread.
//
// Loop liveness: the log's handles keep uv_run(UV_RUN_DEFAULT) alive only while some
// completion is outstanding (and until Close() is done), so a loop with nothing else to do
// returns once every callback has run.
#pragma once

#include <functional>
#include <memory>

#include "core/status.h"
#include "eventlog/backend.h"

struct uv_loop_s;

namespace quire::eventlog {

class AsyncLog {
 public:
  // Called on the loop thread. On success `event` is the stored event with its seq (for a
  // duplicate: the request, with seq set to the original seq).
  using AppendCallback = std::function<void(Result<AppendResult> result, const Event& event)>;

  // Starts the storage thread and the compute thread. `loop` must outlive this object; it is
  // only used from the loop thread. `backend` is used only on the storage thread from now on.
  AsyncLog(uv_loop_s* loop, std::unique_ptr<Backend> backend);
  // Requires Close() to have completed.
  ~AsyncLog();
  AsyncLog(const AsyncLog&) = delete;
  AsyncLog& operator=(const AsyncLog&) = delete;

  // Loop thread. Queues `request` for the next batch; `done` runs on the loop thread after
  // the batch committed (or failed). Never calls `done` synchronously.
  void Append(AppendRequest request, AppendCallback done);

  // Loop thread. Runs `work` on the storage thread (after any batch in progress) with the
  // backend, then `done` on the loop thread with its result. For reads that miss memory (work
  // that needs no backend belongs on Compute(): appends wait behind a task). After Close() the
  // task is dropped: neither `work` nor `done` runs.
  template <typename T>
  void Run(std::function<T(Backend&)> work, std::function<void(T)> done) {
    auto result = std::make_shared<std::optional<T>>();
    RunTask([work = std::move(work), result](Backend& b) { result->emplace(work(b)); },
            [done = std::move(done), result] { done(std::move(**result)); });
  }

  // Loop thread. Runs `work` on the log's compute thread and then `done` on the loop thread
  // with its result: for CPU-heavy work that needs no backend (a fold of a document's updates
  // into a snapshot), which would otherwise hold the storage thread while appends wait behind
  // it. Compute jobs run one at a time, in submission order; their completions are not ordered
  // with appends or Run() tasks. `work` must not touch the loop or the backend. Every job
  // submitted before Close() runs and its `done` runs before Close()'s; after Close() both
  // are dropped, as with Run(). Destroying the log without Close() drops the jobs not started.
  template <typename T>
  void Compute(std::function<T()> work, std::function<void(T)> done) {
    auto result = std::make_shared<std::optional<T>>();
    RunCompute([work = std::move(work), result] { result->emplace(work()); },
               [done = std::move(done), result] { done(std::move(**result)); });
  }

  // Loop thread. Runs `fn` on the loop thread in a later loop iteration, without a round trip
  // through the storage thread (Run() waits behind the commit in progress): for answers from
  // memory that must not be given synchronously. Posted functions run in the order posted;
  // they keep uv_run alive like any other completion and still run after Close().
  void Post(std::function<void()> fn);

  // Loop thread. The sticky error (OK when writes are accepted).
  Status sticky_error() const;
  // Loop thread. Clears the sticky error if the backend recovers; `done` gets the outcome.
  void Recover(std::function<void(Status)> done);

  // Loop thread. Stops accepting work, commits what is pending, runs the remaining
  // completions, joins both threads and closes the async handle; `done` runs on the loop
  // thread when everything is released. The loop must keep running until then. Appends and
  // Recover() calls made after Close() complete with Unavailable, after everything before.
  void Close(std::function<void()> done);

  // Counters for metrics (loop thread).
  struct Stats {
    int64_t batches = 0;
    int64_t appends = 0;
    int64_t failed_batches = 0;
    int64_t last_batch_size = 0;
    int64_t last_commit_ns = 0;
    int64_t staged_commits = 0;  // successful Backend::CommitStaged() calls with work to do
  };
  Stats stats() const;
  // Called on the loop thread after every batch: batch size, commit time and the part of it
  // spent in the backend's own fsync (Backend::last_sync_ns(); 0 when there was none), for
  // histograms.
  void set_batch_observer(
      std::function<void(int64_t size, int64_t commit_ns, int64_t sync_ns)> observer);
  // Called on the loop thread after each successful commit of staged batches, with the time
  // it held the storage thread (appends wait behind it). A failed one is the sticky error.
  void set_staged_commit_observer(std::function<void(int64_t commit_ns)> observer);

 private:
  void RunTask(std::function<void(Backend&)> work, std::function<void()> done);
  void RunCompute(std::function<void()> work, std::function<void()> done);
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace quire::eventlog
