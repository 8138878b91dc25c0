// The JSON protocol spoken on /ws/documents/{id}: parsing of client messages and serialization
// of server messages. The format is specified in io/json_protocol.md; this is its only reader
// and writer. Pure functions, no I/O.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/types.h"

namespace quire::io::ws {

// Stable error codes of `error` messages (see json_protocol.md).
inline constexpr std::string_view kErrInvalidJson = "INVALID_JSON";
inline constexpr std::string_view kErrInvalidMessage = "INVALID_MESSAGE";
inline constexpr std::string_view kErrUnknownType = "UNKNOWN_TYPE";
inline constexpr std::string_view kErrBinaryFrame = "BINARY_NOT_SUPPORTED";
inline constexpr std::string_view kErrPayloadTooLarge = "PAYLOAD_TOO_LARGE";
inline constexpr std::string_view kErrInvalidUpdate = "INVALID_UPDATE";
inline constexpr std::string_view kErrInvalidSnapshot = "INVALID_SNAPSHOT";
inline constexpr std::string_view kErrStorageUnavailable = "STORAGE_UNAVAILABLE";
inline constexpr std::string_view kErrDocumentDeleted = "DOCUMENT_DELETED";
inline constexpr std::string_view kErrNotFound = "NOT_FOUND";
inline constexpr std::string_view kErrInternal = "INTERNAL";
// The caller's role does not allow the message (a viewer's update or snapshot).
inline constexpr std::string_view kErrForbidden = "FORBIDDEN";

enum class ClientType { kJoin, kUpdate, kPresence, kPing, kSnapshot };

struct Cursor {
  int64_t from = 0;
  int64_t to = 0;
  bool operator==(const Cursor&) const = default;
};

// One parsed client message. Only the fields of `type` are meaningful.
struct ClientMessage {
  ClientType type = ClientType::kPing;
  // join
  std::string user_id;
  std::string display_name;
  // update (op_id also on snapshot, optional there)
  OpId op_id;
  std::optional<Seq> base_version;
  ActorId actor_id;       // empty when the client left it out
  Bytes delta;            // decoded deltaB64
  std::string delta_b64;  // as received (validated), reused for relays
  // presence
  std::optional<Cursor> cursor;  // null / absent: no selection
  std::optional<std::string> color;
  // ping: the `ts` value as JSON text, echoed verbatim in `pong`; empty when absent
  std::string ts_json;
  // snapshot
  Seq version = 0;
  Bytes snapshot;
};

struct ProtocolError {
  std::string_view code;  // one of kErr*
  std::string message;
  OpId op_id;  // when the message carried a usable opId
};

struct ParseResult {
  ClientMessage message;
  std::optional<ProtocolError> error;
  bool ok() const { return !error.has_value(); }
};

// Parses one text frame. `max_payload_bytes` bounds decoded deltaB64 / snapshotB64.
ParseResult ParseClientMessage(std::string_view text, int64_t max_payload_bytes);

// Identity limits shared with the upgrade query parameters.
bool IsValidUserId(std::string_view user_id);    // 1..128 bytes, no control characters
bool IsValidDisplayName(std::string_view name);  // 0..256 bytes, no control characters

// --- Server messages (each returns one complete JSON text) ---
std::string StateMessage(Seq version, ByteView snapshot, Seq head_seq);
std::string RemoteUpdateMessage(Seq seq, std::string_view delta_b64, std::string_view actor_id,
                                std::string_view op_id);
std::string AckMessage(std::string_view op_id, Seq seq);

struct PresenceInfo {
  std::string user_id;
  std::string display_name;
  std::string color;
  std::optional<Cursor> cursor;
  std::string_view status = "joined";  // "joined", "active" or "left"
};
std::string PresenceMessage(const PresenceInfo& presence);
// `ts_json` is the client's value as JSON text (a number); empty yields the server time.
std::string PongMessage(std::string_view ts_json, int64_t now_ms);
std::string ErrorMessage(std::string_view code, std::string_view message,
                         std::string_view op_id = {});

// A stable colour for a user without one: "#rrggbb" from a fixed palette.
std::string DefaultColor(std::string_view user_id);

// --- The presence <-> awareness bridge (json_protocol.md, "Presence and Yjs awareness") ---

// The awareness state (JSON text) that stands for a JSON client's presence to y-websocket and
// Hocuspocus clients: {"user":{"id","name","color"},"cursor":{"from","to"}|null,"status"}.
std::string AwarenessStateFromPresence(const PresenceInfo& presence);
// The userId under which awareness client `client` appears to JSON clients: "yjs:<client>".
std::string AwarenessUserId(uint64_t client);
// Who owns an awareness state when access control is on: the binary client's token says so,
// not the state it sends.
struct AwarenessOwner {
  std::string user_id;       // the token's sub
  std::string display_name;  // the token's name claim; empty when it has none
};
// The presence that stands for awareness client `client`'s state (JSON text) to JSON clients:
// userId AwarenessUserId(client); displayName and color from state.user.name / .color when
// they are strings (else the userId and DefaultColor); cursor from a {"from","to"} cursor of
// non-negative integers, else null; `status` must be a static string ("joined", "active",
// "left"). With `owner` (access control on): userId is owner->user_id, and displayName
// owner->display_name when it is not empty (as for a JSON client: the name claim wins over
// what the client says).
PresenceInfo PresenceFromAwarenessState(uint64_t client, std::string_view state_json,
                                        std::string_view status,
                                        const AwarenessOwner* owner = nullptr);

}  // namespace quire::io::ws
