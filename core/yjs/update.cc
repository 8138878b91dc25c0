// Decoding, validation and writing of v1 updates, state vectors and delete sets.
#include "core/yjs/update.h"

#include <algorithm>
#include <cassert>
#include <functional>

#include "core/yjs/update_internal.h"

namespace quire::yjs {

std::string_view ContentKindName(ContentKind kind) {
  switch (kind) {
    case ContentKind::kNone:
      return "None";
    case ContentKind::kDeleted:
      return "Deleted";
    case ContentKind::kJson:
      return "JSON";
    case ContentKind::kBinary:
      return "Binary";
    case ContentKind::kString:
      return "String";
    case ContentKind::kEmbed:
      return "Embed";
    case ContentKind::kFormat:
      return "Format";
    case ContentKind::kType:
      return "Type";
    case ContentKind::kAny:
      return "Any";
    case ContentKind::kDoc:
      return "Doc";
  }
  return "unknown";
}

namespace internal {

bool UpdateReader::ReadId(Id* id) {
  return r_.ReadVarUint(&id->client) && r_.ReadVarUint(&id->clock);
}

bool UpdateReader::ReadContent(uint8_t ref, Struct* s) {
  switch (static_cast<ContentKind>(ref)) {
    case ContentKind::kDeleted:
      return r_.ReadVarUint(&s->length);
    case ContentKind::kJson: {
      uint64_t n;
      if (!r_.ReadCount(&n)) return false;
      for (uint64_t i = 0; i < n; ++i) {
        std::string_view text;
        if (!r_.ReadVarString(&text)) return false;
        if (text != "undefined" && !ValidJson(text)) return r_.Fail("invalid JSON");
      }
      s->length = n;
      return true;
    }
    case ContentKind::kBinary: {
      ByteView b;
      s->length = 1;
      return r_.ReadVarBytes(&b);
    }
    case ContentKind::kString: {
      std::string_view str;
      return r_.ReadVarString(&str, &s->length);
    }
    case ContentKind::kEmbed: {
      std::string_view text;
      s->length = 1;
      if (!r_.ReadVarString(&text)) return false;
      return ValidJson(text) || r_.Fail("invalid JSON");
    }
    case ContentKind::kFormat: {
      std::string_view key, value;
      s->length = 1;
      if (!r_.ReadVarString(&key) || !r_.ReadVarString(&value)) return false;
      return ValidJson(value) || r_.Fail("invalid JSON");
    }
    case ContentKind::kType: {
      uint64_t type_ref;
      s->length = 1;
      if (!r_.ReadVarUint(&type_ref)) return false;
      if (type_ref > 6) return r_.Fail("unknown type ref");
      if (type_ref == 3 || type_ref == 5) {
        std::string_view name;
        return r_.ReadVarString(&name);
      }
      return true;
    }
    case ContentKind::kAny: {
      uint64_t n;
      if (!r_.ReadCount(&n)) return false;
      s->length = n;
      return ReadAnys(r_, n, nullptr);
    }
    case ContentKind::kDoc: {
      std::string_view guid;
      s->length = 1;
      if (!r_.ReadVarString(&guid)) return false;
      if (r_.AtEnd()) return r_.Fail("truncated");
      // yjs spreads the options into the subdocument's constructor: they must be an object.
      if (r_.data()[r_.pos()] != 118) return r_.Fail("subdocument options are not an object");
      return ReadAnys(r_, 1, nullptr);
    }
    case ContentKind::kNone:
      break;
  }
  return r_.Fail("unknown content ref");
}

bool UpdateReader::Next(Struct* s) {
  if (!status_.ok() || at_end_) return false;
  if (!started_) {
    started_ = true;
    if (!r_.ReadCount(&blocks_left_, 3)) return Error("client block count");
  }
  while (structs_left_ == 0) {
    if (blocks_left_ == 0) {
      at_end_ = true;
      return false;
    }
    --blocks_left_;
    uint64_t n, client, clock;
    if (!r_.ReadCount(&n, 2)) return Error("struct count");
    if (!r_.ReadVarUint(&client)) return Error("client id");
    if (!r_.ReadVarUint(&clock)) return Error("start clock");
    if (have_block_ &&
        !(client < block_client_ || (client == block_client_ && clock >= block_start_))) {
      blocks_in_merge_order_ = false;
    }
    have_block_ = true;
    block_client_ = client;
    block_start_ = clock;
    structs_left_ = n;
    client_ = client;
    clock_ = clock;
  }
  --structs_left_;
  const size_t begin = r_.pos();
  bool canonical = true;  // writing the fields gives these bytes back (see Struct::raw)
  uint8_t info;
  if (!r_.ReadU8(&info)) return Error("struct info");
  *s = Struct{};
  s->id = {client_, clock_};
  const uint8_t ref = info & 0x1f;
  if (ref == 0 || ref == 10) {
    s->kind = ref == 0 ? StructKind::kGc : StructKind::kSkip;
    if (!r_.ReadVarUint(&s->length)) return Error("struct length");
  } else if (ref <= 9) {
    s->kind = StructKind::kItem;
    s->content_kind = static_cast<ContentKind>(ref);
    if (info & 0x80) {
      s->has_origin = true;
      if (!ReadId(&s->origin)) return Error("origin");
    }
    if (info & 0x40) {
      s->has_right_origin = true;
      if (!ReadId(&s->right_origin)) return Error("right origin");
    }
    if ((info & 0xc0) == 0) {
      uint64_t parent_info;
      if (!r_.ReadVarUint(&parent_info)) return Error("parent info");
      canonical = parent_info <= 1;  // yjs reads any other value as 0, and writes 0
      if (parent_info == 1) {
        s->parent_kind = ParentKind::kRoot;
        if (!r_.ReadVarString(&s->parent_root)) return Error("parent type name");
      } else {
        s->parent_kind = ParentKind::kItem;
        if (!ReadId(&s->parent_item)) return Error("parent id");
      }
      if (info & 0x20) {
        s->has_parent_sub = true;
        if (!r_.ReadVarString(&s->parent_sub)) return Error("parent sub");
      }
    }
    const size_t start = r_.pos();
    if (!ReadContent(ref, s))
      return Error(std::string(ContentKindName(s->content_kind)) + " content");
    s->content = r_.Span(start, r_.pos());
  } else {
    r_.Fail("unknown struct ref");
    return Error("struct info");
  }
  if (s->length == 0) {
    r_.Fail("zero-length struct");
    return Error("struct");
  }
  if (s->length > kMaxSafeInteger - clock_) {
    r_.Fail("clock above 2^53-1");
    return Error("struct");
  }
  clock_ += s->length;
  if (canonical && InfoByte(*s) == info) s->raw = r_.Span(begin, r_.pos());
  return true;
}

Status UpdateReader::ReadDeleteSet(DeleteSet* ds) {
  if (!status_.ok()) return status_;
  if (!at_end_) return Status::Internal("yjs: delete set read before the structs");
  ds->clear();
  uint64_t n;
  if (!r_.ReadCount(&n, 2)) return r_.ErrorStatus("delete set client count");
  std::map<uint64_t, size_t> index;
  for (uint64_t i = 0; i < n; ++i) {
    uint64_t client, ranges;
    if (!r_.ReadVarUint(&client)) return r_.ErrorStatus("delete set client");
    if (!r_.ReadCount(&ranges, 2)) return r_.ErrorStatus("delete set range count");
    if (ranges == 0) continue;
    auto [it, inserted] = index.try_emplace(client, ds->size());
    if (inserted) ds->push_back({client, {}});
    auto& out = (*ds)[it->second].ranges;
    out.reserve(out.size() + ranges);
    for (uint64_t k = 0; k < ranges; ++k) {
      DeleteRange range;
      if (!r_.ReadVarUint(&range.clock) || !r_.ReadVarUint(&range.len)) {
        return r_.ErrorStatus("delete set range");
      }
      if (range.len > kMaxSafeInteger - range.clock) {
        r_.Fail("clock above 2^53-1");
        return r_.ErrorStatus("delete set range");
      }
      out.push_back(range);
    }
  }
  if (!r_.AtEnd()) {
    r_.Fail("unexpected bytes");
    return r_.ErrorStatus("after the delete set");
  }
  return Status::Ok();
}

Result<Struct> SliceStruct(const Struct& s, uint64_t offset, Arena* arena) {
  if (offset == 0 || offset >= s.length) return Status::Internal("yjs: slice offset out of range");
  Struct out = s;
  out.raw = {};
  out.id.clock += offset;
  out.length -= offset;
  if (s.kind != StructKind::kItem) return out;
  out.has_origin = true;
  out.origin = {s.id.client, s.id.clock + offset - 1};
  Reader r(s.content);
  Bytes content;
  switch (s.content_kind) {
    case ContentKind::kDeleted:
      PutVarUint(&content, out.length);
      break;
    case ContentKind::kJson:
    case ContentKind::kAny: {
      uint64_t n;
      bool ok = r.ReadVarUint(&n);
      if (s.content_kind == ContentKind::kJson) {
        for (uint64_t i = 0; ok && i < offset; ++i) {
          ByteView skipped;
          ok = r.ReadVarBytes(&skipped);
        }
      } else {
        ok = ok && ReadAnys(r, offset, nullptr);
      }
      if (!ok || n != s.length) return Status::Internal("yjs: cannot slice content");
      PutVarUint(&content, n - offset);
      PutBytes(&content, r.data().subspan(r.pos()));
      break;
    }
    case ContentKind::kString: {
      std::string_view str;
      if (!r.ReadVarString(&str)) return Status::Internal("yjs: cannot slice string");
      bool splits_pair;
      size_t at = Utf8OffsetOfUtf16Unit(str, offset, &splits_pair);
      std::string_view tail = str.substr(at);
      if (splits_pair) {
        // The right half of a broken surrogate pair becomes U+FFFD (one UTF-16 unit).
        std::string fixed = "\xef\xbf\xbd";
        fixed.append(tail);
        PutVarString(&content, fixed);
      } else {
        PutVarString(&content, tail);
      }
      break;
    }
    default:
      return Status::Internal("yjs: content of length 1 cannot be sliced");
  }
  out.content = arena->Keep(std::move(content));
  return out;
}

uint8_t InfoByte(const Struct& s) {
  if (s.kind != StructKind::kItem) return static_cast<uint8_t>(s.kind);
  uint8_t info = static_cast<uint8_t>(s.content_kind);
  if (s.has_origin) info |= 0x80;
  if (s.has_right_origin) info |= 0x40;
  if (s.has_parent_sub) info |= 0x20;
  return info;
}

void WriteStruct(const Struct& s, Bytes* out) {
  if (!s.raw.empty()) {
#ifndef NDEBUG
    Struct fields = s;
    fields.raw = {};
    thread_local Bytes written;  // reused: Debug builds run every merge of the tests through this
    written.clear();
    WriteStruct(fields, &written);
    assert(std::equal(written.begin(), written.end(), s.raw.begin(), s.raw.end()) &&
           "a struct changed without clearing its raw bytes");
#endif
    PutBytes(out, s.raw);
    return;
  }
  PutU8(out, InfoByte(s));
  if (s.kind != StructKind::kItem) {
    PutVarUint(out, s.length);
    return;
  }
  if (s.has_origin) {
    PutVarUint(out, s.origin.client);
    PutVarUint(out, s.origin.clock);
  }
  if (s.has_right_origin) {
    PutVarUint(out, s.right_origin.client);
    PutVarUint(out, s.right_origin.clock);
  }
  if (!s.has_origin && !s.has_right_origin) {
    if (s.parent_kind == ParentKind::kRoot) {
      PutVarUint(out, 1);
      PutVarString(out, s.parent_root);
    } else {
      PutVarUint(out, 0);
      PutVarUint(out, s.parent_item.client);
      PutVarUint(out, s.parent_item.clock);
    }
    if (s.has_parent_sub) PutVarString(out, s.parent_sub);
  }
  PutBytes(out, s.content);
}

namespace {
constexpr size_t kCountSlot = 8;  // a varUint of at most 2^53-1 takes 8 bytes

// Writes `v` as a minimal varUint at out[at], in a slot of kCountSlot bytes, and closes the
// slot up (moves what follows it left). O(bytes after the slot).
void CloseSlot(Bytes* out, size_t at, uint64_t v) {
  uint8_t tmp[kCountSlot];
  size_t n = 0;
  while (v >= 0x80) {
    tmp[n++] = static_cast<uint8_t>(v | 0x80);
    v >>= 7;
  }
  tmp[n++] = static_cast<uint8_t>(v);
  std::copy(tmp, tmp + n, out->begin() + static_cast<ptrdiff_t>(at));
  out->erase(out->begin() + static_cast<ptrdiff_t>(at + n),
             out->begin() + static_cast<ptrdiff_t>(at + kCountSlot));
}
}  // namespace

UpdateWriter::UpdateWriter() { out_.resize(kCountSlot); }

void UpdateWriter::CloseBlock() {
  if (!open_) return;
  CloseSlot(&out_, block_begin_, block_count_);
  open_ = false;
}

void UpdateWriter::Emit(const Struct& s) {
  // A block's clocks are implicit, so a struct that does not continue the open block (which
  // yjs never asks for) starts a new one.
  if (!open_ || block_client_ != s.id.client || next_clock_ != s.id.clock) {
    CloseBlock();
    open_ = true;
    ++blocks_;
    block_begin_ = out_.size();
    block_count_ = 0;
    block_client_ = s.id.client;
    out_.resize(out_.size() + kCountSlot);
    PutVarUint(&out_, s.id.client);
    PutVarUint(&out_, s.id.clock);
  }
  WriteStruct(s, &out_);
  ++block_count_;
  next_clock_ = s.end();
}

Bytes UpdateWriter::Finish(const DeleteSet& ds) {
  CloseBlock();
  CloseSlot(&out_, 0, blocks_);
  EncodeDeleteSet(ds, &out_);
  return std::move(out_);
}

}  // namespace internal

Result<Update> DecodeUpdate(ByteView update) {
  internal::UpdateReader reader(update);
  Update out;
  Struct s;
  while (reader.Next(&s)) out.structs.push_back(s);
  QUIRE_RETURN_IF_ERROR(reader.status());
  QUIRE_RETURN_IF_ERROR(reader.ReadDeleteSet(&out.delete_set));
  return out;
}

Status ValidateUpdate(ByteView update) {
  internal::UpdateReader reader(update);
  Struct s;
  while (reader.Next(&s)) {
  }
  QUIRE_RETURN_IF_ERROR(reader.status());
  DeleteSet ds;
  return reader.ReadDeleteSet(&ds);
}

Bytes EncodeStateVector(const StateVector& sv) {
  Bytes out;
  internal::PutVarUint(&out, sv.size());
  for (auto it = sv.rbegin(); it != sv.rend(); ++it) {
    internal::PutVarUint(&out, it->first);
    internal::PutVarUint(&out, it->second);
  }
  return out;
}

Result<StateVector> DecodeStateVector(ByteView bytes) {
  internal::Reader r(bytes);
  uint64_t n;
  if (!r.ReadCount(&n, 2)) return r.ErrorStatus("state vector count");
  StateVector sv;
  for (uint64_t i = 0; i < n; ++i) {
    uint64_t client, clock;
    if (!r.ReadVarUint(&client) || !r.ReadVarUint(&clock)) return r.ErrorStatus("state vector");
    sv[client] = clock;
  }
  if (!r.AtEnd()) {
    r.Fail("unexpected bytes");
    return r.ErrorStatus("after the state vector");
  }
  return sv;
}

DeleteSet MergeDeleteSets(std::span<const DeleteSet> sets) {
  std::map<uint64_t, std::vector<DeleteRange>, std::greater<>> by_client;
  for (const DeleteSet& ds : sets) {
    for (const DeleteSetClient& c : ds) {
      auto& ranges = by_client[c.client];
      ranges.insert(ranges.end(), c.ranges.begin(), c.ranges.end());
    }
  }
  DeleteSet out;
  out.reserve(by_client.size());
  for (auto& [client, ranges] : by_client) {
    if (ranges.empty()) continue;
    std::stable_sort(ranges.begin(), ranges.end(),
                     [](const DeleteRange& a, const DeleteRange& b) { return a.clock < b.clock; });
    std::vector<DeleteRange> joined;
    joined.push_back(ranges.front());
    for (size_t i = 1; i < ranges.size(); ++i) {
      DeleteRange& last = joined.back();
      const DeleteRange& r = ranges[i];
      if (last.clock + last.len >= r.clock) {
        last.len = std::max(last.len, r.clock + r.len - last.clock);
      } else {
        joined.push_back(r);
      }
    }
    out.push_back({client, std::move(joined)});
  }
  return out;
}

void EncodeDeleteSet(const DeleteSet& ds, Bytes* out) {
  internal::PutVarUint(out, ds.size());
  for (const DeleteSetClient& c : ds) {
    internal::PutVarUint(out, c.client);
    internal::PutVarUint(out, c.ranges.size());
    for (const DeleteRange& r : c.ranges) {
      internal::PutVarUint(out, r.clock);
      internal::PutVarUint(out, r.len);
    }
  }
}

}  // namespace quire::yjs
