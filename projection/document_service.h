// DocumentService: the documents as the server front sees them. It owns the projections
// derived from the event log — the catalog (every document's DocumentRecord), the head state
// of open documents (latest snapshot + the updates after it, cached under a byte bound) and the
// compactor — and turns commands into events appended through the AsyncLog.
//
// Threading: every method is called on the loop thread, and every callback runs on the loop
// thread, never synchronously from the call that takes it (libuv's rule).
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/config.h"
#include "core/log.h"
#include "core/status.h"
#include "eventlog/async_log.h"
#include "eventlog/document_record.h"

namespace quire::projection {

using eventlog::DocumentRecord;

struct ProjectionOptions {
  int64_t snapshot_every_updates = 200;   // fold after N updates since the last snapshot (<= 0: off)
  int64_t snapshot_interval_ms = 60'000;  // ...or T after the first unfolded update (<= 0: off)
  int64_t head_cache_bytes = 256ll << 20; // bound on cached head state
  int64_t retain_updates_ms = -1;         // prune covered updates older than this; <0 keeps all

  static ProjectionOptions FromConfig(const Config& config);
};

struct ListQuery {
  std::string query;             // case-insensitive title substring; empty matches all
  bool include_deleted = false;
  int64_t page = 1;              // from 1
  int64_t page_size = 20;        // 1..100
};

struct ListPage {
  std::vector<DocumentRecord> items;  // newest updated_at first (ties: id ascending)
  int64_t page = 1;
  int64_t page_size = 20;
  int64_t total = 0;                  // matching documents over all pages
};

// One update after the snapshot. The bytes are shared, immutable, and may outlive the cache.
struct TailUpdate {
  Seq seq = 0;
  OpId op_id;
  ActorId actor_id;
  std::shared_ptr<const Bytes> bytes;
};

// What a joining client needs: the snapshot and every update after it, up to head_seq.
struct HeadState {
  Seq snapshot_version = 0;                  // 0 when there is no snapshot
  std::shared_ptr<const Bytes> snapshot;     // never null; empty when there is no snapshot
  std::vector<TailUpdate> tail;              // seq order, all with seq > snapshot_version
  Seq head_seq = 0;                          // the document's last event seq
  Seq oldest_retained_seq = 0;               // smallest update seq still in the log (0 = none)
};

// The head state as one snapshot of `kind`: the snapshot itself when there is no tail,
// otherwise the codec's fold of snapshot and tail. FailedPrecondition for CRDTs the server
// cannot fold (opaque). Runs on the calling thread; folds are fast (a 200-update Yjs fold
// takes tens of microseconds) but scale with the snapshot size.
Result<Bytes> FoldHeadState(const HeadState& head, CrdtKind kind);

struct CreateCommand {
  std::optional<DocumentId> id;  // server-made UUID when absent
  std::string title;             // already validated: 1..256 chars after trimming
  CrdtKind crdt = CrdtKind::kYjs;
  ActorId owner;
};

class DocumentService {
 public:
  using RecordCallback = std::function<void(Result<DocumentRecord>)>;
  using AppendCallback = std::function<void(Result<eventlog::AppendResult>)>;

  DocumentService(eventlog::AsyncLog& log, const Clock& clock, ProjectionOptions options,
                  const Logger& logger);
  ~DocumentService();
  DocumentService(const DocumentService&) = delete;
  DocumentService& operator=(const DocumentService&) = delete;

  // Loads the catalog from the log's stored projection. Must complete before other calls.
  void Start(std::function<void(Status)> done);

  // --- Catalog reads (synchronous, from memory) ---
  // The record of `id`, deleted or not; nullptr when unknown. Valid until the next command
  // completes.
  const DocumentRecord* Find(const DocumentId& id) const;
  ListPage List(const ListQuery& query) const;
  // Only the documents `visible` accepts are listed and counted (access control).
  ListPage List(const ListQuery& query,
                const std::function<bool(const DocumentRecord&)>& visible) const;
  size_t document_count() const;

