#include "core/log.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <ctime>

namespace quire {

void Logger::Write(std::string_view line) const {
  const char* p = line.data();
  size_t left = line.size();
  while (left > 0) {
    ssize_t n = ::write(fd_, p, left);
    if (n <= 0) return;  // logging never fails the caller
    p += n;
    left -= static_cast<size_t>(n);
  }
}

namespace {

// Length of the well-formed UTF-8 sequence starting at s[i], or 0 when the bytes there are not
// one (a stray continuation byte, a truncated sequence, an overlong form, a surrogate, a value
// above U+10FFFF).
size_t Utf8SequenceLength(std::string_view s, size_t i) {
  auto b = static_cast<unsigned char>(s[i]);
  size_t len;
  uint32_t cp;
  if (b < 0x80) return 1;
  if ((b & 0xE0) == 0xC0) {
    len = 2;
    cp = b & 0x1F;
  } else if ((b & 0xF0) == 0xE0) {
    len = 3;
    cp = b & 0x0F;
  } else if ((b & 0xF8) == 0xF0) {
    len = 4;
    cp = b & 0x07;
  } else {
    return 0;
  }
  if (i + len > s.size()) return 0;
  for (size_t k = 1; k < len; ++k) {
    auto c = static_cast<unsigned char>(s[i + k]);
    if ((c & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (c & 0x3F);
  }
  static constexpr uint32_t kMin[5] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < kMin[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return len;
}

}  // namespace

void AppendJsonString(std::string& out, std::string_view s) {
  out += '"';
  for (size_t i = 0; i < s.size();) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      // JSON text is UTF-8 (RFC 8259): a byte that does not start a well-formed sequence
      // (client-supplied text quoted in an error, a path decoded from %ff) becomes U+FFFD.
      size_t len = Utf8SequenceLength(s, i);
      if (len == 0) {
        out += "\\ufffd";
        ++i;
      } else {
        out.append(s.substr(i, len));
        i += len;
      }
      continue;
    }
    ++i;
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
}

LogLine::LogLine(const Logger* logger, LogLevel level, std::string_view event)
    : logger_(logger != nullptr && logger->Enabled(level) ? logger : nullptr) {
  if (logger_ == nullptr) return;
  using namespace std::chrono;
  auto now = system_clock::now();
  std::time_t secs = system_clock::to_time_t(now);
  auto ms = duration_cast<milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char ts[96];
  std::snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
  line_.reserve(160);
  line_ += "{\"ts\":\"";
  line_ += ts;
  line_ += "\",\"level\":\"";
  line_ += LogLevelName(level);
  line_ += "\",\"event\":";
  AppendJsonString(line_, event);
}

LogLine::~LogLine() {
  if (logger_ == nullptr) return;
  line_ += "}\n";
  logger_->Write(line_);
}

LogLine& LogLine::Str(std::string_view key, std::string_view value) {
  if (logger_ == nullptr) return *this;
  line_ += ',';
  AppendJsonString(line_, key);
  line_ += ':';
  AppendJsonString(line_, value);
  return *this;
}

LogLine& LogLine::Int(std::string_view key, int64_t value) {
  if (logger_ == nullptr) return *this;
  line_ += ',';
  AppendJsonString(line_, key);
  line_ += ':';
  line_ += std::to_string(value);
  return *this;
}

LogLine& LogLine::Double(std::string_view key, double value) {
  if (logger_ == nullptr) return *this;
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", value);
  line_ += ',';
  AppendJsonString(line_, key);
  line_ += ':';
  line_ += buf;
  return *this;
}

LogLine& LogLine::Bool(std::string_view key, bool value) {
  if (logger_ == nullptr) return *this;
  line_ += ',';
  AppendJsonString(line_, key);
  line_ += value ? ":true" : ":false";
  return *this;
}

}  // namespace quire
