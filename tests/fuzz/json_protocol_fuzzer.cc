// libFuzzer target: the JSON protocol message parser (io/json_protocol.cc), exactly as the
// WebSocket endpoint calls it. Invariants: a parse either succeeds or names one of the stable
// error codes; a successful update has a valid opId and a decoded delta within the limit whose
// base64 round-trips; every server message built from a parsed message is valid JSON.
#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>

#include "core/base64.h"
#include "io/json_protocol.h"

namespace ws = quire::io::ws;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  constexpr int64_t kMax = 4096;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  ws::ParseResult r = ws::ParseClientMessage(text, kMax);
  if (!r.ok()) {
    std::string_view c = r.error->code;
    if (c != ws::kErrInvalidJson && c != ws::kErrInvalidMessage && c != ws::kErrUnknownType &&
        c != ws::kErrPayloadTooLarge) {
      std::abort();
    }
    auto j = nlohmann::json::parse(ws::ErrorMessage(r.error->code, r.error->message,
                                                    r.error->op_id),
                                   nullptr, false);
    if (j.is_discarded()) std::abort();
    return 0;
  }
  const ws::ClientMessage& m = r.message;
  std::string out;
  switch (m.type) {
    case ws::ClientType::kUpdate:
      if (m.op_id.empty() || m.op_id.size() > 128) std::abort();
      if (static_cast<int64_t>(m.delta.size()) > kMax) std::abort();
      if (quire::Base64Encode(m.delta) != m.delta_b64) std::abort();
      out = ws::RemoteUpdateMessage(7, m.delta_b64, m.actor_id, m.op_id);
      break;
    case ws::ClientType::kPing:
      out = ws::PongMessage(m.ts_json, 1);
      break;
    case ws::ClientType::kJoin:
      if (!ws::IsValidUserId(m.user_id)) std::abort();
      break;
    case ws::ClientType::kPresence: {
      ws::PresenceInfo p;
      p.user_id = "u";
      p.cursor = m.cursor;
      if (m.color) p.color = *m.color;
      out = ws::PresenceMessage(p);
      break;
    }
    case ws::ClientType::kSnapshot:
      if (static_cast<int64_t>(m.snapshot.size()) > kMax) std::abort();
      break;
  }
  if (!out.empty() && nlohmann::json::parse(out, nullptr, false).is_discarded()) std::abort();
  return 0;
}
