// The WebSocket collaboration endpoint: `GET /ws/documents/{id}` upgraded to a WebSocket (wslay)
// speaking the JSON protocol of io/json_protocol.md, with one room per open document.
//
// The HTTP server hands every upgrade request to the returned UpgradeHandler. It rejects other
// paths (404), unknown documents (404) and deleted ones (410) with a JSON error and no upgrade;
// otherwise it writes the 101 response and returns the StreamHandler owning the connection.
//
// Lifetime: `loop`, `docs`, `metrics`, `config` and `logger` must outlive the endpoint and every
// connection it made. Loop thread only.
#pragma once

#include <memory>

#include "core/config.h"
#include "core/log.h"
#include "io/metrics.h"
#include "io/transport.h"
#include "projection/document_service.h"

struct uv_loop_s;

namespace quire::io {

std::unique_ptr<UpgradeHandler> MakeWebSocketEndpoint(uv_loop_s* loop,
                                                      projection::DocumentService& docs,
                                                      io::Metrics& metrics, const Config& config,
                                                      const Logger& logger);

}  // namespace quire::io
