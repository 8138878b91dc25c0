// `quire serve`: configuration from defaults, then the environment, then flags; then the
// ServerApp until SIGINT/SIGTERM (graceful shutdown, exit 0).
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "cli/commands.h"
#include "cli/server_app.h"
#include "core/config.h"
#include "core/log.h"

namespace quire::cli {

int Serve(const std::vector<std::string>& args) {
  for (const std::string& a : args) {
    if (a == "--help" || a == "-h") {
      std::fputs(
          "usage: quire serve [flags]\n\nRuns the HTTP/WebSocket server. Flags (and the "
          "environment variables they override):\n",
          stdout);
      std::fputs(ServeFlagsHelp().c_str(), stdout);
      return 0;
    }
  }
  Config config;
  Status s = ApplyEnvironment(config, [](const char* name) { return std::getenv(name); });
  if (s.ok()) s = ApplyServeFlags(config, args);
  if (!s.ok()) {
    std::fprintf(stderr, "quire serve: %s\n(see quire serve --help)\n", s.message().c_str());
    return 2;
  }
  Logger logger(config.log_level);
  ServerAppOptions options;
  options.handle_signals = true;
  ServerApp app(config, logger, options);
  s = app.Start();
  if (!s.ok()) {
    QUIRE_LOG(logger, kError, "start_failed").Str("error", s.ToString());
    return 1;
  }
  s = app.Run();
  if (!s.ok()) {
    QUIRE_LOG(logger, kError, "stop_failed").Str("error", s.ToString());
    return 1;
  }
  return 0;
}

}  // namespace quire::cli