  // --- Commands: each becomes one event; the callback runs after it is committed ---
  // AlreadyExists when the id is taken.
  void Create(CreateCommand command, RecordCallback done);
  // NotFound for unknown ids. Renaming a deleted document is allowed.
  void Rename(const DocumentId& id, std::string title, ActorId actor, RecordCallback done);
  // Soft delete (deleted = true) or restore. Repeating the current state appends nothing and
  // returns the record as it is.
  void SetDeleted(const DocumentId& id, bool deleted, ActorId actor, RecordCallback done);

  // Appends a CRDT update. Validates `bytes` with the document's codec (InvalidArgument),
  // refuses deleted documents (FailedPrecondition) and unknown ones (NotFound). A repeated
  // op_id completes with the original seq and duplicate = true. On success the head state
  // absorbs the update before `done` runs, and the compactor counts it.
  void AppendUpdate(const DocumentId& id, OpId op_id, ActorId actor, Bytes bytes,
                    AppendCallback done);
  // A client-made snapshot covering `version` (<= head seq); used for opaque documents.
  // FailedPrecondition for documents whose codec folds (the server makes their snapshots);
  // InvalidArgument when `version` is below the current snapshot's or past the head.
  void AppendSnapshot(const DocumentId& id, Seq version, Bytes bytes, ActorId actor,
                      AppendCallback done);

  // Appends `event` as given (the clock sets created_at); the projections absorb it like any
  // command's event. For projection/history: named versions, fork markers and a fork's first
  // update and snapshot, which are built from committed state, so no codec check is made here.
  // NotFound for unknown documents (the log's answer).
  void AppendHistoryEvent(eventlog::Event event, AppendCallback done);

  // Runs `work` on the storage thread with the backend (reads that must not block the loop),
  // then `done` on the loop thread. Dropped after the log closed.
  template <typename T>
  void RunOnStorage(std::function<T(eventlog::Backend&)> work, std::function<void(T)> done) {
    log_.Run<T>(std::move(work), std::move(done));
  }
  // Runs `work` on the compute thread (CPU work that needs no backend, such as a fold), then
  // `done` on the loop thread. Dropped after the log closed.
  template <typename T>
  void RunCompute(std::function<T()> work, std::function<void(T)> done) {
    log_.Compute<T>(std::move(work), std::move(done));
  }

  // --- Head state ---
  // The head state of `id`, from the cache or loaded from the log (off the loop thread).
  // The state includes every event whose command callback ran before `done` runs.
  void LoadHead(const DocumentId& id, std::function<void(Result<HeadState>)> done);
  // Whether `id`'s head state is in the cache now (for tests and metrics).
  bool head_cached(const DocumentId& id) const;
  // Updates with seq > since_seq, in order. FailedPrecondition when some of them are no
  // longer retained (the client must take the full state instead).
  void ReadUpdatesSince(const DocumentId& id, Seq since_seq,
                        std::function<void(Result<std::vector<TailUpdate>>)> done);

  // --- Compaction ---
  // Folds every document whose cadence is due (count or time, by the injected clock).
  // Called from a timer by the server; tests call it directly.
  void RunCompactor();
  // Keeps `id`'s head state in the cache (documents with connected clients); counted pins.
  void Pin(const DocumentId& id);
  void Unpin(const DocumentId& id);

  // OK when writes are accepted (for /readyz); the log's sticky error otherwise.
  Status writable() const;

  struct Stats {
    int64_t snapshots_taken = 0;
    int64_t cached_documents = 0;
    int64_t cached_bytes = 0;
    int64_t evictions = 0;
    int64_t folds_running = 0;  // started, snapshot not appended yet
    int64_t folds_queued = 0;   // due, waiting for a running fold to end
  };
  Stats stats() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
  eventlog::AsyncLog& log_;
};

}  // namespace quire::projection
