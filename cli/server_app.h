// ServerApp: the whole server assembled from a Config — storage (OpenBackend -> AsyncLog),
// projections (DocumentService), the HTTP front (REST API, operations endpoints, the WebSocket
// endpoint) on one libuv loop, the compactor timer — and its graceful shutdown.
//
//   ServerApp app(config, logger);
//   Status s = app.Start();        // storage open, catalog loaded, listening
//   s = app.Run();                 // until RequestShutdown() (or a signal) completes
//
// Shutdown order: stop accepting; idle HTTP connections close, requests in progress are
// answered, WebSocket streams get OnShutdown (close 1001); once every connection is closed (or
// the grace period, config.shutdown_grace_s minus a margin, ran out and the rest were aborted)
// the log commits what is pending (AsyncLog::Close); then every handle is closed and
// uv_loop_close must succeed.
//
// Threading: Start() and Run() on the thread that owns the loop (the same thread); Post() and
// RequestShutdown() from any thread.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "core/clock.h"
#include "core/config.h"
#include "core/log.h"
#include "core/status.h"
#include "eventlog/backend.h"
#include "io/metrics.h"
#include "projection/document_service.h"

struct uv_loop_s;

namespace quire::cli {

struct ServerAppOptions {
  // Time for the projections (compactor cadence, timestamps). Defaults to the system clock.
  const Clock* clock = nullptr;
  // Applied to the opened backend before the log takes it (tests: fault injection).
  std::function<std::unique_ptr<eventlog::Backend>(std::unique_ptr<eventlog::Backend>)>
      wrap_backend;
  // SIGINT and SIGTERM request a graceful shutdown.
  bool handle_signals = false;
  int64_t compactor_interval_ms = 1000;
};

class ServerApp {
 public:
  // `logger` must outlive the app.
  ServerApp(Config config, const Logger& logger, ServerAppOptions options = {});
  // Requires Run() to have returned, or Start() to have failed or never been called.
  ~ServerApp();
  ServerApp(const ServerApp&) = delete;
  ServerApp& operator=(const ServerApp&) = delete;

  // Opens the storage, loads the catalog and binds host:port. On failure everything already
  // made is released again and the loop is closed.
  Status Start();
  // The bound port (after Start()).
  int port() const;
  // Backend::Describe() of the storage, e.g. "memory://".
  const std::string& storage_description() const;

  // Runs the loop until a requested shutdown completes. OK when every handle closed and
  // uv_loop_close succeeded.
  Status Run();

  // Any thread: starts the graceful shutdown (idempotent).
  void RequestShutdown();
  // Any thread: runs `fn` on the loop thread. False (and `fn` dropped) when the app is not
  // running: before Start() succeeded or once the shutdown closed its handles.
  bool Post(std::function<void()> fn);

  // Loop thread only.
  uv_loop_s* loop();
  projection::DocumentService& documents();
  io::Metrics& metrics();
  const Config& config() const;

  class Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace quire::cli
