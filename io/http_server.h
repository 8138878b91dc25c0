// HttpServer: HTTP/1.1 on libuv + llhttp. Accepts TCP connections; each connection object owns
// its socket, parser, read buffer and write queue. Requests are answered in order (keep-alive
// and pipelining: the next request is parsed only after the current one is answered). A request
// with `Upgrade: websocket` is handed to the registered UpgradeHandler; the connection then acts
// as the Transport of the returned StreamHandler.
//
// Limits answered by the server itself, before the handler sees a request: header block over
// max_header_bytes -> 431; body over max_body_bytes -> 413; Transfer-Encoding together with
// Content-Length -> 400; malformed HTTP -> 400. Each of these closes the connection after the
// answer. A connection that does not finish a request's headers within header_timeout_ms
// (counted from accept or from the previous answer), or its body within header_timeout_ms of
// the headers, is closed.
//
// Threading: everything runs on the loop thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/config.h"
#include "core/log.h"
#include "core/status.h"
#include "io/http_message.h"
#include "io/metrics.h"
#include "io/transport.h"

struct uv_loop_s;

namespace quire::io {

struct HttpServerOptions {
  int64_t max_header_bytes = 16 << 10;
  int64_t max_body_bytes = 1 << 20;
  int64_t header_timeout_ms = 10'000;
  // After the server decides to close (an error answer, Connection: close), it half-closes and
  // keeps reading (discarding) for at most this long, so a client still sending a body reads
  // the answer instead of a reset.
  int64_t linger_ms = 2'000;
  std::vector<std::string> allowed_origins;  // CORS (see io/cors.h)
  // Open connections at most, in total and per client address; a connection beyond either is
  // answered 503 TOO_MANY_CONNECTIONS (JSON) at once and closed.
  int64_t max_connections = 10'000;
  int64_t max_connections_per_ip = 10'000;
  // Each loop iteration's socket writes (one per connection with output) go to the kernel in
  // one io_uring submission when the kernel allows it; otherwise, or when false, one write
  // system call per connection.
  bool io_uring = true;

  static HttpServerOptions FromConfig(const Config& config);
};

// Answers one request. Call exactly once, synchronously or later on the loop thread. Calling
// it after the connection went away is harmless (the answer is dropped).
using HttpResponder = std::function<void(HttpResponse)>;
// Handles one complete request. `request` is borrowed for the call; copy what you keep.
using HttpHandler = std::function<void(const HttpRequest& request, HttpResponder respond)>;

class HttpServer {
 public:
  // `loop`, `metrics` and `logger` must outlive the server. `metrics` may be null.
  HttpServer(uv_loop_s* loop, HttpServerOptions options, HttpHandler handler, Metrics* metrics,
             const Logger& logger);
  // Requires Shutdown() to have completed if Listen() was called (even when it failed).
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Requests with `Upgrade: websocket` go to `handler`. Without one they get a 404 JSON error.
  void SetUpgradeHandler(std::unique_ptr<UpgradeHandler> handler);

  // Binds and listens on host:port (port 0 picks a free port; see port()).
  Status Listen(const std::string& host, int port);
  // The bound port, 0 before Listen().
  int port() const;

  // Graceful stop: closes the listener, closes idle connections, lets requests in progress be
  // answered (then closes them), and calls OnShutdown() on every upgraded stream. `done` runs
  // (never synchronously) once the listener and every connection are closed.
  void Shutdown(std::function<void()> done);
  // Closes every remaining connection at once, dropping queued bytes (end of a grace period).
  void AbortAll();
  bool shutting_down() const;

  size_t connection_count() const;
  // Bytes queued on every connection and not yet taken by the kernel (answers and WebSocket
  // frames: the send queues). O(connections).
  size_t queued_bytes() const;

  class Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace quire::io
