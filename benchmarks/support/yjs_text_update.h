// Encoders for the few Yjs v1 messages the load generator sends: an update inserting a string
// into the root Y.Text "t" (shared/yjs/SPEC.md), and the y-websocket / Hocuspocus framings.
//
// Each simulated editor is one Yjs client that only appends after its own previous insertion:
// its first update has no origin and names the root type; every later one has origin = the last
// character it inserted (client, clock - 1). Such updates only depend on the same client's
// earlier ones, which the same connection sent before, so every server can apply them at once.
// Strings are ASCII, so the Yjs length (UTF-16 units) is the byte length.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace quire::bench {

inline void PutVarUint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>(0x80 | (v & 0x7f)));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}
inline void PutVarString(std::string& out, std::string_view s) {
  PutVarUint(out, s.size());
  out.append(s);
}

// A Yjs update inserting `text` (ASCII, non-empty) at clock `clock` of `client`; `clock` is the
// number of characters this client inserted before.
inline std::string YjsTextInsert(uint64_t client, uint64_t clock, std::string_view text) {
  std::string u;
  PutVarUint(u, 1);  // one client
  PutVarUint(u, 1);  // one struct
  PutVarUint(u, client);
  PutVarUint(u, clock);
  if (clock == 0) {
    u.push_back(0x04);  // Item, ContentString, no origins: parent info follows
    PutVarUint(u, 1);   // parent is a root type named by key
    PutVarString(u, "t");
  } else {
    u.push_back(static_cast<char>(0x84));  // Item, ContentString, origin
    PutVarUint(u, client);
    PutVarUint(u, clock - 1);
  }
  PutVarString(u, text);
  PutVarUint(u, 0);  // empty delete set
  return u;
}

// Reads a varuint at `pos`; false when truncated.
inline bool GetVarUint(std::string_view in, size_t& pos, uint64_t& v) {
  v = 0;
  for (int shift = 0; pos < in.size() && shift < 64; shift += 7) {
    auto b = static_cast<uint8_t>(in[pos++]);
    v |= static_cast<uint64_t>(b & 0x7f) << shift;
    if ((b & 0x80) == 0) return true;
  }
  return false;
}

// The (client, clock) of the first struct of a v1 update with one client, as every relayed
// single-insert update is. False for anything else (e.g. a multi-client state).
inline bool FirstStructId(std::string_view update, uint64_t& client, uint64_t& clock) {
  size_t pos = 0;
  uint64_t groups = 0, structs = 0;
  if (!GetVarUint(update, pos, groups) || groups != 1) return false;
  if (!GetVarUint(update, pos, structs) || structs == 0) return false;
  return GetVarUint(update, pos, client) && GetVarUint(update, pos, clock);
}

// y-websocket: messageSync(0) + messageYjsUpdate(2) + update.
inline std::string YwsUpdateMessage(std::string_view update) {
  std::string m;
  PutVarUint(m, 0);
  PutVarUint(m, 2);
  PutVarString(m, update);
  return m;
}
// y-websocket: messageSync(0) + syncStep1(0) + an empty state vector.
inline std::string YwsSyncStep1Empty() { return std::string("\x00\x00\x01\x00", 4); }

// Hocuspocus: every message starts with the document name.
inline std::string HocuspocusAuth(std::string_view doc, std::string_view token) {
  std::string m;
  PutVarString(m, doc);
  PutVarUint(m, 2);  // Auth
  PutVarUint(m, 0);  // Token
  PutVarString(m, token);
  return m;
}
inline std::string HocuspocusSyncStep1Empty(std::string_view doc) {
  std::string m;
  PutVarString(m, doc);
  m.append(std::string("\x00\x00\x01\x00", 4));
  return m;
}
inline std::string HocuspocusUpdate(std::string_view doc, std::string_view update) {
  std::string m;
  PutVarString(m, doc);
  m.append(YwsUpdateMessage(update));
  return m;
}

}  // namespace quire::bench
