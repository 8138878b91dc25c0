// lib0 binary primitives (varUint, varInt, varString, any) as the Yjs update format uses them,
// plus a strict JSON syntax check. Internal to core/yjs; see core/yjs/SPEC.md section 1.
//
// Every read is bounded by the bytes that remain: a failed read returns false and records why,
// so callers turn it into one Status with the byte offset. Nothing here allocates in proportion
// to a count read from the input before the bytes backing that count have been seen.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/status.h"
#include "core/types.h"

namespace quire::yjs::internal {

// lib0 reads integers as JavaScript numbers; larger values are rejected.
inline constexpr uint64_t kMaxSafeInteger = (uint64_t{1} << 53) - 1;

class Reader {
 public:
  explicit Reader(ByteView data) : data_(data) {}

  size_t pos() const { return pos_; }
  size_t remaining() const { return data_.size() - pos_; }
  bool AtEnd() const { return pos_ == data_.size(); }
  ByteView data() const { return data_; }
  ByteView Span(size_t from, size_t to) const { return data_.subspan(from, to - from); }

  // Inline, with the one-byte varUint and the byte reads: the update reader calls them for
  // nearly every byte.
  bool ReadU8(uint8_t* out) {
    if (pos_ >= data_.size()) return Fail("truncated");
    *out = data_[pos_++];
    return true;
  }
  // Minimal encodings only, at most 2^53-1.
  bool ReadVarUint(uint64_t* out) {
    if (pos_ < data_.size() && data_[pos_] < 0x80) {
      *out = data_[pos_++];
      return true;
    }
    return ReadLongVarUint(out);
  }
  // lib0 varInt: sign bit in the first byte, magnitude at most 2^53-1.
  bool ReadVarInt(bool* negative, uint64_t* magnitude);
  bool ReadBytes(size_t n, ByteView* out) {
    if (n > remaining()) return Fail("length past the end of the buffer");
    *out = data_.subspan(pos_, n);
    pos_ += n;
    return true;
  }
  bool ReadVarBytes(ByteView* out) {
    uint64_t n;
    if (!ReadVarUint(&n)) return false;
    if (n > remaining()) return Fail("length past the end of the buffer");
    return ReadBytes(static_cast<size_t>(n), out);
  }
  // A varString whose bytes are strict UTF-8. `utf16_units` (optional) receives its length in
  // UTF-16 code units.
  bool ReadVarString(std::string_view* out, uint64_t* utf16_units = nullptr);
  // A count of elements that each take at least `min_bytes` bytes: rejects counts that the
  // remaining bytes cannot hold.
  bool ReadCount(uint64_t* out, size_t min_bytes = 1);

  // The reason of the last failed read ("truncated", "overlong varUint", ...).
  std::string_view error() const { return error_; }
  bool Fail(const char* why) {
    error_ = why;
    return false;
  }
  // InvalidArgument "yjs: <what>: <reason> at byte <pos>".
  Status ErrorStatus(std::string_view what) const;

 private:
  bool ReadLongVarUint(uint64_t* out);  // ReadVarUint past its one-byte case

  ByteView data_;
  size_t pos_ = 0;
  const char* error_ = "no error";
};

// Strict UTF-8 (no overlongs, no surrogates, at most U+10FFFF). Counts UTF-16 code units.
bool ValidUtf8(std::string_view s, uint64_t* utf16_units);

// Byte offset in UTF-8 `s` of UTF-16 unit `unit`. Sets *splits_pair when `unit` falls between
// the two halves of a surrogate pair (the offset is then that of the following code point).
size_t Utf8OffsetOfUtf16Unit(std::string_view s, uint64_t unit, bool* splits_pair);

// JSON text as JavaScript's JSON.parse accepts it (RFC 8259 grammar). Iterative: nesting depth
// is limited only by the input length.
bool ValidJson(std::string_view text);

// Reads `count` lib0 `any` values. When `json` is not null, appends each value rendered as JSON
// (comma-separated; undefined, bigint, bytes and non-finite floats as {"$undefined":true},
// {"$bigint":"..."}, {"$bytes":"<base64>"}, {"$float":"NaN"}). Iterative.
bool ReadAnys(Reader& r, uint64_t count, std::string* json);

void PutU8(Bytes* out, uint8_t v);
void PutVarUint(Bytes* out, uint64_t v);
void PutBytes(Bytes* out, ByteView b);
void PutVarBytes(Bytes* out, ByteView b);
void PutVarString(Bytes* out, std::string_view s);

// Appends `s` (UTF-8) as a quoted JSON string.
void AppendJsonString(std::string* out, std::string_view s);

}  // namespace quire::yjs::internal
