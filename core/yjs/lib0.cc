#include <bit>
#include <charconv>
#include <cmath>
#include <cstring>
#include <vector>

#include "core/base64.h"
#include "core/yjs/lib0_internal.h"

namespace quire::yjs::internal {

bool Reader::ReadLongVarUint(uint64_t* out) {
  uint64_t value = 0;
  for (int i = 0; i < 8; ++i) {
    if (pos_ >= data_.size()) return Fail("truncated");
    uint8_t b = data_[pos_++];
    value |= static_cast<uint64_t>(b & 0x7f) << (7 * i);
    if (b < 0x80) {
      if (i > 0 && b == 0) return Fail("overlong varUint");
      if (value > kMaxSafeInteger) return Fail("varUint above 2^53-1");
      *out = value;
      return true;
    }
  }
  return Fail("overlong varUint");
}

bool Reader::ReadVarInt(bool* negative, uint64_t* magnitude) {
  if (pos_ >= data_.size()) return Fail("truncated");
  uint8_t b = data_[pos_++];
  *negative = (b & 0x40) != 0;
  uint64_t value = b & 0x3f;
  int shift = 6;
  for (int i = 1; b >= 0x80; ++i) {
    if (i >= 8) return Fail("overlong varInt");
    if (pos_ >= data_.size()) return Fail("truncated");
    b = data_[pos_++];
    if (b == 0) return Fail("overlong varInt");
    value |= static_cast<uint64_t>(b & 0x7f) << shift;
    shift += 7;
  }
  if (value > kMaxSafeInteger) return Fail("varInt above 2^53-1");
  *magnitude = value;
  return true;
}

bool Reader::ReadVarString(std::string_view* out, uint64_t* utf16_units) {
  ByteView bytes;
  if (!ReadVarBytes(&bytes)) return false;
  uint64_t units = 0;
  std::string_view s = AsString(bytes);
  if (!ValidUtf8(s, &units)) return Fail("invalid UTF-8");
  *out = s;
  if (utf16_units) *utf16_units = units;
  return true;
}

bool Reader::ReadCount(uint64_t* out, size_t min_bytes) {
  if (!ReadVarUint(out)) return false;
  if (*out > remaining() / min_bytes) return Fail("count larger than the remaining bytes allow");
  return true;
}

Status Reader::ErrorStatus(std::string_view what) const {
  return Status::InvalidArgument("yjs: " + std::string(what) + ": " + error_ + " at byte " +
                                 std::to_string(pos_));
}

bool ValidUtf8(std::string_view s, uint64_t* utf16_units) {
  const auto* p = reinterpret_cast<const uint8_t*>(s.data());
  size_t n = s.size(), i = 0;
  uint64_t units = 0;
  while (i < n) {
    uint8_t c = p[i];
    if (c < 0x80) {
      ++i;
      ++units;
      continue;
    }
    size_t len;
    uint32_t cp;
    if (c >= 0xc2 && c <= 0xdf) {
      len = 2;
      cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
      len = 3;
      cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + len > n) return false;
    for (size_t k = 1; k < len; ++k) {
      uint8_t cc = p[i + k];
      if ((cc & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3f);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff))) return false;
    if (cp >= 0xd800 && cp <= 0xdfff) return false;
    units += cp >= 0x10000 ? 2 : 1;
    i += len;
  }
  *utf16_units = units;
  return true;
}

size_t Utf8OffsetOfUtf16Unit(std::string_view s, uint64_t unit, bool* splits_pair) {
  *splits_pair = false;
  const auto* p = reinterpret_cast<const uint8_t*>(s.data());
  size_t i = 0;
  uint64_t units = 0;
  while (i < s.size() && units < unit) {
    uint8_t c = p[i];
    size_t len = c < 0x80 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
    units += len == 4 ? 2 : 1;
    i += len;
  }
  if (units > unit) *splits_pair = true;
  return i;
}

