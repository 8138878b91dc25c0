// SameDocument: equality of two updates as documents (see update.h).
#include <algorithm>
#include <functional>
#include <string>

#include "core/yjs/update.h"
#include "core/yjs/update_internal.h"

namespace quire::yjs {
namespace {

// A maximal run of structs of one client that slicing could have made from one struct. The
// header is the first struct's; `payload` holds the content's elements without their count
// (String: the UTF-8 text; JSON and Any: the encoded elements; Deleted: nothing; other
// contents, which are never joined: the content as on the wire).
struct Run {
  Struct head;
  uint64_t length = 0;
  std::string payload;
};

bool Joinable(ContentKind kind) {
  return kind == ContentKind::kString || kind == ContentKind::kDeleted ||
         kind == ContentKind::kJson || kind == ContentKind::kAny;
}

// The content's elements without their count.
Result<std::string> Payload(const Struct& s) {
  internal::Reader r(s.content);
  switch (s.content_kind) {
    case ContentKind::kString: {
      std::string_view text;
      if (!r.ReadVarString(&text)) return r.ErrorStatus("string content");
      return std::string(text);
    }
    case ContentKind::kJson:
    case ContentKind::kAny: {
      uint64_t n;
      if (!r.ReadVarUint(&n)) return r.ErrorStatus("content count");
      return std::string(AsString(s.content.subspan(r.pos())));
    }
    case ContentKind::kDeleted:
      return std::string();
    default:
      return std::string(AsString(s.content));
  }
}

// True when `s` continues `run` exactly as SliceStruct would have cut it off.
bool Continues(const Run& run, const Struct& s) {
  const Struct& h = run.head;
  if (s.id.client != h.id.client || s.id.clock != h.id.clock + run.length) return false;
  if (s.kind != h.kind) return false;
  if (s.kind != StructKind::kItem) return true;  // GC after GC, Skip after Skip
  if (s.content_kind != h.content_kind || !Joinable(s.content_kind)) return false;
  if (!s.has_origin || !(s.origin == Id{h.id.client, s.id.clock - 1})) return false;
  if (s.has_right_origin != h.has_right_origin) return false;
  return !s.has_right_origin || s.right_origin == h.right_origin;
}

// Whether the delete set (merged: per client, sorted disjoint ranges) covers all of `s`.
bool Deleted(const DeleteSet& ds, const Struct& s) {
  for (const DeleteSetClient& c : ds) {
    if (c.client != s.id.client) continue;
    auto it =
        std::upper_bound(c.ranges.begin(), c.ranges.end(), s.id.clock,
                         [](uint64_t clock, const DeleteRange& r) { return clock < r.clock; });
    if (it == c.ranges.begin()) return false;
    --it;
    return it->clock <= s.id.clock && s.end() <= it->clock + it->len;
  }
  return false;
}

struct Canonical {
  std::vector<Run> runs;  // client descending, clock ascending
  DeleteSet delete_set;   // merged
  StateVector state_vector;
};

Result<Canonical> Canonicalize(ByteView update) {
  auto decoded = DecodeUpdate(update);
  if (!decoded.ok()) return decoded.status();
  std::vector<Struct>& structs = decoded->structs;
  std::stable_sort(structs.begin(), structs.end(), [](const Struct& a, const Struct& b) {
    if (a.id.client != b.id.client) return a.id.client > b.id.client;
    return a.id.clock < b.id.clock;
  });
  Canonical out;
  const DeleteSet sets[] = {std::move(decoded->delete_set)};
  out.delete_set = MergeDeleteSets(sets);
  for (Struct s : structs) {
    if (s.kind == StructKind::kItem && Deleted(out.delete_set, s)) {
      // Deleted content is not part of the document: yjs keeps a GC or the deleted Item there
      // depending on merge order (SPEC.md section 6). Compare only its range.
      Struct gc;
      gc.id = s.id;
      gc.length = s.length;
      s = gc;
    }
    auto payload = Payload(s);
    if (!payload.ok()) return payload.status();
    if (!out.runs.empty() && Continues(out.runs.back(), s)) {
      out.runs.back().length += s.length;
      out.runs.back().payload += *payload;
      continue;
    }
    out.runs.push_back(Run{s, s.length, std::move(*payload)});
  }
  auto sv = StateVectorFromUpdate(update);
  if (!sv.ok()) return sv.status();
  auto decoded_sv = DecodeStateVector(*sv);
  if (!decoded_sv.ok()) return decoded_sv.status();
  out.state_vector = std::move(*decoded_sv);
  return out;
}

std::string IdText(Id id) {
  return "(" + std::to_string(id.client) + "," + std::to_string(id.clock) + ")";
}

// Empty when equal, else what differs first.
std::string CompareRuns(const Run& a, const Run& b) {
  const Struct& x = a.head;
  const Struct& y = b.head;
  const std::string at = "struct " + IdText(x.id) + ": ";
  if (!(x.id == y.id)) return "struct " + IdText(x.id) + " vs " + IdText(y.id);
  if (a.length != b.length) {
    return at + "length " + std::to_string(a.length) + " vs " + std::to_string(b.length);
  }
  if (x.kind != y.kind || x.content_kind != y.content_kind) {
    return at + "kind " + std::string(ContentKindName(x.content_kind)) + " vs " +
           std::string(ContentKindName(y.content_kind));
  }
  if (x.has_origin != y.has_origin || (x.has_origin && !(x.origin == y.origin))) {
    return at + "origin differs";
  }
  if (x.has_right_origin != y.has_right_origin ||
      (x.has_right_origin && !(x.right_origin == y.right_origin))) {
    return at + "right origin differs";
  }
  if (x.parent_kind != y.parent_kind || x.parent_root != y.parent_root ||
      (x.parent_kind == ParentKind::kItem && !(x.parent_item == y.parent_item)) ||
      x.has_parent_sub != y.has_parent_sub || x.parent_sub != y.parent_sub) {
    return at + "parent differs";
  }
  if (a.payload != b.payload) return at + "content differs";
  return {};
}

}  // namespace

Result<bool> SameDocument(ByteView a, ByteView b, std::string* difference) {
  auto ca = Canonicalize(a);
  if (!ca.ok()) return ca.status();
  auto cb = Canonicalize(b);
  if (!cb.ok()) return cb.status();
  std::string diff;
  if (ca->state_vector != cb->state_vector) {
    diff = "state vectors differ";
    for (const auto& [client, clock] : ca->state_vector) {
      auto it = cb->state_vector.find(client);
      uint64_t other = it == cb->state_vector.end() ? 0 : it->second;
      if (other != clock) {
        diff += ": client " + std::to_string(client) + " at " + std::to_string(clock) + " vs " +
                std::to_string(other);
        break;
      }
    }
  } else if (ca->delete_set != cb->delete_set) {
    diff = "delete sets differ";
  } else {
    const size_t n = std::min(ca->runs.size(), cb->runs.size());
    for (size_t i = 0; i < n && diff.empty(); ++i) diff = CompareRuns(ca->runs[i], cb->runs[i]);
    if (diff.empty() && ca->runs.size() != cb->runs.size()) {
      diff = "struct counts differ (" + std::to_string(ca->runs.size()) + " vs " +
             std::to_string(cb->runs.size()) + " joined runs)";
    }
  }
  if (difference) *difference = diff;
  return diff.empty();
}

}  // namespace quire::yjs
