#include "io/json_protocol.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <limits>
#include <nlohmann/json.hpp>

#include "core/base64.h"
#include "core/log.h"

namespace quire::io::ws {
namespace {

using nlohmann::json;

ParseResult Fail(std::string_view code, std::string message, OpId op_id = {}) {
  ParseResult r;
  r.error = ProtocolError{code, std::move(message), std::move(op_id)};
  return r;
}

bool HasControlChars(std::string_view s) {
  for (unsigned char c : s) {
    if (c < 0x20 || c == 0x7f) return true;
  }
  return false;
}

// A JSON integer that fits in int64.
std::optional<int64_t> AsInt64(const json& v) {
  if (v.is_number_unsigned()) {
    auto u = v.get<uint64_t>();
    if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return std::nullopt;
    return static_cast<int64_t>(u);
  }
  if (v.is_number_integer()) return v.get<int64_t>();
  return std::nullopt;
}

// The longest base64 text that can decode to at most `max_bytes`.
size_t MaxBase64Length(int64_t max_bytes) { return static_cast<size_t>((max_bytes + 2) / 3 * 4); }

// Decodes a required base64 field under the payload limit. Returns an error result or nullopt.
std::optional<ParseResult> DecodePayload(const json& obj, const char* field, int64_t max_bytes,
                                         const OpId& op_id, Bytes& out, std::string* text_out) {
  auto it = obj.find(field);
  if (it == obj.end() || !it->is_string()) {
    return Fail(kErrInvalidMessage, std::string(field) + " must be a base64 string", op_id);
  }
  const auto& text = it->get_ref<const std::string&>();
  if (text.size() > MaxBase64Length(max_bytes)) {
    return Fail(kErrPayloadTooLarge,
                std::string(field) + " exceeds " + std::to_string(max_bytes) + " bytes", op_id);
  }
  auto decoded = Base64Decode(text);
  if (!decoded.ok()) {
    return Fail(kErrInvalidMessage, std::string(field) + " is not valid base64", op_id);
  }
  if (static_cast<int64_t>(decoded->size()) > max_bytes) {
    return Fail(kErrPayloadTooLarge,
                std::string(field) + " exceeds " + std::to_string(max_bytes) + " bytes", op_id);
  }
  out = std::move(decoded).value();
  if (text_out != nullptr) *text_out = text;
  return std::nullopt;
}

ParseResult ParseObject(const json& obj, int64_t max_payload_bytes) {
  auto type_it = obj.find("type");
  if (type_it == obj.end() || !type_it->is_string()) {
    return Fail(kErrInvalidMessage, "type must be a string");
  }
  const auto& type = type_it->get_ref<const std::string&>();
  ParseResult r;
  ClientMessage& m = r.message;

  if (type == "ping") {
    m.type = ClientType::kPing;
    auto ts = obj.find("ts");
    if (ts != obj.end() && !ts->is_null()) {
      if (!ts->is_number()) return Fail(kErrInvalidMessage, "ts must be a number");
      m.ts_json = ts->dump();
    }
    return r;
  }

  if (type == "join") {
    m.type = ClientType::kJoin;
    auto user = obj.find("userId");
    if (user == obj.end() || !user->is_string() ||
        !IsValidUserId(user->get_ref<const std::string&>())) {
      return Fail(kErrInvalidMessage, "userId must be a string of 1 to 128 bytes");
    }
    m.user_id = user->get<std::string>();
    auto name = obj.find("displayName");
    if (name != obj.end() && !name->is_null()) {
      if (!name->is_string() || !IsValidDisplayName(name->get_ref<const std::string&>())) {
        return Fail(kErrInvalidMessage, "displayName must be a string of at most 256 bytes");
      }
      m.display_name = name->get<std::string>();
    } else {
      m.display_name = m.user_id;
    }
    return r;
  }

  if (type == "update") {
    m.type = ClientType::kUpdate;
    auto op = obj.find("opId");
    if (op == obj.end() || !op->is_string() || !IsValidOpId(op->get_ref<const std::string&>())) {
      return Fail(kErrInvalidMessage, "opId must be 1 to 128 printable ASCII characters");
    }
    m.op_id = op->get<std::string>();
    auto actor = obj.find("actorId");
    if (actor != obj.end() && !actor->is_null()) {
      if (!actor->is_string() || !IsValidUserId(actor->get_ref<const std::string&>())) {
        return Fail(kErrInvalidMessage, "actorId must be a string of 1 to 128 bytes", m.op_id);
      }
      m.actor_id = actor->get<std::string>();
    }
    auto base = obj.find("baseVersion");
    if (base != obj.end() && !base->is_null()) {
      auto v = AsInt64(*base);
      if (!v || *v < 0) {
        return Fail(kErrInvalidMessage, "baseVersion must be a non-negative integer", m.op_id);
      }
      m.base_version = *v;
    }
    if (auto err =
            DecodePayload(obj, "deltaB64", max_payload_bytes, m.op_id, m.delta, &m.delta_b64)) {
      return std::move(*err);
    }
    return r;
  }

  if (type == "presence") {
    m.type = ClientType::kPresence;
    auto cursor = obj.find("cursor");
    if (cursor != obj.end() && !cursor->is_null()) {
      if (!cursor->is_object()) return Fail(kErrInvalidMessage, "cursor must be {from, to}");
      auto from = cursor->find("from");
      auto to = cursor->find("to");
      std::optional<int64_t> f, t;
      if (from != cursor->end()) f = AsInt64(*from);
      if (to != cursor->end()) t = AsInt64(*to);
      if (!f || !t || *f < 0 || *t < 0) {
        return Fail(kErrInvalidMessage, "cursor.from and cursor.to must be non-negative integers");
      }
      m.cursor = Cursor{*f, *t};
    }
    auto color = obj.find("color");
    if (color != obj.end() && !color->is_null()) {
      if (!color->is_string() || color->get_ref<const std::string&>().size() > 64 ||
          HasControlChars(color->get_ref<const std::string&>())) {
        return Fail(kErrInvalidMessage, "color must be a string of at most 64 bytes");
      }
      m.color = color->get<std::string>();
    }
    return r;
  }

  if (type == "snapshot") {
    m.type = ClientType::kSnapshot;
    auto op = obj.find("opId");
    if (op != obj.end() && !op->is_null()) {
      if (!op->is_string() || !IsValidOpId(op->get_ref<const std::string&>())) {
        return Fail(kErrInvalidMessage, "opId must be 1 to 128 printable ASCII characters");
      }
      m.op_id = op->get<std::string>();
    }
    auto version = obj.find("version");
    std::optional<int64_t> v;
    if (version != obj.end()) v = AsInt64(*version);
    if (!v || *v < 0) {
      return Fail(kErrInvalidMessage, "version must be a non-negative integer", m.op_id);
    }
    m.version = *v;
    if (auto err =
            DecodePayload(obj, "snapshotB64", max_payload_bytes, m.op_id, m.snapshot, nullptr)) {
      return std::move(*err);
    }
    return r;
  }

  // Cut at 64 bytes, backing off to a UTF-8 boundary: the error text must stay valid UTF-8
  // (a client fails the connection on an invalid text frame). Found by json_protocol_fuzzer.
  size_t cut = std::min<size_t>(type.size(), 64);
  while (cut > 0 && cut < type.size() && (static_cast<unsigned char>(type[cut]) & 0xC0) == 0x80) {
    --cut;
  }
  return Fail(kErrUnknownType, "unknown message type \"" + type.substr(0, cut) + "\"");
}

void AppendInt(std::string& out, int64_t v) { out += std::to_string(v); }

}  // namespace

ParseResult ParseClientMessage(std::string_view text, int64_t max_payload_bytes) {
  // Exceptions are disabled for parsing; any other nlohmann exception (e.g. a type error we
  // failed to guard) is still caught so a client can never crash the loop.
  try {
    json doc = json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (doc.is_discarded()) return Fail(kErrInvalidJson, "message is not valid JSON");
    if (!doc.is_object()) return Fail(kErrInvalidMessage, "message must be a JSON object");
    return ParseObject(doc, max_payload_bytes);
  } catch (const std::exception&) {
    return Fail(kErrInvalidMessage, "malformed message");
  }
}

bool IsValidUserId(std::string_view user_id) {
  return !user_id.empty() && user_id.size() <= 128 && !HasControlChars(user_id);
}

bool IsValidDisplayName(std::string_view name) {
  return name.size() <= 256 && !HasControlChars(name);
}

std::string StateMessage(Seq version, ByteView snapshot, Seq head_seq) {
  std::string out;
  out.reserve(64 + (snapshot.size() + 2) / 3 * 4);
  out += R"({"type":"state","version":)";
  AppendInt(out, version);
  out += R"(,"snapshotB64":")";
  AppendBase64(out, snapshot);
  out += R"(","headSeq":)";
  AppendInt(out, head_seq);
  out += '}';
  return out;
}