namespace {

bool IsJsonSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsHex(char c) { return IsDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

class JsonChecker {
 public:
  explicit JsonChecker(std::string_view t) : t_(t) {}

  bool Check() {
    // Each iteration parses one value, then closes containers and consumes separators.
    while (true) {
      SkipSpace();
      if (i_ >= t_.size()) return false;
      char c = t_[i_];
      if (c == '{' || c == '[') {
        ++i_;
        SkipSpace();
        if (i_ < t_.size() && t_[i_] == (c == '{' ? '}' : ']')) {
          ++i_;
        } else {
          stack_.push_back(c);
          if (c == '{' && !Key()) return false;
          continue;
        }
      } else if (c == '"') {
        if (!String()) return false;
      } else if (c == '-' || IsDigit(c)) {
        if (!Number()) return false;
      } else if (!Literal("true") && !Literal("false") && !Literal("null")) {
        return false;
      }
      // After a value: close containers or take the next element.
      while (true) {
        SkipSpace();
        if (stack_.empty()) return i_ == t_.size();
        if (i_ >= t_.size()) return false;
        char top = stack_.back();
        char d = t_[i_];
        if (d == ',') {
          ++i_;
          if (top == '{' && !Key()) return false;
          break;
        }
        if (d == (top == '{' ? '}' : ']')) {
          ++i_;
          stack_.pop_back();
          continue;
        }
        return false;
      }
    }
  }

 private:
  void SkipSpace() {
    while (i_ < t_.size() && IsJsonSpace(t_[i_])) ++i_;
  }
  // An object key and its colon.
  bool Key() {
    SkipSpace();
    if (i_ >= t_.size() || t_[i_] != '"' || !String()) return false;
    SkipSpace();
    if (i_ >= t_.size() || t_[i_] != ':') return false;
    ++i_;
    return true;
  }
  bool String() {
    ++i_;  // opening quote
    while (i_ < t_.size()) {
      auto c = static_cast<unsigned char>(t_[i_]);
      if (c == '"') {
        ++i_;
        return true;
      }
      if (c < 0x20) return false;
      if (c == '\\') {
        if (++i_ >= t_.size()) return false;
        char e = t_[i_];
        if (e == 'u') {
          if (i_ + 4 >= t_.size()) return false;
          for (int k = 1; k <= 4; ++k) {
            if (!IsHex(t_[i_ + k])) return false;
          }
          i_ += 5;
          continue;
        }
        if (std::strchr("\"\\/bfnrt", e) == nullptr || e == '\0') return false;
      }
      ++i_;
    }
    return false;
  }
  bool Number() {
    if (t_[i_] == '-') ++i_;
    if (i_ >= t_.size()) return false;
    if (t_[i_] == '0') {
      ++i_;
    } else if (IsDigit(t_[i_])) {
      while (i_ < t_.size() && IsDigit(t_[i_])) ++i_;
    } else {
      return false;
    }
    if (i_ < t_.size() && t_[i_] == '.') {
      ++i_;
      if (i_ >= t_.size() || !IsDigit(t_[i_])) return false;
      while (i_ < t_.size() && IsDigit(t_[i_])) ++i_;
    }
    if (i_ < t_.size() && (t_[i_] == 'e' || t_[i_] == 'E')) {
      ++i_;
      if (i_ < t_.size() && (t_[i_] == '+' || t_[i_] == '-')) ++i_;
      if (i_ >= t_.size() || !IsDigit(t_[i_])) return false;
      while (i_ < t_.size() && IsDigit(t_[i_])) ++i_;
    }
    return true;
  }
  bool Literal(std::string_view word) {
    if (t_.substr(i_, word.size()) != word) return false;
    i_ += word.size();
    return true;
  }

  std::string_view t_;
  size_t i_ = 0;
  std::vector<char> stack_;
};

void AppendNumber(std::string* out, double d) {
  if (std::isnan(d)) {
    *out += R"({"$float":"NaN"})";
  } else if (std::isinf(d)) {
    *out += d > 0 ? R"({"$float":"Infinity"})" : R"({"$float":"-Infinity"})";
  } else if (d == 0 && std::signbit(d)) {
    *out += R"({"$float":"-0"})";
  } else {
    char buf[64];
    auto res = std::to_chars(buf, buf + sizeof(buf), d);
    out->append(buf, res.ptr);
  }
}

uint64_t ReadBigEndian(ByteView b) {
  uint64_t v = 0;
  for (uint8_t x : b) v = (v << 8) | x;
  return v;
}

}  // namespace

bool ValidJson(std::string_view text) { return JsonChecker(text).Check(); }

bool ReadAnys(Reader& r, uint64_t count, std::string* json) {
  struct Frame {
    uint64_t remaining;
    bool object;
    bool first;
  };
  std::vector<Frame> stack;
  stack.push_back({count, false, true});
  while (!stack.empty()) {
    Frame& f = stack.back();
    if (f.remaining == 0) {
      bool object = f.object;
      stack.pop_back();
      if (json && !stack.empty()) json->push_back(object ? '}' : ']');
      continue;
    }
    --f.remaining;
    if (json && !f.first) json->push_back(',');
    f.first = false;
    if (f.object) {
      std::string_view key;
      if (!r.ReadVarString(&key)) return false;
      if (json) {
        AppendJsonString(json, key);
        json->push_back(':');
      }
    }
    uint8_t tag;
    if (!r.ReadU8(&tag)) return false;
    switch (tag) {
      case 127:
        if (json) *json += R"({"$undefined":true})";
        break;
      case 126:
        if (json) *json += "null";
        break;
      case 125: {
        bool negative;
        uint64_t magnitude;
        if (!r.ReadVarInt(&negative, &magnitude)) return false;
        if (json) {
          if (negative && magnitude == 0) {
            *json += R"({"$float":"-0"})";
          } else {
            if (negative) json->push_back('-');
            *json += std::to_string(magnitude);
          }
        }
        break;
      }
      case 124: {
        ByteView b;
        if (!r.ReadBytes(4, &b)) return false;
        if (json) {
          auto bits = static_cast<uint32_t>(ReadBigEndian(b));
          AppendNumber(json, static_cast<double>(std::bit_cast<float>(bits)));
        }
        break;
      }
      case 123: {
        ByteView b;
        if (!r.ReadBytes(8, &b)) return false;
        if (json) AppendNumber(json, std::bit_cast<double>(ReadBigEndian(b)));
        break;
      }
      case 122: {
        ByteView b;
        if (!r.ReadBytes(8, &b)) return false;
        if (json) {
          *json += R"({"$bigint":")";
          *json += std::to_string(static_cast<int64_t>(ReadBigEndian(b)));
          *json += "\"}";
        }
        break;
      }
      case 121:
        if (json) *json += "false";
        break;
      case 120:
        if (json) *json += "true";
        break;
      case 119: {
        std::string_view s;
        if (!r.ReadVarString(&s)) return false;
        if (json) AppendJsonString(json, s);
        break;
      }
      case 118: {
        uint64_t n;
        if (!r.ReadCount(&n, 2)) return false;
        if (json) json->push_back('{');
        stack.push_back({n, true, true});
        break;
      }
      case 117: {
        uint64_t n;
        if (!r.ReadCount(&n, 1)) return false;
        if (json) json->push_back('[');
        stack.push_back({n, false, true});
        break;
      }
      case 116: {
        ByteView b;
        if (!r.ReadVarBytes(&b)) return false;
        if (json) {
          *json += R"({"$bytes":")";
          *json += Base64Encode(b);
          *json += "\"}";
        }
        break;
      }
      default:
        return r.Fail("unknown any tag");
    }
  }
  return true;
}

