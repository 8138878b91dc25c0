#include "core/yjs/hocuspocus.h"

#include <string>

#include "core/yjs/lib0_internal.h"

namespace quire::yjs::hocuspocus {
namespace {

using internal::PutVarBytes;
using internal::PutVarString;
using internal::PutVarUint;
using internal::Reader;

constexpr uint8_t kPingByte = static_cast<uint8_t>(Type::kPing);
constexpr uint8_t kPongByte = static_cast<uint8_t>(Type::kPong);

Status Error(const Reader& r, std::string_view part) {
  return Status::InvalidArgument("hocuspocus: " + std::string(part) + ": " +
                                 std::string(r.error()) + " at byte " + std::to_string(r.pos()));
}

Status Trailing(Reader& r, std::string_view part) {
  if (r.AtEnd()) return Status::Ok();
  r.Fail("unexpected bytes after the message");
  return Error(r, part);
}

Bytes Header(std::string_view address, Type type, size_t body_hint = 0) {
  Bytes out;
  out.reserve(address.size() + body_hint + 8);
  PutVarString(&out, address);
  PutVarUint(&out, static_cast<uint64_t>(type));
  return out;
}

Bytes Sync(std::string_view address, Type type, SyncType sync_type, ByteView payload) {
  Bytes out = Header(address, type, payload.size() + 8);
  PutVarUint(&out, static_cast<uint64_t>(sync_type));
  PutVarBytes(&out, payload);
  return out;
}

Bytes WithString(std::string_view address, Type type, std::string_view s) {
  Bytes out = Header(address, type, s.size() + 4);
  PutVarString(&out, s);
  return out;
}

Bytes Auth(std::string_view address, AuthType auth_type, std::string_view s) {
  Bytes out = Header(address, Type::kAuth, s.size() + 4);
  PutVarUint(&out, static_cast<uint64_t>(auth_type));
  PutVarString(&out, s);
  return out;
}

}  // namespace

Result<Message> Decode(ByteView frame, Direction direction) {
  Message m;
  if (frame.size() == 1 && (frame[0] == kPingByte || frame[0] == kPongByte)) {
    m.type = static_cast<Type>(frame[0]);
    m.raw_type = frame[0];
    return m;
  }
  Reader r(frame);
  if (frame.empty()) {
    r.Fail("empty frame");
    return Error(r, "address");
  }
  if (!r.ReadVarString(&m.address)) return Error(r, "address");
  size_t nul = m.address.find('\0');
  m.document = m.address.substr(0, nul);
  if (nul != std::string_view::npos) m.session = m.address.substr(nul + 1);
  if (!r.ReadVarUint(&m.raw_type)) return Error(r, "message type");
  switch (m.raw_type) {
    case 0:
    case 4: {
      m.type = static_cast<Type>(m.raw_type);
      uint64_t sync_type;
      if (!r.ReadVarUint(&sync_type)) return Error(r, "sync type");
      if (sync_type > 2) {
        r.Fail("unknown sync type");
        return Error(r, "sync type");
      }
      m.sync_type = static_cast<SyncType>(sync_type);
      if (!r.ReadVarBytes(&m.payload)) return Error(r, "sync payload");
      QUIRE_RETURN_IF_ERROR(Trailing(r, "sync message"));
      return m;
    }
    case 1:
      m.type = Type::kAwareness;
      if (!r.ReadVarBytes(&m.payload)) return Error(r, "awareness update");
      QUIRE_RETURN_IF_ERROR(Trailing(r, "awareness message"));
      return m;
    case 2: {
      m.type = Type::kAuth;
      uint64_t auth_type;
      if (!r.ReadVarUint(&auth_type)) return Error(r, "auth type");
      switch (auth_type) {
        case 0:
          m.auth_type = AuthType::kToken;
          if (direction == Direction::kToServer) {
            if (!r.ReadVarString(&m.token)) return Error(r, "auth token");
            if (!r.AtEnd()) {
              m.has_version = true;
              if (!r.ReadVarString(&m.version)) return Error(r, "provider version");
            }
          }
          break;
        case 1:
          m.auth_type = AuthType::kPermissionDenied;
          if (!r.ReadVarString(&m.text)) return Error(r, "permission denied reason");
          break;
        case 2:
          m.auth_type = AuthType::kAuthenticated;
          if (!r.ReadVarString(&m.text)) return Error(r, "authenticated scope");
          break;
        default:
          r.Fail("unknown auth type");
          return Error(r, "auth type");
      }
      QUIRE_RETURN_IF_ERROR(Trailing(r, "auth message"));
      return m;
    }
    case 3:
      m.type = Type::kQueryAwareness;
      QUIRE_RETURN_IF_ERROR(Trailing(r, "query-awareness message"));
      return m;
    case 5:
    case 6:
      m.type = static_cast<Type>(m.raw_type);
      if (!r.ReadVarString(&m.text)) return Error(r, "stateless payload");
      QUIRE_RETURN_IF_ERROR(Trailing(r, "stateless message"));
      return m;
    case 7:
      m.type = Type::kClose;
      if (direction == Direction::kToClient && !r.ReadVarString(&m.text)) {
        return Error(r, "close reason");
      }
      QUIRE_RETURN_IF_ERROR(Trailing(r, "close message"));
      return m;
    case 8: {
      m.type = Type::kSyncStatus;
      uint64_t applied;
      if (!r.ReadVarUint(&applied)) return Error(r, "sync status");
      if (applied > 1) {
        r.Fail("sync status is neither 0 nor 1");
        return Error(r, "sync status");
      }
      m.applied = applied == 1;
      QUIRE_RETURN_IF_ERROR(Trailing(r, "sync status message"));
      return m;
    }
    default:
      // Ping and Pong carry no address; with one they are as unknown as any other type.
      m.type = Type::kUnknown;
      m.payload = r.Span(r.pos(), frame.size());
      return m;
  }
}

Bytes EncodeSyncStep1(std::string_view address, ByteView state_vector) {
  return Sync(address, Type::kSync, SyncType::kStep1, state_vector);
}
Bytes EncodeSyncStep2(std::string_view address, ByteView update) {
  return Sync(address, Type::kSync, SyncType::kStep2, update);
}
Bytes EncodeSyncUpdate(std::string_view address, ByteView update) {
  return Sync(address, Type::kSync, SyncType::kUpdate, update);
}
Bytes EncodeSyncReplyStep1(std::string_view address, ByteView state_vector) {
  return Sync(address, Type::kSyncReply, SyncType::kStep1, state_vector);
}

Bytes EncodeAwareness(std::string_view address, ByteView awareness_update) {
  Bytes out = Header(address, Type::kAwareness, awareness_update.size() + 4);
  PutVarBytes(&out, awareness_update);
  return out;
}

Bytes EncodeQueryAwareness(std::string_view address) {
  return Header(address, Type::kQueryAwareness);
}

Bytes EncodeAuthenticated(std::string_view address, std::string_view scope) {
  return Auth(address, AuthType::kAuthenticated, scope);
}
Bytes EncodePermissionDenied(std::string_view address, std::string_view reason) {
  return Auth(address, AuthType::kPermissionDenied, reason);
}
Bytes EncodeTokenRequest(std::string_view address) {
  Bytes out = Header(address, Type::kAuth);
  PutVarUint(&out, static_cast<uint64_t>(AuthType::kToken));
  return out;
}

Bytes EncodeStateless(std::string_view address, std::string_view payload) {
  return WithString(address, Type::kStateless, payload);
}
Bytes EncodeBroadcastStateless(std::string_view address, std::string_view payload) {
  return WithString(address, Type::kBroadcastStateless, payload);
}
Bytes EncodeClose(std::string_view address, std::string_view reason) {
  return WithString(address, Type::kClose, reason);
}

Bytes EncodeSyncStatus(std::string_view address, bool applied) {
  Bytes out = Header(address, Type::kSyncStatus);
  PutVarUint(&out, applied ? 1 : 0);
  return out;
}

Bytes EncodePing() { return Bytes{kPingByte}; }
Bytes EncodePong() { return Bytes{kPongByte}; }

Bytes EncodeAuthToken(std::string_view address, std::string_view token, std::string_view version) {
  Bytes out = Auth(address, AuthType::kToken, token);
  if (!version.empty()) PutVarString(&out, version);
  return out;
}

Bytes EncodeCloseRequest(std::string_view address) { return Header(address, Type::kClose); }

Bytes Encode(const Message& m, Direction direction) {
  switch (m.type) {
    case Type::kSync:
    case Type::kSyncReply:
      return Sync(m.address, m.type, m.sync_type, m.payload);
    case Type::kAwareness:
      return EncodeAwareness(m.address, m.payload);
    case Type::kAuth:
      switch (m.auth_type) {
        case AuthType::kToken:
          if (direction == Direction::kToClient) return EncodeTokenRequest(m.address);
          {
            Bytes out = Auth(m.address, AuthType::kToken, m.token);
            if (m.has_version) PutVarString(&out, m.version);
            return out;
          }
        case AuthType::kPermissionDenied:
          return EncodePermissionDenied(m.address, m.text);
        case AuthType::kAuthenticated:
          return EncodeAuthenticated(m.address, m.text);
      }
      break;
    case Type::kQueryAwareness:
      return EncodeQueryAwareness(m.address);
    case Type::kStateless:
    case Type::kBroadcastStateless:
      return WithString(m.address, m.type, m.text);
    case Type::kClose:
      return direction == Direction::kToClient ? EncodeClose(m.address, m.text)
                                               : EncodeCloseRequest(m.address);
    case Type::kSyncStatus:
      return EncodeSyncStatus(m.address, m.applied);
    case Type::kPing:
      return EncodePing();
    case Type::kPong:
      return EncodePong();
    case Type::kUnknown:
      break;
  }
  Bytes out;
  PutVarString(&out, m.address);
  PutVarUint(&out, m.raw_type);
  out.insert(out.end(), m.payload.begin(), m.payload.end());
  return out;
}

}  // namespace quire::yjs::hocuspocus
