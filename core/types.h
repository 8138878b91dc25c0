// Vocabulary types shared by every module.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace quire {

// Position of an event in its document's stream: strictly increasing from 1, never reused.
using Seq = int64_t;
// Milliseconds since the Unix epoch.
using TimestampMs = int64_t;

// Owned bytes, and a borrowed view valid for the duration of a call (copy what you keep).
using Bytes = std::vector<uint8_t>;
using ByteView = std::span<const uint8_t>;

inline ByteView AsBytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}
inline std::string_view AsString(ByteView b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

// Document ids: a server-made UUID or a client-chosen id matching [A-Za-z0-9._-]{1,128}.
using DocumentId = std::string;
// Client-chosen idempotency key of an update; unique per document.
using OpId = std::string;
// Who made a change (user or CRDT actor id).
using ActorId = std::string;

// The CRDT a document holds; decides how the server validates and folds its updates.
enum class CrdtKind : uint8_t { kYjs = 0, kAutomerge = 1, kOpaque = 2 };
std::string_view CrdtKindName(CrdtKind kind);               // "yjs", "automerge", "opaque"
std::optional<CrdtKind> ParseCrdtKind(std::string_view name);

// True when `id` matches [A-Za-z0-9._-]{1,128}.
bool IsValidDocumentId(std::string_view id);
// True for a non-empty opId of at most 128 printable ASCII characters.
bool IsValidOpId(std::string_view op_id);

}  // namespace quire
