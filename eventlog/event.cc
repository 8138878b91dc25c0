#include "eventlog/event.h"

namespace quire::eventlog {

std::string_view EventKindName(EventKind kind) {
  switch (kind) {
    case EventKind::kCreated: return "created";
    case EventKind::kRenamed: return "renamed";
    case EventKind::kDeleted: return "deleted";
    case EventKind::kRestored: return "restored";
    case EventKind::kUpdate: return "update";
    case EventKind::kSnapshot: return "snapshot";
    case EventKind::kVersion: return "version";
    case EventKind::kForkedTo: return "forked_to";
    case EventKind::kForkedFrom: return "forked_from";
    case EventKind::kPermission: return "permission";
  }
  return "unknown";
}

std::optional<EventKind> ParseEventKind(std::string_view name) {
  for (int k = 1; k <= 10; ++k) {
    auto kind = static_cast<EventKind>(k);
    if (EventKindName(kind) == name) return kind;
  }
  return std::nullopt;
}

}  // namespace quire::eventlog