void PutU8(Bytes* out, uint8_t v) { out->push_back(v); }

void PutVarUint(Bytes* out, uint64_t v) {
  while (v >= 0x80) {
    out->push_back(static_cast<uint8_t>(0x80 | (v & 0x7f)));
    v >>= 7;
  }
  out->push_back(static_cast<uint8_t>(v));
}

void PutBytes(Bytes* out, ByteView b) { out->insert(out->end(), b.begin(), b.end()); }

void PutVarBytes(Bytes* out, ByteView b) {
  PutVarUint(out, b.size());
  PutBytes(out, b);
}

void PutVarString(Bytes* out, std::string_view s) { PutVarBytes(out, AsBytes(s)); }

void AppendJsonString(std::string* out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out->push_back('"');
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"':
        *out += "\\\"";
        break;
      case '\\':
        *out += "\\\\";
        break;
      case '\n':
        *out += "\\n";
        break;
      case '\r':
        *out += "\\r";
        break;
      case '\t':
        *out += "\\t";
        break;
      default:
        if (c < 0x20) {
          *out += "\\u00";
          out->push_back(kHex[c >> 4]);
          out->push_back(kHex[c & 15]);
        } else {
          out->push_back(ch);
        }
    }
  }
  out->push_back('"');
}

}  // namespace quire::yjs::internal