std::string RemoteUpdateMessage(Seq seq, std::string_view delta_b64, std::string_view actor_id,
                                std::string_view op_id) {
  std::string out;
  out.reserve(96 + delta_b64.size() + actor_id.size() + op_id.size());
  out += R"({"type":"remote_update","seq":)";
  AppendInt(out, seq);
  // Base64 needs no escaping.
  out += R"(,"deltaB64":")";
  out += delta_b64;
  out += R"(","actorId":)";
  AppendJsonString(out, actor_id);
  out += R"(,"opId":)";
  AppendJsonString(out, op_id);
  out += '}';
  return out;
}

std::string AckMessage(std::string_view op_id, Seq seq) {
  std::string out = R"({"type":"ack","opId":)";
  AppendJsonString(out, op_id);
  out += R"(,"seq":)";
  AppendInt(out, seq);
  out += '}';
  return out;
}

std::string PresenceMessage(const PresenceInfo& p) {
  std::string out = R"({"type":"presence","userId":)";
  AppendJsonString(out, p.user_id);
  out += R"(,"displayName":)";
  AppendJsonString(out, p.display_name);
  out += R"(,"color":)";
  AppendJsonString(out, p.color);
  out += R"(,"cursor":)";
  if (p.cursor) {
    out += R"({"from":)";
    AppendInt(out, p.cursor->from);
    out += R"(,"to":)";
    AppendInt(out, p.cursor->to);
    out += '}';
  } else {
    out += "null";
  }
  out += R"(,"status":)";
  AppendJsonString(out, p.status);
  out += '}';
  return out;
}

