#include "eventlog/async_log.h"

#include <uv.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "core/thread_name.h"

namespace quire::eventlog {

namespace {

// How long staged batches wait for the backend's own commit (see StorageMain). The commit
// holds the storage thread while it writes every page the staged batches dirtied, and with
// 1,000 documents that is nearly the same pages whether they were staged for 0.5 s or 2 s:
// committing every 2 s instead of every 500 ms writes a quarter as much to the WAL. S3 at
// 2,000 updates/s (1,000 documents, four runs each): p99 1.1–1.3 ms against 2.2–4.9 ms.
constexpr std::chrono::milliseconds kStagedCommitDelay{2000};

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// A run of appends submitted back to back: committed as one CommitBatch.
struct AppendGroup {
  std::vector<AppendRequest> requests;
  std::vector<AsyncLog::AppendCallback> callbacks;
  std::vector<AppendResult> results;
  std::vector<Status> statuses;
  Status batch_status;  // non-OK: the transaction failed (or the log was already failed)
  int64_t commit_ns = 0;
  int64_t sync_ns = 0;     // the backend's fsync within commit_ns
  bool committed = false;  // CommitBatch ran (false when refused because of a sticky error)
};

// One unit of work, in submission order. The storage thread turns each into a Completion.
struct Op {
  // kFailed: the storage thread's commit of staged batches failed (recover_status says how).
  enum class Type { kAppends, kTask, kRecover, kStop, kFailed } type;
  std::unique_ptr<AppendGroup> appends;              // kAppends
  std::function<void(Backend&)> work;                // kTask
  std::function<void()> task_done;                   // kTask
  std::function<void(Status)> recover_done;          // kRecover
  Status recover_status;                             // kRecover, filled by the storage thread
};

// Work for the compute thread (AsyncLog::Compute): `work` there, then `done` on the loop.
struct ComputeJob {
  std::function<void()> work;
  std::function<void()> done;
};

}  // namespace

class AsyncLog::Impl {
 public:
  Impl(uv_loop_t* loop, std::unique_ptr<Backend> backend)
      : loop_(loop), backend_(std::move(backend)) {
    uv_async_init(loop_, &async_, &Impl::OnAsync);
    async_.data = this;
    // The handle keeps the loop alive only while completions are outstanding (see Track).
    uv_unref(reinterpret_cast<uv_handle_t*>(&async_));
    uv_async_init(loop_, &post_async_, &Impl::OnPost);
    post_async_.data = this;
    uv_unref(reinterpret_cast<uv_handle_t*>(&post_async_));  // Track() keeps the loop alive
    uv_prepare_init(loop_, &prepare_);
    prepare_.data = this;
    uv_unref(reinterpret_cast<uv_handle_t*>(&prepare_));
    // The storage thread joins the compute thread at kStop: the compute thread starts first.
    compute_thread_ = std::thread([this] { ComputeMain(); });
    thread_ = std::thread([this] { StorageMain(); });
  }

  ~Impl() {
    if (thread_.joinable()) {  // Close() was not completed: stop without running callbacks.
      {
        std::lock_guard lock(mu_);
        compute_pending_.clear();  // nobody waits for their results
        pending_.push_back(Op{Op::Type::kStop, {}, {}, {}, {}, {}});
        cv_.notify_one();
      }
      thread_.join();
    }
  }

  void Append(AppendRequest request, AppendCallback done) {
    Track(1);
    if (closing_) {
      Refuse(Op{Op::Type::kAppends, OneAppend(std::move(request), std::move(done)), {}, {}, {},
                {}});
      return;
    }
    if (local_.empty() || local_.back().type != Op::Type::kAppends) {
      local_.push_back(Op{Op::Type::kAppends, std::make_unique<AppendGroup>(), {}, {}, {}, {}});
    }
    AppendGroup& group = *local_.back().appends;
    group.requests.push_back(std::move(request));
    group.callbacks.push_back(std::move(done));
    ArmFlush();
  }

  void RunTask(std::function<void(Backend&)> work, std::function<void()> done) {
    if (closing_) return;  // dropped: `done` needs the work's result (see async_log.h)
    Track(1);
    local_.push_back(Op{Op::Type::kTask, {}, std::move(work), std::move(done), {}, {}});
    ArmFlush();
  }

