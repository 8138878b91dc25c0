// The WebSocket endpoints of the server behind one UpgradeHandler, over the shared connection
// layer of io/ws_connection.h:
//   /ws/documents/{id}  the JSON protocol of io/json_protocol.md, one room per open document;
//   /yjs/{id}           y-websocket (io/yws_endpoint.h);
//   anything matched by WebSocketEndpointOptions::routes (tried first; e.g. /hocuspocus).
//
// The HTTP server hands every upgrade request to the returned UpgradeHandler. It rejects other
// paths (404), and for /ws/documents/: malformed ids and unknown documents (404), deleted ones
// (410), a missing or invalid token when access control is on (401) and callers without a role
// on the document (404), with a JSON error and no upgrade; otherwise it writes the 101 response
// and returns the StreamHandler owning the connection.
//
// Lifetime: `loop`, `docs`, `metrics`, `config`, `logger` and `options.access_control` must
// outlive the endpoint and every connection it made. Loop thread only.
#pragma once

#include <memory>
#include <vector>

#include "core/config.h"
#include "core/log.h"
#include "io/access.h"
#include "io/metrics.h"
#include "io/transport.h"
#include "io/ws_connection.h"
#include "projection/document_service.h"

struct uv_loop_s;

namespace quire::io {

struct WebSocketEndpointOptions {
  // Not owned. Null: access control off (MakeOpenAccessControl over `docs`).
  const AccessControl* access_control = nullptr;
  // Extra protocol endpoints, tried in order before the built-in ones (see io/ws_connection.h).
  std::vector<WsRoute> routes;
};

std::unique_ptr<UpgradeHandler> MakeWebSocketEndpoint(uv_loop_s* loop,
                                                      projection::DocumentService& docs,
                                                      io::Metrics& metrics, const Config& config,
                                                      const Logger& logger,
                                                      WebSocketEndpointOptions options = {});

}  // namespace quire::io
