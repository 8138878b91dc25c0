// The `quire` commands. Each takes its arguments (after the command name) and returns the
// process exit code.
#pragma once

#include <string>
#include <vector>

namespace quire::cli {

// Dispatches `quire COMMAND ...`: serve, replay, help.
int Main(int argc, char** argv);

// `quire serve [flags]`: see ServeFlagsHelp(). Returns when the server has stopped.
int Serve(const std::vector<std::string>& args);

// `quire replay --database-url URL [--document ID] [--json]`: 0 clean, 1 violations,
// 2 unreadable input.
int Replay(const std::vector<std::string>& args);

// `quire yjs merge|diff|state-vector|inspect|validate|batch ...`: the Yjs update engine on
// files (see `quire yjs --help`). 0 done, 1 invalid update, 2 usage or I/O error.
int Yjs(const std::vector<std::string>& args);

}  // namespace quire::cli
