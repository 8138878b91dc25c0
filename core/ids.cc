#include "core/ids.h"

#include <chrono>
#include <cstdio>
#include <mutex>
#include <random>
#include <string_view>

namespace quire {

namespace {

std::string FormatUuid(uint64_t hi, uint64_t lo) {
  char buf[37];
  std::snprintf(buf, sizeof buf, "%08x-%04x-%04x-%04x-%012llx", static_cast<unsigned>(hi >> 32),
                static_cast<unsigned>((hi >> 16) & 0xFFFF), static_cast<unsigned>(hi & 0xFFFF),
                static_cast<unsigned>(lo >> 48),
                static_cast<unsigned long long>(lo & 0xFFFFFFFFFFFFULL));
  return buf;
}

constexpr uint64_t kVariantMask = 0x3FFFFFFFFFFFFFFFULL;
constexpr uint64_t kVariant10 = 0x8000000000000000ULL;

}  // namespace

std::string NewUuid() {
  static std::mutex mu;
  static std::mt19937_64 rng{std::random_device{}()};
  uint64_t hi, lo;
  {
    std::lock_guard<std::mutex> lock(mu);
    hi = rng();
    lo = rng();
  }
  hi = (hi & 0xFFFFFFFFFFFF0FFFULL) | 0x0000000000004000ULL;  // version 4
  lo = (lo & kVariantMask) | kVariant10;
  return FormatUuid(hi, lo);
}

std::string NewTimeOrderedUuid() {
  static std::mutex mu;
  static std::mt19937_64 rng{std::random_device{}()};
  static uint64_t last_ms = 0;
  static uint64_t counter = 0;
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  const auto now_ms =
      static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(now).count());
  uint64_t ms, seq, lo;
  {
    std::lock_guard<std::mutex> lock(mu);
    if (now_ms > last_ms) {
      last_ms = now_ms;
      counter = 0;
    } else if (++counter > 0xFFF) {  // same (or an earlier) millisecond: count on
      ++last_ms;
      counter = 0;
    }
    ms = last_ms & 0xFFFFFFFFFFFFULL;
    seq = counter;
    lo = rng();
  }
  const uint64_t hi = (ms << 16) | 0x7000 | seq;  // version 7
  return FormatUuid(hi, (lo & kVariantMask) | kVariant10);
}

int64_t TimeOrderedUuidMillis(const std::string& id) {
  if (id.size() != 36 || id[14] != '7' ||
      std::string_view("89ab").find(id[19]) == std::string_view::npos) {
    return -1;
  }
  int64_t ms = 0;
  int digits = 0;
  for (size_t i = 0; i < id.size(); ++i) {
    const char c = id[i];
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (c != '-') return -1;
      continue;
    }
    int v;
    if (c >= '0' && c <= '9') {
      v = c - '0';
    } else if (c >= 'a' && c <= 'f') {
      v = c - 'a' + 10;
    } else {
      return -1;
    }
    if (digits++ < 12) ms = ms * 16 + v;  // the first 48 bits
  }
  return ms;
}

}  // namespace quire
