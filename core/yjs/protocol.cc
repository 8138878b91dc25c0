#include "core/yjs/protocol.h"

#include "core/yjs/lib0_internal.h"

namespace quire::yjs {
namespace {

using internal::PutVarBytes;
using internal::PutVarString;
using internal::PutVarUint;
using internal::Reader;

Bytes SyncMessage(SyncType type, ByteView payload) {
  Bytes out;
  out.reserve(payload.size() + 8);
  PutVarUint(&out, static_cast<uint64_t>(MessageType::kSync));
  PutVarUint(&out, static_cast<uint64_t>(type));
  PutVarBytes(&out, payload);
  return out;
}

Status Trailing(Reader& r, std::string_view what) {
  if (r.AtEnd()) return Status::Ok();
  r.Fail("unexpected bytes");
  return r.ErrorStatus(what);
}

}  // namespace

Result<Message> DecodeMessage(ByteView frame) {
  Reader r(frame);
  Message m;
  uint64_t type;
  if (!r.ReadVarUint(&type)) return r.ErrorStatus("message type");
  switch (type) {
    case 0: {
      m.type = MessageType::kSync;
      uint64_t sync_type;
      if (!r.ReadVarUint(&sync_type)) return r.ErrorStatus("sync message type");
      if (sync_type > 2) {
        r.Fail("unknown sync message type");
        return r.ErrorStatus("sync message");
      }
      m.sync_type = static_cast<SyncType>(sync_type);
      if (!r.ReadVarBytes(&m.payload)) return r.ErrorStatus("sync payload");
      QUIRE_RETURN_IF_ERROR(Trailing(r, "sync message"));
      return m;
    }
    case 1:
      m.type = MessageType::kAwareness;
      if (!r.ReadVarBytes(&m.payload)) return r.ErrorStatus("awareness payload");
      QUIRE_RETURN_IF_ERROR(Trailing(r, "awareness message"));
      return m;
    case 2: {
      m.type = MessageType::kAuth;
      uint64_t auth_type;
      if (!r.ReadVarUint(&auth_type)) return r.ErrorStatus("auth type");
      if (auth_type != 0) {
        r.Fail("unknown auth message type");
        return r.ErrorStatus("auth message");
      }
      if (!r.ReadVarString(&m.auth_reason)) return r.ErrorStatus("auth reason");
      QUIRE_RETURN_IF_ERROR(Trailing(r, "auth message"));
      return m;
    }
    case 3:
      m.type = MessageType::kQueryAwareness;
      QUIRE_RETURN_IF_ERROR(Trailing(r, "query-awareness message"));
      return m;
    default:
      r.Fail("unknown message type");
      return r.ErrorStatus("message");
  }
}

Bytes EncodeSyncStep1(ByteView state_vector) { return SyncMessage(SyncType::kStep1, state_vector); }
Bytes EncodeSyncStep2(ByteView update) { return SyncMessage(SyncType::kStep2, update); }
Bytes EncodeSyncUpdate(ByteView update) { return SyncMessage(SyncType::kUpdate, update); }

Bytes EncodeAwarenessMessage(ByteView awareness_update) {
  Bytes out;
  out.reserve(awareness_update.size() + 8);
  PutVarUint(&out, static_cast<uint64_t>(MessageType::kAwareness));
  PutVarBytes(&out, awareness_update);
  return out;
}

Bytes EncodeQueryAwareness() { return Bytes{static_cast<uint8_t>(MessageType::kQueryAwareness)}; }

Bytes EncodeAuthPermissionDenied(std::string_view reason) {
  Bytes out;
  PutVarUint(&out, static_cast<uint64_t>(MessageType::kAuth));
  PutVarUint(&out, 0);
  PutVarString(&out, reason);
  return out;
}

Bytes EncodeAwarenessUpdate(std::span<const AwarenessEntry> entries) {
  Bytes out;
  PutVarUint(&out, entries.size());
  for (const AwarenessEntry& e : entries) {
    PutVarUint(&out, e.client);
    PutVarUint(&out, e.clock);
    PutVarString(&out, e.state_json);
  }
  return out;
}

Result<std::vector<AwarenessEntry>> DecodeAwarenessUpdate(ByteView update) {
  Reader r(update);
  uint64_t n;
  if (!r.ReadCount(&n, 3)) return r.ErrorStatus("awareness client count");
  std::vector<AwarenessEntry> out;
  out.reserve(n);
  for (uint64_t i = 0; i < n; ++i) {
    AwarenessEntry e;
    if (!r.ReadVarUint(&e.client) || !r.ReadVarUint(&e.clock) || !r.ReadVarString(&e.state_json)) {
      return r.ErrorStatus("awareness entry");
    }
    if (!internal::ValidJson(e.state_json)) {
      r.Fail("state is not JSON");
      return r.ErrorStatus("awareness entry");
    }
    out.push_back(e);
  }
  QUIRE_RETURN_IF_ERROR(Trailing(r, "awareness update"));
  return out;
}

}  // namespace quire::yjs
