// `quire serve`: configuration from defaults, then the environment, then flags; then the
// ServerApp until SIGINT/SIGTERM (graceful shutdown, exit 0).
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "cli/commands.h"
#include "cli/server_app.h"
#include "core/config.h"
#include "core/log.h"

namespace quire::cli {

namespace {
// The page built by web/build.sh: web/dist beside the build directory of this executable
// (build/quire -> web/dist), else under the working directory; empty when neither is built.
std::string DefaultWebRoot() {
  std::vector<std::string> candidates;
  char exe[4096];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n > 0) {
    std::string dir(exe, static_cast<size_t>(n));
    dir.resize(dir.rfind('/') + 1);
    candidates.push_back(dir + "../web/dist");
  }
  candidates.emplace_back("web/dist");
  for (const std::string& c : candidates) {
    if (access((c + "/index.html").c_str(), R_OK) == 0) return c;
  }
  return "";
}
}  // namespace

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
  if (config.web_root.empty()) config.web_root = DefaultWebRoot();
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
