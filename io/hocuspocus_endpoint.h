// The Hocuspocus endpoint: `GET /hocuspocus` (or /hocuspocus/...) upgraded to a WebSocket
// speaking the @hocuspocus/provider protocol of core/yjs/hocuspocus.h (HocuspocusProvider /
// HocuspocusProviderWebsocket with url = ws://host:port/hocuspocus and name = the document id).
// One socket carries any number of documents; every frame names its document (the address).
//
// Per document (per address: "name", or "name\0sessionId" from providers with
// sessionAwareness):
// - Authentication first. Until the provider's Auth Token arrives, its other messages for the
//   document are held (bounded). The token goes to AccessControl::Authenticate (any token when
//   access control is off) and the principal's RoleFor decides: none -> Auth PermissionDenied
//   (no membership; the socket stays open for its other documents), viewer -> Authenticated
//   "readonly", editor/owner -> Authenticated "read-write". Missing documents matching
//   [A-Za-z0-9._-]{1,128} are created first (owner: the token's user) unless
//   Config::auto_create_documents is false (then PermissionDenied "document not found").
//   Roles are re-checked every second and before every write while access control is on
//   (each document keeps its own token's principal): a revoked role closes the document
//   (Close "Forbidden"), a changed one is announced with a new Authenticated; an expired token
//   closes the socket with 4401. A token sent again on an open document replaces its principal
//   (an invalid one closes the document with "Unauthorized").
// - Sync: a step 1 (Sync or SyncReply) is answered, as @hocuspocus/server does, with the
//   server's step 1 then step 2 = diff(head state, client state vector). A step 2 or update is
//   appended to the log (server-made opId, validated by the document's codec) and relayed once
//   committed to every other member of the document's Room (JSON, y-websocket and Hocuspocus
//   clients alike); then the sender gets SyncStatus(applied = 1). Answers to one document's
//   sync messages go out in the order the messages arrived. Viewers' updates are not appended:
//   SyncStatus 0 (a step 2 that adds nothing gets 1, as Hocuspocus does).
// - Awareness lives in the document's Room, one picture with y-websocket clients and JSON
//   presence (io/room.h): applied by clock (a higher clock wins and makes the session the
//   owner of that awareness client id) and echoed to every binary member, the sender too
//   (Hocuspocus does: it keeps the provider's 30 s liveness check fed). The ids a document
//   session owned are removed for everyone when it ends (Close message, lost role, socket
//   closed). The current states are sent on joining; QueryAwareness is answered with them.
// - Stateless messages are accepted and not forwarded (@hocuspocus/server's default without an
//   onStateless hook); BroadcastStateless is server-internal in Hocuspocus 4 and closes the
//   document. Close leaves the document (answered with Close "provider_initiated"). Unknown
//   types are ignored (a newer provider's); a Ping byte gets a Pong.
// - A malformed frame, a malformed state vector or awareness update, an update the codec
//   refuses or a text frame closes the socket with 1007; an update above
//   Config::max_payload_bytes with 1009; a storage failure with 1013 (the provider reconnects
//   and its step 2 carries its edits again).
//
// Served through the shared connection layer (io/ws_connection.h): limits, backpressure,
// rate limit, pings, idle timeout, metrics and logs are the layer's. Loop thread only.
#pragma once

#include <memory>
#include <string_view>

#include "io/ws_connection.h"

namespace quire::io {

// True for the paths this endpoint serves: /hocuspocus and /hocuspocus/...
bool IsHocuspocusPath(std::string_view path);

// The endpoint; its rooms are the hub's, shared with every other protocol.
std::unique_ptr<WsEndpoint> MakeHocuspocusEndpoint(std::shared_ptr<WsHub> hub);

// The route to add to WebSocketEndpointOptions::routes.
WsRoute HocuspocusRoute();

}  // namespace quire::io
