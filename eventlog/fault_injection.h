// FaultInjectingBackend: a Backend decorator that makes commits fail on demand, so tests can
// watch the log refuse to acknowledge (leveldb's fault-injection Env, in spirit).
//
// An injected failure happens before the wrapped backend is called: the batch is not stored,
// exactly as if its transaction had rolled back. The controls are thread-safe (a test thread
// flips them while the AsyncLog storage thread commits); everything else follows Backend's
// one-thread-at-a-time rule.
#pragma once

#include <atomic>
#include <memory>

#include "eventlog/backend.h"

namespace quire::eventlog {

class FaultInjectingBackend final : public Backend {
 public:
  explicit FaultInjectingBackend(std::unique_ptr<Backend> inner) : inner_(std::move(inner)) {}

  // The next `n` CommitBatch calls fail with IoError.
  void FailNextCommits(int n) { fail_next_.store(n); }
  // While set, every CommitBatch fails with IoError.
  void FailAllCommits(bool fail) { fail_all_.store(fail); }
  // While set, Recover() fails with IoError (the log stays failed).
  void FailRecover(bool fail) { fail_recover_.store(fail); }
  // While set, CommitStaged() fails with IoError; what is staged stays staged (Recover()
  // commits it).
  void FailStagedCommits(bool fail) { fail_staged_.store(fail); }
  // CommitBatch calls seen so far, failed or not.
  int64_t commits_attempted() const { return commits_attempted_.load(); }
  Backend& inner() { return *inner_; }

  Status CommitBatch(std::span<const AppendRequest> batch, std::span<AppendResult> results,
                     std::span<Status> statuses) override {
    QUIRE_RETURN_IF_ERROR(Inject());
    return inner_->CommitBatch(batch, results, statuses);
  }
  // Batches the wrapped backend staged before an injected failure stay staged (they were
  // acknowledged); a real failure would roll them back until Recover() stores them again.
  Status StageBatch(std::span<const AppendRequest> batch, std::span<AppendResult> results,
                    std::span<Status> statuses) override {
    QUIRE_RETURN_IF_ERROR(Inject());
    return inner_->StageBatch(batch, results, statuses);
  }
  Status CommitStaged() override {
    if (fail_staged_.load() && inner_->has_staged()) {
      return Status::IoError("injected failure of the staged commit");
    }
    return inner_->CommitStaged();
  }
  bool has_staged() const override { return inner_->has_staged(); }
  int64_t last_sync_ns() const override { return inner_->last_sync_ns(); }
  Result<std::vector<Event>> ReadEvents(const DocumentId& id, Seq after_seq,
                                        size_t limit) override {
    return inner_->ReadEvents(id, after_seq, limit);
  }
  Result<std::optional<Event>> ReadLatestSnapshot(const DocumentId& id) override {
    return inner_->ReadLatestSnapshot(id);
  }
  Result<std::vector<DocumentRecord>> ReadCatalog() override { return inner_->ReadCatalog(); }
  Status ForEachEvent(const std::function<Status(const Event&)>& visit) override {
    return inner_->ForEachEvent(visit);
  }
  Status PruneUpdates(const DocumentId& id, Seq up_to_seq) override {
    return inner_->PruneUpdates(id, up_to_seq);
  }
  Status Recover() override {
    if (fail_recover_.load()) return Status::IoError("injected recovery failure");
    return inner_->Recover();
  }
  std::string Describe() const override { return inner_->Describe() + " (fault injection)"; }

 private:
  Status Inject() {
    commits_attempted_.fetch_add(1);
    if (fail_all_.load()) return Status::IoError("injected commit failure (all commits)");
    int n = fail_next_.load();
    while (n > 0 && !fail_next_.compare_exchange_weak(n, n - 1)) {
    }
    if (n > 0) return Status::IoError("injected commit failure");
    return Status::Ok();
  }

  std::unique_ptr<Backend> inner_;
  std::atomic<int> fail_next_{0};
  std::atomic<bool> fail_all_{false};
  std::atomic<bool> fail_recover_{false};
  std::atomic<bool> fail_staged_{false};
  std::atomic<int64_t> commits_attempted_{0};
};

}  // namespace quire::eventlog
