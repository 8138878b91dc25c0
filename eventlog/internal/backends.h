// Constructors of the concrete backends and the checks they share. Internal to eventlog/:
// callers go through OpenBackend().
#pragma once

#include <memory>
#include <string>

#include "eventlog/backend.h"

namespace quire::eventlog::internal {

std::unique_ptr<Backend> NewMemoryBackend();

// `path` is the file path as given after `sqlite:///` (see SCHEMA.md, "URL forms").
Result<std::unique_ptr<Backend>> OpenSqliteBackend(const std::string& path,
                                                   const BackendOptions& options);

// Checks of one request that need no stored state: a document id, a known kind, an op_id on
// every kUpdate, a non-negative snapshot version. OK or InvalidArgument.
Status ValidateRequestShape(const AppendRequest& request);

}  // namespace quire::eventlog::internal
