#include "eventlog/backend.h"

#include <string_view>

#include "eventlog/internal/backends.h"

namespace quire::eventlog {

namespace internal {

Status ValidateRequestShape(const AppendRequest& request) {
  if (request.document_id.empty()) return Status::InvalidArgument("append without a document id");
  switch (request.kind) {
    case EventKind::kCreated:
    case EventKind::kRenamed:
    case EventKind::kDeleted:
    case EventKind::kRestored:
    case EventKind::kVersion:
      break;
    case EventKind::kForkedTo:
    case EventKind::kForkedFrom:
      if (request.title.empty() || request.version < 0) {
        return Status::InvalidArgument("fork event of document " + request.document_id +
                                       " without the other document or with a negative seq");
      }
      break;
    case EventKind::kUpdate:
      if (request.op_id.empty()) {
        return Status::InvalidArgument("update of document " + request.document_id +
                                       " without an op_id");
      }
      break;
    case EventKind::kPermission: {
      std::string_view role(reinterpret_cast<const char*>(request.payload.data()),
                            request.payload.size());
      if (request.title.empty() ||
          (!role.empty() && role != kGrantViewer && role != kGrantEditor)) {
        return Status::InvalidArgument("permission event of document " + request.document_id +
                                       " without a grantee or with an unknown role");
      }
      break;
    }
    case EventKind::kSnapshot:
      if (request.version < 0) {
        return Status::InvalidArgument("snapshot of document " + request.document_id +
                                       " with a negative version");
      }
      break;
    default:
      return Status::InvalidArgument("unknown event kind " +
                                     std::to_string(static_cast<int>(request.kind)));
  }
  return Status::Ok();
}

}  // namespace internal

Result<std::unique_ptr<Backend>> OpenBackend(const std::string& database_url,
                                             const BackendOptions& options) {
  std::string_view url = database_url;
  if (url == "memory://" || url == "memory:") return internal::NewMemoryBackend();
  // SQLAlchemy's convention: sqlite:///relative/path.db, sqlite:////absolute/path.db.
  constexpr std::string_view kSqlite = "sqlite:///";
  if (url.substr(0, kSqlite.size()) == kSqlite) {
    std::string path(url.substr(kSqlite.size()));
    if (path.empty()) return Status::InvalidArgument("DATABASE_URL " + database_url + " has no path");
    return internal::OpenSqliteBackend(path, options);
  }
  return Status::InvalidArgument("unsupported DATABASE_URL '" + database_url +
                                 "' (expected sqlite:///path/to/file.db or memory://)");
}

}  // namespace quire::eventlog
