// y-protocols messages in y-websocket framing (core/yjs/SPEC.md section 9): sync step 1 / step 2 /
// update, awareness, query-awareness and auth. One frame is one WebSocket binary message.
//
// Decoding checks the framing only (types, lengths, no trailing bytes, awareness states are
// JSON); the update inside a sync message is checked by the caller with ValidateUpdate, a state
// vector with DecodeStateVector. Decoded views borrow the frame's bytes.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "core/types.h"

namespace quire::yjs {

enum class MessageType : uint8_t { kSync = 0, kAwareness = 1, kAuth = 2, kQueryAwareness = 3 };
enum class SyncType : uint8_t { kStep1 = 0, kStep2 = 1, kUpdate = 2 };

struct Message {
  MessageType type = MessageType::kSync;
  SyncType sync_type = SyncType::kStep1;  // kSync
  // kSync: the state vector (step 1) or the v1 update (step 2, update).
  // kAwareness: the awareness update (see DecodeAwarenessUpdate).
  ByteView payload;
  std::string_view auth_reason;  // kAuth (permission denied)
};

Result<Message> DecodeMessage(ByteView frame);

Bytes EncodeSyncStep1(ByteView state_vector);
Bytes EncodeSyncStep2(ByteView update);
Bytes EncodeSyncUpdate(ByteView update);
Bytes EncodeAwarenessMessage(ByteView awareness_update);
Bytes EncodeQueryAwareness();
Bytes EncodeAuthPermissionDenied(std::string_view reason);

// One client's entry of an awareness update. `state_json` is JSON text; "null" removes the
// client's state.
struct AwarenessEntry {
  uint64_t client = 0;
  uint64_t clock = 0;
  std::string_view state_json;
};

// Entries are written in the given order.
Bytes EncodeAwarenessUpdate(std::span<const AwarenessEntry> entries);
Result<std::vector<AwarenessEntry>> DecodeAwarenessUpdate(ByteView update);

}  // namespace quire::yjs
