// The Hocuspocus provider protocol (@hocuspocus/provider 2.x-4.x, @hocuspocus/server): pure
// decoding and encoding of its frames, no I/O. One WebSocket binary message is one frame:
//
//   frame      = address:varString type:varUint body      (lib0 encoding, core/yjs/SPEC.md 1)
//              | 0x09 | 0x0A                               (connection-level Ping / Pong, v4)
//   address    = the document name, or name "\0" sessionId (v4 providers with
//                sessionAwareness: several providers of one document on one socket)
//
//   type  body
//   0 Sync            syncType:varUint payload:varUint8Array   Step1 0 (state vector),
//   4 SyncReply       (as Sync; the server's step 1 that asks    Step2 1 / Update 2 (v1 update)
//                      nothing back)
//   1 Awareness       update:varUint8Array (y-protocols awareness update)
//   2 Auth            authType:varUint ...
//                       Token 0            to server: token:varString [version:varString]
//                                          (the version since provider 3); to client: nothing
//                                          (the server asks for a fresh token)
//                       PermissionDenied 1 reason:varString
//                       Authenticated 2    scope:varString ("read-write" | "readonly")
//   3 QueryAwareness  (empty)
//   5 Stateless       payload:varString
//   6 BroadcastStateless payload:varString (server-internal; v4 servers refuse it from clients)
//   7 Close           to server: nothing (the provider leaves the document);
//                     to client: reason:varString
//   8 SyncStatus      applied:varUint (1: the update was applied, 0: refused)
//
// The decoder checks the framing only — lengths, UTF-8 of every string, known sub-types, no
// trailing bytes; the update in a sync message is checked by the caller (ValidateUpdate), a
// state vector with DecodeStateVector, an awareness update with DecodeAwarenessUpdate. A frame
// of an unknown type decodes (type kUnknown) so that an endpoint can ignore what a newer
// provider sends, as @hocuspocus/server does. Decoded views borrow the frame's bytes.
//
// The vocabulary is protocol.h's (y-websocket) with an address in front; hence a namespace of
// its own.
#pragma once

#include <cstdint>
#include <string_view>

#include "core/status.h"
#include "core/types.h"
#include "core/yjs/protocol.h"

namespace quire::yjs::hocuspocus {

enum class Type : uint8_t {
  kSync = 0,
  kAwareness = 1,
  kAuth = 2,
  kQueryAwareness = 3,
  kSyncReply = 4,
  kStateless = 5,
  kBroadcastStateless = 6,
  kClose = 7,
  kSyncStatus = 8,
  kPing = 9,
  kPong = 10,
  kUnknown = 255,  // any other type; `raw_type` has it, `payload` the rest of the frame
};

enum class AuthType : uint8_t { kToken = 0, kPermissionDenied = 1, kAuthenticated = 2 };

// Who sends the frame: the bodies of Auth Token and Close differ by direction.
enum class Direction : uint8_t { kToServer, kToClient };

inline constexpr std::string_view kScopeReadWrite = "read-write";
inline constexpr std::string_view kScopeReadOnly = "readonly";

struct Message {
  Type type = Type::kSync;
  uint64_t raw_type = 0;  // the type as sent
  // Empty for Ping and Pong. `document` is the address up to its first NUL, `session` what
  // follows it (empty without one).
  std::string_view address;
  std::string_view document;
  std::string_view session;

  SyncType sync_type = SyncType::kStep1;  // kSync, kSyncReply
  // kSync/kSyncReply: the state vector (step 1) or the v1 update (step 2, update).
  // kAwareness: the awareness update. kUnknown: the bytes after the type.
  ByteView payload;

  AuthType auth_type = AuthType::kToken;  // kAuth
  std::string_view token;                 // kAuth kToken, to server
  bool has_version = false;               // kAuth kToken, to server: the provider sent one
  std::string_view version;               // ...e.g. "4.8.0"
  // kAuth: the reason (kPermissionDenied) or the scope (kAuthenticated); kStateless and
  // kBroadcastStateless: the payload; kClose to client: the reason.
  std::string_view text;
  bool applied = false;  // kSyncStatus
};

// InvalidArgument "hocuspocus: <part>: <reason> at byte <pos>" for a malformed frame.
Result<Message> Decode(ByteView frame, Direction direction = Direction::kToServer);

// --- Server to client ---
Bytes EncodeSyncStep1(std::string_view address, ByteView state_vector);
Bytes EncodeSyncStep2(std::string_view address, ByteView update);
Bytes EncodeSyncUpdate(std::string_view address, ByteView update);
// SyncReply carrying a step 1: the client answers with its step 2 and sends no step 1 back.
Bytes EncodeSyncReplyStep1(std::string_view address, ByteView state_vector);
Bytes EncodeAwareness(std::string_view address, ByteView awareness_update);
Bytes EncodeQueryAwareness(std::string_view address);
Bytes EncodeAuthenticated(std::string_view address, std::string_view scope);
Bytes EncodePermissionDenied(std::string_view address, std::string_view reason);
// Asks the provider for a fresh token (it answers with an Auth Token).
Bytes EncodeTokenRequest(std::string_view address);
Bytes EncodeStateless(std::string_view address, std::string_view payload);
Bytes EncodeBroadcastStateless(std::string_view address, std::string_view payload);
// Tells the provider the server closed its document (the socket stays open).
Bytes EncodeClose(std::string_view address, std::string_view reason);
Bytes EncodeSyncStatus(std::string_view address, bool applied);
Bytes EncodePing();

// --- Client to server (test clients, fuzz round trips) ---
// `version` is omitted when empty (providers before 3.0 sent none).
Bytes EncodeAuthToken(std::string_view address, std::string_view token,
                      std::string_view version = {});
Bytes EncodeCloseRequest(std::string_view address);
Bytes EncodePong();

// Re-encodes a decoded message (the inverse of Decode for the same direction); kUnknown
// keeps its raw type and payload.
Bytes Encode(const Message& message, Direction direction);

}  // namespace quire::yjs::hocuspocus