  void RunCompute(std::function<void()> work, std::function<void()> done) {
    if (closing_) return;  // dropped, as RunTask
    Track(1);
    {
      std::lock_guard lock(mu_);
      compute_pending_.push_back(ComputeJob{std::move(work), std::move(done)});
    }
    compute_cv_.notify_one();
  }

  void Post(std::function<void()> fn) {
    Track(1);
    if (handles_closing_) {
      // The handle is going away: deliver with the work refused after Close().
      Refuse(Op{Op::Type::kTask, {}, {}, std::move(fn), {}, {}});
      return;
    }
    posted_.push_back(std::move(fn));
    uv_async_send(&post_async_);
  }

  void Recover(std::function<void(Status)> done) {
    Track(1);
    Op op{Op::Type::kRecover, {}, {}, {}, std::move(done), {}};
    if (closing_) {
      op.recover_status = Status::Unavailable("event log is closing");
      Refuse(std::move(op));
      return;
    }
    local_.push_back(std::move(op));
    ArmFlush();
  }

  void Close(std::function<void()> done) {
    if (closing_) return;
    closing_ = true;
    close_done_ = std::move(done);
    Track(1);
    local_.push_back(Op{Op::Type::kStop, {}, {}, {}, {}, {}});
    Flush();
  }

  Status sticky_error() const { return loop_sticky_; }
  Stats stats() const { return stats_; }
  void set_batch_observer(std::function<void(int64_t, int64_t, int64_t)> observer) {
    observer_ = std::move(observer);
  }
  void set_staged_commit_observer(std::function<void(int64_t)> observer) {
    staged_commit_observer_ = std::move(observer);
  }

 private:
  static std::unique_ptr<AppendGroup> OneAppend(AppendRequest request, AppendCallback done) {
    auto group = std::make_unique<AppendGroup>();
    group->requests.push_back(std::move(request));
    group->callbacks.push_back(std::move(done));
    group->batch_status = Status::Unavailable("event log is closing");
    return group;
  }

  // Work submitted after Close(): completed after everything submitted before it, when the
  // storage thread's last completion (kStop) arrives.
  void Refuse(Op op) { refused_.push_back(std::move(op)); }

  // Loop thread. Work is handed to the storage thread once per loop iteration, just before
  // the loop blocks for I/O (redis's beforeSleep): everything submitted during one iteration
  // reaches the storage thread together and tends to land in one transaction.
  void ArmFlush() {
    if (flush_armed_) return;
    flush_armed_ = true;
    uv_prepare_start(&prepare_, &Impl::OnPrepare);
  }
  static void OnPrepare(uv_prepare_t* handle) noexcept {
    Impl* self = static_cast<Impl*>(handle->data);
    self->flush_armed_ = false;
    uv_prepare_stop(handle);
    self->Flush();
  }
  // Appends handed over while the storage thread is still committing an earlier batch join
  // the append group waiting at the back of the queue: whatever piles up during one commit
  // becomes the next single transaction (one fsync), however many loop iterations submitted
  // it. Only adjacent groups merge, so tasks and recoveries keep their place in the order.
  void Flush() {
    if (local_.empty()) return;
    std::lock_guard lock(mu_);
    for (Op& op : local_) {
      if (op.type == Op::Type::kAppends && !pending_.empty() &&
          pending_.back().type == Op::Type::kAppends) {
        AppendGroup& into = *pending_.back().appends;
        AppendGroup& from = *op.appends;
        into.requests.insert(into.requests.end(), std::make_move_iterator(from.requests.begin()),
                             std::make_move_iterator(from.requests.end()));
        into.callbacks.insert(into.callbacks.end(),
                              std::make_move_iterator(from.callbacks.begin()),
                              std::make_move_iterator(from.callbacks.end()));
        continue;
      }
      pending_.push_back(std::move(op));
    }
    local_.clear();
    cv_.notify_one();
  }

  // Loop thread: the async handle references the loop while work is outstanding, so that
  // uv_run(UV_RUN_DEFAULT) returns once every completion has run.
  void Track(int64_t n) {
    if (outstanding_ == 0) uv_ref(reinterpret_cast<uv_handle_t*>(&async_));
    outstanding_ += n;
  }
  void Untrack(int64_t n) {
    outstanding_ -= n;
    if (outstanding_ == 0 && !uv_is_closing(reinterpret_cast<uv_handle_t*>(&async_))) {
      uv_unref(reinterpret_cast<uv_handle_t*>(&async_));
    }
  }

