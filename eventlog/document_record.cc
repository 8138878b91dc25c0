#include "eventlog/document_record.h"

namespace quire::eventlog {

void Apply(DocumentRecord& record, const Event& event) {
  record.head_seq = event.seq;
  switch (event.kind) {
    case EventKind::kCreated:
      record.id = event.document_id;
      record.title = event.title;
      record.owner_id = event.actor_id;
      record.crdt = event.crdt;
      record.created_at = event.created_at;
      record.updated_at = event.created_at;
      record.deleted_at.reset();
      return;
    case EventKind::kRenamed:
      record.title = event.title;
      break;
    case EventKind::kDeleted:
      record.deleted_at = event.created_at;
      break;
    case EventKind::kRestored:
      record.deleted_at.reset();
      break;
    case EventKind::kUpdate:
      record.update_count += 1;
      record.update_bytes += static_cast<int64_t>(event.payload.size());
      break;
    case EventKind::kSnapshot:
      // A fold is not an edit: updated_at stays where the last edit put it.
      if (event.version >= record.snapshot_version) {
        record.snapshot_version = event.version;
        record.snapshot_bytes = static_cast<int64_t>(event.payload.size());
      }
      return;
    case EventKind::kPermission: {
      // Sharing is not an edit either: updated_at stays.
      std::string role(event.payload.begin(), event.payload.end());
      if (role.empty() || role == "none") {
        record.grants.erase(event.title);
      } else {
        record.grants[event.title] = std::move(role);
      }
      return;
    }
    case EventKind::kVersion:
    case EventKind::kForkedTo:
    case EventKind::kForkedFrom:
      // History markers: they change no content and no catalog field but the head.
      return;
  }
  record.updated_at = event.created_at;
}

}  // namespace quire::eventlog
