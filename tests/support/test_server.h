// TestServer: a real ServerApp on 127.0.0.1 (ephemeral port) running its loop on a background
// thread, for end-to-end tests with real sockets. Storage is memory:// or a SQLite file;
// Restart() stops gracefully and starts again on the same storage (and the same port when it
// is still free is NOT promised: read port() again).
//
//   quire::test::TestServer server(quire::test::TestServer::MemoryConfig());
//   REQUIRE(server.Start().ok());
//   auto r = quire::test::HttpRequestOnce(server.port(), "GET", "/healthz");
//   REQUIRE(server.Stop().ok());   // graceful; OK only if uv_loop_close succeeded
#pragma once

#include <functional>
#include <future>
#include <memory>
#include <string>
#include <thread>

#include "cli/server_app.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/log.h"
#include "eventlog/fault_injection.h"

namespace quire::test {

// A mkdtemp directory under /tmp, removed (recursively) on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  // path() + "/" + name
  std::string File(const std::string& name) const;

 private:
  std::string path_;
};

struct TestServerOptions {
  // Injected time for the projections (compactor); the system clock when null.
  const Clock* clock = nullptr;
  // Wrap the backend in a FaultInjectingBackend; reach it with faults() while running.
  bool fault_injection = false;
  int64_t compactor_interval_ms = 1000;
};

class TestServer {
 public:
  // 127.0.0.1, port 0, memory://, log level warn.
  static Config MemoryConfig();
  // As MemoryConfig() but on the SQLite file `path` (absolute or relative) (synchronous=NORMAL to
  // keep tests fast).
  static Config SqliteConfig(const std::string& path);

  explicit TestServer(Config config, TestServerOptions options = {});
  // Stops the server if it is running.
  ~TestServer();
  TestServer(const TestServer&) = delete;
  TestServer& operator=(const TestServer&) = delete;

  // Starts the server thread; returns once it listens (or failed to start).
  Status Start();
  // Graceful stop; returns the result of ServerApp::Run (OK = clean shutdown, loop closed).
  Status Stop();
  // Stop() then Start() with the same configuration and storage.
  Status Restart();
  bool running() const { return app_ != nullptr; }

  int port() const { return port_; }
  const Config& config() const { return config_; }
  // The fault-injecting backend (options.fault_injection), null otherwise. Its controls are
  // thread-safe.
  eventlog::FaultInjectingBackend* faults() const { return faults_; }

  // Runs `fn` on the server's loop thread and waits for it (does nothing when not running).
  void RunOnLoop(const std::function<void(cli::ServerApp&)>& fn);

 private:
  Config config_;
  TestServerOptions options_;
  Logger logger_;
  std::unique_ptr<cli::ServerApp> app_;
  std::thread thread_;
  std::promise<Status> stopped_;
  std::future<Status> stopped_future_;
  int port_ = 0;
  eventlog::FaultInjectingBackend* faults_ = nullptr;
};

}  // namespace quire::test