  // ---- storage thread ----

  // Batches are acknowledged once staged (durable in the backend's journal); the backend's
  // own transaction is committed kStagedCommitDelay after the first of them, or when the log
  // closes. The commit runs after the acknowledgements went out, off their path.
  void StorageMain() {
    NameThisThread("quire-storage");
    std::vector<Op> ops;
    bool stop = false;
    while (!stop) {
      {
        std::unique_lock lock(mu_);
        while (pending_.empty()) {
          if (!staged_) {
            cv_.wait(lock);
          } else if (cv_.wait_until(lock, staged_deadline_) == std::cv_status::timeout &&
                     pending_.empty()) {
            lock.unlock();
            CommitStaged();
            lock.lock();
          }
        }
        ops.assign(std::make_move_iterator(pending_.begin()),
                   std::make_move_iterator(pending_.end()));
        pending_.clear();
      }
      // Each completion is handed to the loop as soon as its op is done: an append group's
      // acknowledgements do not wait for the tasks or groups taken with it.
      for (Op& op : ops) {
        switch (op.type) {
          case Op::Type::kAppends:
            CommitGroup(*op.appends);
            break;
          case Op::Type::kTask:
            op.work(*backend_);
            break;
          case Op::Type::kRecover:
            op.recover_status = backend_->Recover();
            if (op.recover_status.ok()) storage_sticky_ = Status::Ok();
            break;
          case Op::Type::kStop:
            CommitStaged();
            // Compute jobs submitted before Close() complete before kStop does.
            StopCompute();
            stop = true;  // ops after kStop cannot exist: Close() refuses new work
            break;
          case Op::Type::kFailed:
            break;  // made by the storage thread, never submitted
        }
        NoteStaged();
        {
          std::lock_guard lock(mu_);
          done_.push_back(std::move(op));
        }
        uv_async_send(&async_);
      }
      ops.clear();
      if (staged_ && std::chrono::steady_clock::now() >= staged_deadline_) CommitStaged();
    }
  }

  // Storage thread: starts the commit delay when the backend begins holding staged batches.
  void NoteStaged() {
    if (!backend_->has_staged()) {
      staged_ = false;
    } else if (!staged_) {
      staged_ = true;
      staged_deadline_ = std::chrono::steady_clock::now() + kStagedCommitDelay;
    }
  }

  // Storage thread. A failed commit makes the log fail (sticky) and tells the loop at once:
  // nothing acknowledged is lost (the journal has it; Recover() stores it again), but the log
  // must be recovered before it takes more.
  void CommitStaged() {
    const bool had_staged = backend_->has_staged();
    const int64_t start = NowNs();
    Status status = backend_->CommitStaged();
    NoteStaged();
    if (status.ok()) {
      if (!had_staged) return;
      {
        std::lock_guard lock(mu_);
        staged_commit_ns_.push_back(NowNs() - start);
      }
      uv_async_send(&async_);
      return;
    }
    staged_ = false;  // no retry: Recover() deals with what is left
    if (!storage_sticky_.ok()) return;
    storage_sticky_ = Status::Unavailable("event log failed: " + status.ToString());
    Op failed{Op::Type::kFailed, {}, {}, {}, {}, storage_sticky_};
    {
      std::lock_guard lock(mu_);
      done_.push_back(std::move(failed));
    }
    uv_async_send(&async_);
  }

  void CommitGroup(AppendGroup& group) {
    const size_t n = group.requests.size();
    if (!storage_sticky_.ok()) {
      group.batch_status = storage_sticky_;
      return;
    }
    group.results.assign(n, AppendResult{});
    group.statuses.assign(n, Status::Ok());
    int64_t start = NowNs();
    Status status = backend_->StageBatch(group.requests, group.results, group.statuses);
    group.commit_ns = NowNs() - start;
    group.committed = true;
    group.sync_ns = status.ok() ? backend_->last_sync_ns() : 0;
    if (!status.ok()) {
      storage_sticky_ = Status::Unavailable("event log failed: " + status.ToString());
      group.batch_status = storage_sticky_;
      return;
    }
    for (size_t i = 0; i < n; ++i) {
      if (group.statuses[i].ok()) group.requests[i].seq = group.results[i].seq;
    }
  }

