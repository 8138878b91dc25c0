#include "core/base64.h"

#include <array>

namespace quire {
namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

constexpr std::array<int8_t, 256> MakeDecodeTable() {
  std::array<int8_t, 256> t{};
  for (auto& v : t) v = -1;
  for (int i = 0; i < 64; ++i) t[static_cast<uint8_t>(kAlphabet[i])] = static_cast<int8_t>(i);
  return t;
}
constexpr auto kDecode = MakeDecodeTable();

}  // namespace

void AppendBase64(std::string& out, ByteView bytes) {
  size_t start = out.size();
  out.resize(start + (bytes.size() + 2) / 3 * 4);
  char* o = out.data() + start;
  const uint8_t* in = bytes.data();
  size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3, o += 4) {
    uint32_t v = (uint32_t{in[i]} << 16) | (uint32_t{in[i + 1]} << 8) | in[i + 2];
    o[0] = kAlphabet[(v >> 18) & 63];
    o[1] = kAlphabet[(v >> 12) & 63];
    o[2] = kAlphabet[(v >> 6) & 63];
    o[3] = kAlphabet[v & 63];
  }
  size_t rest = bytes.size() - i;
  if (rest == 0) return;
  uint32_t v = uint32_t{in[i]} << 16;
  if (rest == 2) v |= uint32_t{in[i + 1]} << 8;
  o[0] = kAlphabet[(v >> 18) & 63];
  o[1] = kAlphabet[(v >> 12) & 63];
  o[2] = rest == 2 ? kAlphabet[(v >> 6) & 63] : '=';
  o[3] = '=';
}

std::string Base64Encode(ByteView bytes) {
  std::string out;
  AppendBase64(out, bytes);
  return out;
}

Result<Bytes> Base64Decode(std::string_view text) {
  if (text.size() % 4 != 0) return Status::InvalidArgument("base64 length is not a multiple of 4");
  if (text.empty()) return Bytes();
  int pad = text[text.size() - 1] == '=' ? (text[text.size() - 2] == '=' ? 2 : 1) : 0;
  Bytes out(text.size() / 4 * 3 - static_cast<size_t>(pad));
  uint8_t* o = out.data();
  auto digit = [&](size_t at) { return kDecode[static_cast<uint8_t>(text[at])]; };
  // Every quad but the last has no padding: four digits, any of them invalid shows as a
  // negative value in the OR.
  size_t full_end = text.size() - 4;
  for (size_t i = 0; i < full_end; i += 4, o += 3) {
    int8_t a = digit(i), b = digit(i + 1), c = digit(i + 2), d = digit(i + 3);
    if ((a | b | c | d) < 0) return Status::InvalidArgument("invalid base64 character");
    uint32_t v = (static_cast<uint32_t>(a) << 18) | (static_cast<uint32_t>(b) << 12) |
                 (static_cast<uint32_t>(c) << 6) | static_cast<uint32_t>(d);
    o[0] = static_cast<uint8_t>(v >> 16);
    o[1] = static_cast<uint8_t>(v >> 8);
    o[2] = static_cast<uint8_t>(v);
  }
  uint32_t v = 0;
  for (int k = 0; k < 4; ++k) {
    if (k >= 4 - pad) {
      v <<= 6;
      continue;
    }
    int8_t d = digit(full_end + static_cast<size_t>(k));
    if (d < 0) return Status::InvalidArgument("invalid base64 character");
    v = (v << 6) | static_cast<uint32_t>(d);
  }
  o[0] = static_cast<uint8_t>(v >> 16);
  if (pad < 2) o[1] = static_cast<uint8_t>(v >> 8);
  if (pad < 1) o[2] = static_cast<uint8_t>(v);
  // Non-canonical trailing bits are rejected so that every byte string has one encoding.
  if ((pad == 1 && (v & 0xFF) != 0) || (pad == 2 && (v & 0xFFFF) != 0)) {
    return Status::InvalidArgument("non-canonical base64 padding bits");
  }
  return out;
}

}  // namespace quire
