// The y-websocket endpoint: `GET /yjs/{documentId}` upgraded to a WebSocket speaking the
// y-protocols binary messages of core/yjs/protocol.h (y-websocket's WebsocketProvider with
// serverUrl = ws://host:port/yjs and room = the document id).
//
// On connect the server sends sync step 1 (the state vector of the head state) and the
// current awareness states; a client's step 1 is answered with step 2 = diff(head state,
// client state vector); a client's step 2 or update is appended as an event (server-made opId)
// and, once committed, relayed to every other member of the document's Room — JSON clients of
// /ws/documents/{id} included (they get remote_update), and their updates reach y-websocket
// clients as sync update messages. Awareness is relayed to every y-websocket member of the
// document (the sender too, as y-websocket's own server does); the client ids a connection
// announced are removed for the others when it closes. Missing documents are created on first
// connect unless Config::auto_create_documents is false (then: auth permission-denied, close).
//
// Lifetime: as MakeWebSocketEndpoint's; `rooms` is how the JSON endpoint shares its rooms.
// Loop thread only.
#pragma once

#include <functional>
#include <memory>
#include <string_view>

#include "core/config.h"
#include "core/log.h"
#include "io/metrics.h"
#include "io/room.h"
#include "io/transport.h"
#include "projection/document_service.h"

struct uv_loop_s;

namespace quire::io {

// The room registry of the WebSocket endpoint, shared by every protocol.
struct RoomHooks {
  // The room of `id`, created (and the document pinned) on first use.
  std::function<std::shared_ptr<Room>(const DocumentId&)> acquire;
  // Drops `room` from the registry when it is idle.
  std::function<void(const std::shared_ptr<Room>&)> release;
  // Whether opening one more document would exceed Config::max_open_documents.
  std::function<bool(const DocumentId&)> at_capacity;
};

// True for the paths this endpoint serves (`/yjs/...`).
bool IsYwsPath(std::string_view path);

std::unique_ptr<UpgradeHandler> MakeYwsEndpoint(uv_loop_s* loop, projection::DocumentService& docs,
                                                Metrics& metrics, const Config& config,
                                                const Logger& logger, RoomHooks rooms);

}  // namespace quire::io
