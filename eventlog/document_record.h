// DocumentRecord: the catalog row of one document, a pure fold of its events.
//
// The SQLite backend keeps these rows in the `documents` table in the same transaction as the
// events they derive from; projections and `quire replay` rebuild them with Apply() alone.
#pragma once

#include <map>
#include <optional>
#include <string>

#include "eventlog/event.h"

namespace quire::eventlog {

struct DocumentRecord {
  DocumentId id;
  std::string title;
  std::string owner_id;
  CrdtKind crdt = CrdtKind::kYjs;
  TimestampMs created_at = 0;
  TimestampMs updated_at = 0;
  std::optional<TimestampMs> deleted_at;
  Seq head_seq = 0;          // seq of the document's last event
  int64_t update_count = 0;  // kUpdate events ever appended
  int64_t update_bytes = 0;  // sum of their payload sizes
  Seq snapshot_version = 0;  // version of the latest snapshot (0 = none)
  int64_t snapshot_bytes = 0;
  // Grants of kPermission events still in force: user id -> "viewer" | "editor" (a revoke
  // removes the entry). The owner is owner_id, never a grant. Not a column of the `documents`
  // table: the SQLite backend folds the permission events into it when it reads the catalog.
  std::map<std::string, std::string> grants;

  bool deleted() const { return deleted_at.has_value(); }
  bool operator==(const DocumentRecord&) const = default;
};

// Folds one event into `record`. For kCreated, `record` starts empty. Events must be applied
// in seq order. `updated_at` moves with every event except kSnapshot (a fold is not an edit).
void Apply(DocumentRecord& record, const Event& event);

}  // namespace quire::eventlog
