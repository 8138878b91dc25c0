#include "eventlog/internal/backends.h"

namespace quire::eventlog::internal {

Result<std::unique_ptr<Backend>> OpenSqliteBackend(const std::string& path,
                                                   const BackendOptions&) {
  return Status::Unavailable("sqlite backend not implemented yet (" + path + ")");
}

}  // namespace quire::eventlog::internal
