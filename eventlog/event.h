// Events: the log is the source of truth. Everything that changes a document is one Event in
// that document's stream, ordered by `seq` (strictly increasing from 1, never reused).
//
// The stored format (SQLite schema) is specified in eventlog/SCHEMA.md.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "core/types.h"

namespace quire::eventlog {

enum class EventKind : uint8_t {
  kCreated = 1,   // title, crdt, actor_id = owner
  kRenamed = 2,   // title
  kDeleted = 3,   // soft delete
  kRestored = 4,  // undo of a soft delete
  kUpdate = 5,    // op_id, actor_id, payload = CRDT update bytes
  kSnapshot = 6,  // payload = snapshot bytes, version = the seq the snapshot covers
  kVersion = 7,     // a named version: title = the name; it names the state at its own seq
  kForkedTo = 8,    // this document was forked: title = the new document's id, version = at
  kForkedFrom = 9,  // this document is a fork: title = the source document's id, version = at
  kPermission = 10, // a grant changed: title = the grantee's user id, payload = the role name
                    // ("viewer" or "editor"; empty = revoked), actor_id = who changed it
};

// The role names a kPermission payload may hold (access control's Role names, io/access.h).
inline constexpr std::string_view kGrantViewer = "viewer";
inline constexpr std::string_view kGrantEditor = "editor";

std::string_view EventKindName(EventKind kind);  // "created", ... "snapshot", "version",
                                                 // "forked_to", "forked_from",
                                                 // "permission"
std::optional<EventKind> ParseEventKind(std::string_view name);

struct Event {
  DocumentId document_id;
  Seq seq = 0;
  EventKind kind = EventKind::kUpdate;
  OpId op_id;          // kUpdate (required), others optional; unique per document when set
  ActorId actor_id;    // who made the change; for kCreated, the owner
  Bytes payload;       // kUpdate: update bytes; kSnapshot: snapshot bytes; otherwise empty
  Seq version = 0;     // kSnapshot: the seq the snapshot covers (<= seq); kForkedTo/From:
                       // the source seq forked at; otherwise 0
  std::string title;   // kCreated, kRenamed, kVersion (name), kForkedTo/From (other id),
                       // kPermission (grantee)
  CrdtKind crdt = CrdtKind::kYjs;  // kCreated
  TimestampMs created_at = 0;
};

// An append: an Event whose seq the log assigns.
using AppendRequest = Event;

struct AppendResult {
  Seq seq = 0;             // the assigned seq, or for a duplicate the original seq
  bool duplicate = false;  // the (document, op_id) was appended before; nothing new was stored
};

}  // namespace quire::eventlog
