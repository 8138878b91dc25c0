// The seam between a connection and the protocol that takes it over after an HTTP Upgrade
// (WebSocket). The connection (io/server) implements Transport; the protocol implements
// StreamHandler. Both run on the loop thread.
#pragma once

#include <memory>
#include <string>

#include "core/types.h"
#include "io/http_message.h"

namespace quire::io {

class Transport {
 public:
  virtual ~Transport() = default;
  // Queues bytes for writing; the transport owns them until written.
  virtual void Send(std::string bytes) = 0;
  // Bytes queued and not yet written to the socket.
  virtual size_t queued_bytes() const = 0;
  // Flushes what is queued, then closes. Idempotent. The handler's OnClosed() follows.
  virtual void Close() = 0;
  // Closes at once, dropping anything queued (a peer that cannot keep up, a broken protocol).
  virtual void Abort() = 0;
  // Stops / resumes reading from the socket (backpressure on a fast sender).
  virtual void PauseReading() = 0;
  virtual void ResumeReading() = 0;
  // "127.0.0.1:54321", for logs.
  virtual std::string peer() const = 0;
};

class StreamHandler {
 public:
  virtual ~StreamHandler() = default;
  // Bytes that arrived after the upgrade request (borrowed for the call).
  virtual void OnData(ByteView data) = 0;
  // The queue fell to zero after being non-empty.
  virtual void OnDrained() {}
  // The server is shutting down: say goodbye (WebSocket close 1001) and close.
  virtual void OnShutdown() = 0;
  // The transport is closed; no more Send(). The handler is destroyed right after.
  virtual void OnClosed() = 0;
};

// Decides an upgrade request. Either fills `reject` (an HTTP error response, no upgrade) and
// returns nullptr, or writes the 101 response itself through `transport` and returns the
// handler that owns the connection from now on. `leftover` holds bytes that arrived after the
// request in the same read; the handler must consume them.
class UpgradeHandler {
 public:
  virtual ~UpgradeHandler() = default;
  virtual std::unique_ptr<StreamHandler> Upgrade(const HttpRequest& request, Transport& transport,
                                                 HttpResponse& reject) = 0;
};

}  // namespace quire::io