std::string PongMessage(std::string_view ts_json, int64_t now_ms) {
  std::string out = R"({"type":"pong","ts":)";
  if (ts_json.empty()) {
    AppendInt(out, now_ms);
  } else {
    out += ts_json;
  }
  out += '}';
  return out;
}

std::string ErrorMessage(std::string_view code, std::string_view message, std::string_view op_id) {
  std::string out = R"({"type":"error","code":)";
  AppendJsonString(out, code);
  out += R"(,"message":)";
  AppendJsonString(out, message);
  if (!op_id.empty()) {
    out += R"(,"opId":)";
    AppendJsonString(out, op_id);
  }
  out += '}';
  return out;
}

std::string DefaultColor(std::string_view user_id) {
  static constexpr const char* kPalette[] = {"#e6194b", "#3cb44b", "#4363d8", "#f58231",
                                             "#911eb4", "#46a0a0", "#c71585", "#808000"};
  uint32_t h = 2166136261u;  // FNV-1a
  for (unsigned char c : user_id) h = (h ^ c) * 16777619u;
  return kPalette[h % (sizeof kPalette / sizeof kPalette[0])];
}

std::string AwarenessStateFromPresence(const PresenceInfo& p) {
  std::string out = R"({"user":{"id":)";
  AppendJsonString(out, p.user_id);
  out += R"(,"name":)";
  AppendJsonString(out, p.display_name);
  out += R"(,"color":)";
  AppendJsonString(out, p.color);
  out += R"(},"cursor":)";
  if (p.cursor) {
    out += R"({"from":)";
    AppendInt(out, p.cursor->from);
    out += R"(,"to":)";
    AppendInt(out, p.cursor->to);
    out += '}';
  } else {
    out += "null";
  }
  out += R"(,"status":)";
  AppendJsonString(out, p.status);
  out += '}';
  return out;
}

std::string AwarenessUserId(uint64_t client) { return "yjs:" + std::to_string(client); }

PresenceInfo PresenceFromAwarenessState(uint64_t client, std::string_view state_json,
                                        std::string_view status, const AwarenessOwner* owner) {
  constexpr uint64_t kMaxCursor = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  PresenceInfo p;
  p.user_id = owner != nullptr ? owner->user_id : AwarenessUserId(client);
  p.status = status;
  json state = json::parse(state_json, nullptr, /*allow_exceptions=*/false);
  if (state.is_object()) {
    auto user = state.find("user");
    if (user != state.end() && user->is_object()) {
      auto name = user->find("name");
      if (name != user->end() && name->is_string()) p.display_name = name->get<std::string>();
      auto color = user->find("color");
      if (color != user->end() && color->is_string()) p.color = color->get<std::string>();
    }
    auto cursor = state.find("cursor");
    if (cursor != state.end() && cursor->is_object()) {
      auto from = cursor->find("from");
      auto to = cursor->find("to");
      if (from != cursor->end() && to != cursor->end() && from->is_number_unsigned() &&
          to->is_number_unsigned() && from->get<uint64_t>() <= kMaxCursor &&
          to->get<uint64_t>() <= kMaxCursor) {
        p.cursor = Cursor{from->get<int64_t>(), to->get<int64_t>()};
      }
    }
  }
  // Keep within the JSON protocol's own limits (cut at a UTF-8 boundary).
  auto clip = [](std::string& s, size_t max) {
    if (s.size() <= max) return;
    size_t n = max;
    while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
    s.resize(n);
  };
  if (owner != nullptr && !owner->display_name.empty()) p.display_name = owner->display_name;
  clip(p.display_name, 256);
  clip(p.color, 64);
  if (p.display_name.empty()) p.display_name = p.user_id;
  if (p.color.empty()) p.color = DefaultColor(p.user_id);
  return p;
}

}  // namespace quire::io::ws
