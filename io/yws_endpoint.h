// The y-websocket endpoint: `GET /yjs/{documentId}` upgraded to a WebSocket speaking the
// y-protocols binary messages of core/yjs/protocol.h (y-websocket's WebsocketProvider with
// serverUrl = ws://host:port/yjs and room = the document id).
//
// On connect the server sends sync step 1 (the state vector of the head state) and the
// current awareness states; a client's step 1 is answered with step 2 = diff(head state,
// client state vector); a client's step 2 or update is appended as an event (server-made opId)
// and, once committed, relayed to every other member of the document's Room — JSON clients of
// /ws/documents/{id} included (they get remote_update), and their updates reach y-websocket
// clients as sync update messages. Awareness goes through the document's Room (io/room.h):
// relayed to every binary member of the document (the sender too, as y-websocket's own server
// does), shown to JSON clients as `presence` (userId "yjs:<clientID>"), and JSON clients'
// presence arrives as awareness states; the client ids a connection owned are removed for the
// others when it closes. Missing documents are created on first connect unless
// Config::auto_create_documents is false (then: auth permission-denied, close).
//
// Access control (io/access.h, enforced as io/ws_connection.h says): no role on an existing
// document -> 404 at the upgrade; a document created on connect is owned by the token's user;
// a viewer's sync step 2 and updates are dropped (y-protocols' read-only semantics) while its
// awareness is still relayed.
//
// Served through the shared connection layer (io/ws_connection.h); MakeWebSocketEndpoint
// routes /yjs/ here. Loop thread only.
#pragma once

#include <memory>
#include <string_view>

#include "io/ws_connection.h"

namespace quire::io {

// True for the paths this endpoint serves (`/yjs/...`).
bool IsYwsPath(std::string_view path);

// The endpoint; its rooms are the hub's, shared with every other protocol.
std::unique_ptr<WsEndpoint> MakeYwsEndpoint(std::shared_ptr<WsHub> hub);

}  // namespace quire::io
