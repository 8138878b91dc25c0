// Backend: the storage of the event log, one interface with two implementations selected by
// DATABASE_URL (`sqlite:///path/to/file.db`, `memory://`).
//
// Threading: a Backend is used by one thread at a time (the storage thread of an AsyncLog, or
// a tool such as `quire replay`). It is not thread-safe.
#pragma once

#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/config.h"
#include "core/status.h"
#include "eventlog/document_record.h"
#include "eventlog/event.h"

namespace quire::eventlog {

struct BackendOptions {
  SyncMode sync_mode = SyncMode::kFull;
  bool read_only = false;  // `quire replay` opens the log read-only
  // SQLite with kFull: the redo journal starts a new generation once its records exceed this
  // many bytes (after making SQLite's own files durable; SCHEMA.md, "Redo journal").
  int64_t journal_bytes = int64_t{16} << 20;
};

class Backend {
 public:
  virtual ~Backend() = default;

  // Appends every request of `batch` in one transaction (group commit) and fills `results`
  // (same size as `batch`). For each request, in order:
  //  - kCreated for an existing document id            -> whole batch still commits; that
  //    request's result is reported through `statuses[i]` = AlreadyExists
  //  - any other kind for an unknown document          -> statuses[i] = NotFound
  //  - kUpdate/kSnapshot with an op_id already stored (or earlier in this batch) for the
  //    document -> results[i] = {original seq, duplicate = true}, nothing stored
  //  - otherwise the event gets the next seq of its document and is stored, and the catalog
  //    row (`documents`) is updated in the same transaction.
  // Returns non-OK when the transaction itself failed: then nothing of the batch is stored,
  // `results` and `statuses` are meaningless, and the caller must treat the log as failed
  // (sticky) until Recover() succeeds.
  virtual Status CommitBatch(std::span<const AppendRequest> batch, std::span<AppendResult> results,
                             std::span<Status> statuses) = 0;

  // CommitBatch's contract, except that on success the batch may be durable without the
  // backend's own transaction being finished: SQLite writes the stored events to its redo
  // journal and fsyncs it, and leaves them in an open transaction, visible to this backend's
  // reads (not yet to other connections) until CommitStaged(). Batches staged one after
  // another share that transaction. On failure everything staged is rolled back, including
  // earlier successful batches; they are durable in the journal and Recover() stores them
  // again. The default commits right away.
  virtual Status StageBatch(std::span<const AppendRequest> batch, std::span<AppendResult> results,
                            std::span<Status> statuses) {
    return CommitBatch(batch, results, statuses);
  }
  // Commits what StageBatch left open (nothing to do when has_staged() is false). A failure
  // rolls the staged batches back (they are in the journal; Recover() stores them again).
  virtual Status CommitStaged() { return Status::Ok(); }
  virtual bool has_staged() const { return false; }
  // How long the last StageBatch() waited for the disk in its own fsync (with the redo
  // journal: its fdatasync); 0 when that batch made nothing durable itself (memory://,
  // synchronous=NORMAL, a batch that stored nothing, a failed batch).
  virtual int64_t last_sync_ns() const { return 0; }

  // Events of one document with seq > after_seq, in seq order, at most `limit` of them.
  virtual Result<std::vector<Event>> ReadEvents(const DocumentId& id, Seq after_seq,
                                                size_t limit) = 0;

  // The latest kSnapshot event of a document, if any.
  virtual Result<std::optional<Event>> ReadLatestSnapshot(const DocumentId& id) = 0;

  // The stored catalog rows (the `documents` projection), every document.
  virtual Result<std::vector<DocumentRecord>> ReadCatalog() = 0;

  // Visits every event of every document; within a document in seq order. Stops at the first
  // non-OK status from `visit` and returns it.
  virtual Status ForEachEvent(const std::function<Status(const Event&)>& visit) = 0;

  // Deletes kUpdate events of `id` with seq <= up_to_seq (retention; a snapshot covers them).
  virtual Status PruneUpdates(const DocumentId& id, Seq up_to_seq) = 0;

  // Brings the backend back to a known state after a failed commit (rolls back, re-reads the
  // per-document heads from storage). OK when writes may resume.
  virtual Status Recover() = 0;

  // "sqlite:///abs/path.db (WAL, synchronous=FULL)" or "memory://", for logs.
  virtual std::string Describe() const = 0;
};

// Opens the backend named by `database_url`. Creates the SQLite file and schema when missing
// (unless read-only) and migrates older schema versions forward.
Result<std::unique_ptr<Backend>> OpenBackend(const std::string& database_url,
                                             const BackendOptions& options);

}  // namespace quire::eventlog