  // Storage thread, at kStop: the compute thread runs what is queued, hands over its
  // completions and exits.
  void StopCompute() {
    {
      std::lock_guard lock(mu_);
      compute_stop_ = true;
    }
    compute_cv_.notify_one();
    compute_thread_.join();
  }

  // ---- compute thread ----

  void ComputeMain() {
    NameThisThread("quire-compute");
    for (;;) {
      ComputeJob job;
      {
        std::unique_lock lock(mu_);
        compute_cv_.wait(lock, [this] { return compute_stop_ || !compute_pending_.empty(); });
        if (compute_pending_.empty()) return;  // stopped, with nothing left to run
        job = std::move(compute_pending_.front());
        compute_pending_.pop_front();
      }
      job.work();
      {
        std::lock_guard lock(mu_);
        done_.push_back(Op{Op::Type::kTask, {}, {}, std::move(job.done), {}, {}});
      }
      uv_async_send(&async_);
    }
  }

  // ---- loop thread ----

  static void OnAsync(uv_async_t* handle) noexcept {
    static_cast<Impl*>(handle->data)->DeliverCompletions();
  }

  static void OnPost(uv_async_t* handle) noexcept { static_cast<Impl*>(handle->data)->RunPosted(); }

  // Runs what was posted before this call; what those functions post runs in a later iteration.
  void RunPosted() {
    std::vector<std::function<void()>> now;
    now.swap(posted_);
    for (auto& fn : now) {
      Untrack(1);
      fn();
    }
  }

  void DeliverCompletions() {
    std::deque<Op> done;
    std::vector<int64_t> staged_commits;
    {
      std::lock_guard lock(mu_);
      done.swap(done_);
      staged_commits.swap(staged_commit_ns_);
    }
    for (int64_t ns : staged_commits) {
      stats_.staged_commits += 1;
      if (staged_commit_observer_) staged_commit_observer_(ns);
    }
    bool stopped = false;
    while (!done.empty()) {
      Op op = std::move(done.front());
      done.pop_front();
      if (op.type == Op::Type::kStop) stopped = true;
      DeliverOne(op);
      if (done.empty() && stopped) {
        // Work refused after Close() (including by the callbacks just run) completes last.
        done.swap(refused_);
      }
    }
    if (stopped) {
      // The storage thread exits right after handing over kStop; nothing follows it.
      thread_.join();
      // Posted functions still run; posts from now on join the refused work.
      handles_closing_ = true;
      while (!posted_.empty()) RunPosted();
      uv_close(reinterpret_cast<uv_handle_t*>(&post_async_), &Impl::OnClosed);
      uv_close(reinterpret_cast<uv_handle_t*>(&prepare_), &Impl::OnClosed);
      uv_close(reinterpret_cast<uv_handle_t*>(&async_), &Impl::OnClosed);
    }
  }

  void DeliverOne(Op& op) {
    switch (op.type) {
      case Op::Type::kAppends:
        DeliverAppends(*op.appends);
        break;
      case Op::Type::kTask:
        Untrack(1);
        op.task_done();
        break;
      case Op::Type::kRecover:
        if (op.recover_status.ok()) loop_sticky_ = Status::Ok();
        Untrack(1);
        op.recover_done(op.recover_status);
        break;
      case Op::Type::kStop:
        Untrack(1);
        break;
      case Op::Type::kFailed:
        stats_.failed_batches += 1;
        loop_sticky_ = op.recover_status;
        break;
    }
  }

  void DeliverAppends(AppendGroup& group) {
    const size_t n = group.requests.size();
    if (group.committed) {
      stats_.batches += 1;
      stats_.appends += static_cast<int64_t>(n);
      stats_.last_batch_size = static_cast<int64_t>(n);
      stats_.last_commit_ns = group.commit_ns;
      if (!group.batch_status.ok()) {
        stats_.failed_batches += 1;
        loop_sticky_ = group.batch_status;
      }
      if (observer_) observer_(static_cast<int64_t>(n), group.commit_ns, group.sync_ns);
    }
    // A group refused without a commit (sticky error, closing) changes no state: the failure
    // that made the error sticky was delivered before it.
    Untrack(static_cast<int64_t>(n));
    for (size_t i = 0; i < n; ++i) {
      if (!group.batch_status.ok()) {
        group.callbacks[i](group.batch_status, group.requests[i]);
      } else if (!group.statuses[i].ok()) {
        group.callbacks[i](group.statuses[i], group.requests[i]);
      } else {
        group.callbacks[i](group.results[i], group.requests[i]);
      }
    }
  }

