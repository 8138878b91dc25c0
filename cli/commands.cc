#include "cli/commands.h"

#include <cstdio>
#include <string_view>

#include "core/config.h"

namespace quire::cli {
namespace {

constexpr const char* kUsage =
    "usage: quire COMMAND [options]\n"
    "\n"
    "Quire: a server for realtime collaborative editing (Yjs, Automerge).\n"
    "\n"
    "commands:\n"
    "  serve    run the HTTP/WebSocket server\n"
    "  replay   rebuild every projection from the event log and check its invariants\n"
    "  yjs      merge, diff, state-vector, inspect or validate Yjs updates\n"
    "  help     show this text; `quire COMMAND --help` shows a command's options\n";

}  // namespace

int Main(int argc, char** argv) {
  std::vector<std::string> args(argv + (argc > 1 ? 2 : 1), argv + argc);
  std::string_view command = argc > 1 ? argv[1] : "help";
  if (command == "serve") return Serve(args);
  if (command == "replay") return Replay(args);
  if (command == "yjs") return Yjs(args);
  if (command == "help" || command == "--help" || command == "-h") {
    std::fputs(kUsage, stdout);
    return 0;
  }
  std::fprintf(stderr, "quire: unknown command '%.*s'\n\n%s", static_cast<int>(command.size()),
               command.data(), kUsage);
  return 2;
}

}  // namespace quire::cli
