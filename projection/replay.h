// Replay: rebuilds every projection from the events alone and checks the log's invariants.
// `quire replay` prints the report; tests and the crash test call it directly.
//
// Checks, per document:
//  - the first event is kCreated and there is no other kCreated;
//  - seq strictly increasing (gaps are allowed only where retention pruned updates: every
//    missing seq must be covered by a later snapshot's version);
//  - op_id unique (events with an empty op_id are not indexed);
//  - every snapshot's version < its own seq (<= the head when it was taken) and not below
//    the previous snapshot's version; where the document's codec folds, it equals
//    Fold(previous snapshot, updates in (previous version, version]) when that prefix is
//    still complete in the log;
//  - the stored catalog row (Backend::ReadCatalog) equals the rebuilt one (eventlog::Apply);
//    after pruning, update_count/update_bytes may only exceed the rebuilt values by what
//    is missing;
//  - the head state the server loads (Backend::ReadLatestSnapshot + ReadEvents) equals the
//    latest snapshot of the stream plus the updates after its version.
#pragma once

#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/status.h"
#include "eventlog/backend.h"

namespace quire::projection {

struct ReplayViolation {
  DocumentId document_id;  // empty for log-wide problems
  Seq seq = 0;             // the offending event, 0 when not about one event
  std::string check;       // "seq_order", "duplicate_op_id", "first_event", "snapshot_version",
                           // "snapshot_fold", "pruned_uncovered", "catalog_mismatch",
                           // "catalog_missing", "catalog_extra", "head_state", "version_event",
                           // "fork_event"
  std::string message;
};

struct ReplayReport {
  int64_t documents = 0;
  int64_t events = 0;
  int64_t updates = 0;
  int64_t snapshots = 0;
  int64_t bytes = 0;               // payload bytes of every event (updates + snapshots)
  int64_t folds_checked = 0;       // snapshots compared with a fold of the prefix (yjs: as
                                   // documents, yjs::SameDocument; others: byte for byte)
  int64_t folds_unverifiable = 0;  // folding-codec snapshots whose prefix was pruned
  int64_t elapsed_ns = 0;
  int64_t scan_ns = 0;        // of which: reading and folding every event
  int64_t head_check_ns = 0;  // of which: loading every head state back from the backend
  std::vector<ReplayViolation> violations;  // at most ReplayOptions::max_violations
  int64_t violation_count = 0;              // all of them, also the ones not kept

  bool clean() const { return violation_count == 0; }
};

struct ReplayOptions {
  std::optional<DocumentId> document;  // only this document
  size_t max_violations = 1000;        // keep at most this many in the report
  // Called every `progress_every` events with the number of events seen so far.
  std::function<void(int64_t events)> progress;
  int64_t progress_every = 100'000;
  // Threads that compare snapshots with the folds of their prefixes while the caller goes on
  // reading events (the folds are most of the CPU time of a Yjs log), and that share the
  // op_id duplicate search in Finish(). 0: the caller does everything; -1: one thread when the
  // machine has more than one core. The report is the same either way, violations included,
  // in the same order.
  int fold_threads = -1;
};

// Feeds events one by one (within a document in seq order; documents may interleave), then
// compares with what the stored projections say. Used by Replay(); usable on any event source.
class ReplayChecker {
 public:
  explicit ReplayChecker(ReplayOptions options = {});
  ~ReplayChecker();
  ReplayChecker(const ReplayChecker&) = delete;
  ReplayChecker& operator=(const ReplayChecker&) = delete;

  void Observe(const eventlog::Event& event);
  // Compares the rebuilt catalog with `stored` (only the selected document when one is).
  void CheckCatalog(std::span<const eventlog::DocumentRecord> stored);
  // Compares each document's rebuilt head state with what `backend` loads.
  Status CheckHeadState(eventlog::Backend& backend);
  // Checks that need the whole stream (pruned seqs covered) and returns the report.
  ReplayReport Finish();

  // The rebuilt catalog, ordered by id.
  std::vector<eventlog::DocumentRecord> Catalog() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

// Runs every check over `backend` (which should be opened read-only). Non-OK only when the
// log cannot be read; violations are in the report.
Result<ReplayReport> Replay(eventlog::Backend& backend, const ReplayOptions& options = {});

}  // namespace quire::projection