  static void OnClosed(uv_handle_t* handle) noexcept {
    Impl* self = static_cast<Impl*>(handle->data);
    if (++self->handles_closed_ < 3) return;
    // Refused work submitted between the last completion and now.
    while (!self->refused_.empty()) {
      Op op = std::move(self->refused_.front());
      self->refused_.pop_front();
      self->DeliverOne(op);
    }
    self->outstanding_ = 0;
    if (self->close_done_) {
      auto done = std::move(self->close_done_);
      done();  // may destroy the AsyncLog
    }
  }

  uv_loop_t* loop_;
  uv_async_t async_;
  std::unique_ptr<Backend> backend_;  // storage thread only, once the thread runs
  std::thread thread_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Op> pending_;  // guarded by mu_: submitted, not yet taken by the storage thread
  std::deque<Op> done_;     // guarded by mu_: processed, completions not yet delivered
  std::vector<int64_t> staged_commit_ns_;  // guarded by mu_: durations not yet observed

  std::thread compute_thread_;  // joined by the storage thread at kStop
  std::condition_variable compute_cv_;
  std::deque<ComputeJob> compute_pending_;  // guarded by mu_
  bool compute_stop_ = false;               // guarded by mu_

  uv_async_t post_async_;
  std::vector<std::function<void()>> posted_;  // loop thread: Post()ed, not yet run
  bool handles_closing_ = false;               // loop thread: Post() can no longer wake

  uv_prepare_t prepare_;
  bool flush_armed_ = false;
  std::deque<Op> local_;    // loop thread: submitted this iteration, not yet handed over
  std::deque<Op> refused_;  // loop thread: submitted after Close()

  // Storage thread only.
  Status storage_sticky_;
  bool staged_ = false;  // the backend holds staged batches not yet committed
  std::chrono::steady_clock::time_point staged_deadline_;

  // Loop thread only.
  Status loop_sticky_;
  bool closing_ = false;
  int64_t outstanding_ = 0;
  std::function<void()> close_done_;
  int handles_closed_ = 0;
  Stats stats_;
  std::function<void(int64_t, int64_t, int64_t)> observer_;
  std::function<void(int64_t)> staged_commit_observer_;
};

AsyncLog::AsyncLog(uv_loop_s* loop, std::unique_ptr<Backend> backend)
    : impl_(std::make_unique<Impl>(loop, std::move(backend))) {}
AsyncLog::~AsyncLog() = default;

void AsyncLog::Append(AppendRequest request, AppendCallback done) {
  impl_->Append(std::move(request), std::move(done));
}
void AsyncLog::RunTask(std::function<void(Backend&)> work, std::function<void()> done) {
  impl_->RunTask(std::move(work), std::move(done));
}
void AsyncLog::RunCompute(std::function<void()> work, std::function<void()> done) {
  impl_->RunCompute(std::move(work), std::move(done));
}
void AsyncLog::Post(std::function<void()> fn) { impl_->Post(std::move(fn)); }
Status AsyncLog::sticky_error() const { return impl_->sticky_error(); }
void AsyncLog::Recover(std::function<void(Status)> done) { impl_->Recover(std::move(done)); }
void AsyncLog::Close(std::function<void()> done) { impl_->Close(std::move(done)); }
AsyncLog::Stats AsyncLog::stats() const { return impl_->stats(); }
void AsyncLog::set_batch_observer(
    std::function<void(int64_t size, int64_t commit_ns, int64_t sync_ns)> observer) {
  impl_->set_batch_observer(std::move(observer));
}
void AsyncLog::set_staged_commit_observer(std::function<void(int64_t commit_ns)> observer) {
  impl_->set_staged_commit_observer(std::move(observer));
}

}  // namespace quire::eventlog
