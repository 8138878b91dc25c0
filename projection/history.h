// History and time travel over the event log: paged reads of a document's events, the state as
// of a seq, named versions, and the retention bounds that say what is no longer available.
//
// Threading: the Read* functions take a Backend and so run on the storage thread (through
// AsyncLog::Run) or in a tool that owns the backend; they touch nothing else. The cursor
// functions are pure.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "core/types.h"
#include "eventlog/backend.h"

namespace quire::projection {

// A position in one document's history, for one direction. Ascending: the next page holds
// seq > position. Descending: the next page holds seq < position. Seqs are never reused, so
// a position stays valid while events are appended (and while updates are pruned).
struct HistoryCursor {
  bool descending = false;
  Seq position = 0;
};

// Opaque text (base64 of a versioned position); nullopt when `text` is not one we made.
std::string EncodeHistoryCursor(const HistoryCursor& cursor);
std::optional<HistoryCursor> DecodeHistoryCursor(std::string_view text);

// What retention removed. Pruned updates are updates a snapshot covers; the state as of a seq
// below `oldest_state_seq` can no longer be rebuilt.
struct RetentionInfo {
  Seq pruned_through = 0;    // highest pruned seq (0 = nothing pruned)
  Seq oldest_state_seq = 1;  // smallest seq the state can be rebuilt at
};

struct HistoryPage {
  std::vector<eventlog::Event> items;  // in the requested order; pruned updates are absent
  bool more = false;                   // events exist past the last item (at read time)
  RetentionInfo retention;
};

// Up to `limit` events after `cursor` (descending reads start from `cursor.position`, e.g.
// head + 1 for the newest).
Result<HistoryPage> ReadHistoryPage(eventlog::Backend& backend, const DocumentId& id,
                                    const HistoryCursor& cursor, size_t limit);

Result<RetentionInfo> ReadRetention(eventlog::Backend& backend, const DocumentId& id);

// The document as of `at`. For a folding CRDT `snapshot` is the fold of everything up to `at`
// (yjs: one merged update; automerge: the concatenation) and `updates` is empty; for opaque it
// is the nearest snapshot (version <= at) and the updates after it, up to `at`.
struct StateUpdate {
  Seq seq = 0;
  OpId op_id;
  ActorId actor_id;
  Bytes bytes;
};
struct StateAt {
  Seq at = 0;
  Seq snapshot_version = 0;  // what `snapshot` covers (= at for folding CRDTs)
  Bytes snapshot;
  std::vector<StateUpdate> updates;
};
struct StateAtResult {
  std::optional<StateAt> state;  // nullopt: `at` is below retention.oldest_state_seq
  RetentionInfo retention;
};
// `at` must be in [1, head]; the caller checks the head. ReadStateEventsAt followed by
// FoldStateAt.
Result<StateAtResult> ReadStateAt(eventlog::Backend& backend, const DocumentId& id, CrdtKind crdt,
                                  Seq at);
// The reading half, for the storage thread: the nearest snapshot (version <= at) and the
// updates after it, up to `at`, for every CRDT.
Result<StateAtResult> ReadStateEventsAt(eventlog::Backend& backend, const DocumentId& id, Seq at);
// The folding half, which needs no backend (the server runs it on the compute thread): for a
// folding CRDT, folds `state`'s updates into its snapshot (snapshot_version = at); for opaque
// documents, nothing.
Status FoldStateAt(StateAt& state, CrdtKind crdt);

// The kVersion events of a document, in seq order.
Result<std::vector<eventlog::Event>> ReadVersions(eventlog::Backend& backend, const DocumentId& id);

// The events a fork appends to the new document `new_id` after its `created` event, in order
// (see eventlog/SCHEMA.md): forked_from, then the state at `state.at`.
Result<std::vector<eventlog::Event>> ForkEvents(const DocumentId& source_id,
                                                const DocumentId& new_id, CrdtKind crdt,
                                                const StateAt& state, const ActorId& actor);

}  // namespace quire::projection
