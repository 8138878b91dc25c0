// Structured logging: one JSON object per line on stderr, with `ts`, `level`, `event` and
// whatever fields the call site adds.
//
//   QUIRE_LOG(logger, kInfo, "storage_opened").Str("mode", "sqlite").Int("seq", 7);
//
// The line is written when the temporary LogLine is destroyed. Thread-safe: each line is one
// write(2) call.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/config.h"

namespace quire {

class Logger {
 public:
  explicit Logger(LogLevel level = LogLevel::kInfo, int fd = 2) : level_(level), fd_(fd) {}
  bool Enabled(LogLevel level) const { return level >= level_; }
  void set_level(LogLevel level) { level_ = level; }
  void Write(std::string_view line) const;

 private:
  LogLevel level_;
  int fd_;
};

// Appends `s` as a JSON string literal (with quotes) to `out`. The result is always valid JSON:
// bytes of `s` that are not well-formed UTF-8 become U+FFFD, one per byte.
void AppendJsonString(std::string& out, std::string_view s);

class LogLine {
 public:
  LogLine(const Logger* logger, LogLevel level, std::string_view event);
  ~LogLine();
  LogLine(const LogLine&) = delete;
  LogLine& operator=(const LogLine&) = delete;

  LogLine& Str(std::string_view key, std::string_view value);
  LogLine& Int(std::string_view key, int64_t value);
  LogLine& Double(std::string_view key, double value);
  LogLine& Bool(std::string_view key, bool value);

 private:
  const Logger* logger_;  // nullptr when the level is disabled
  std::string line_;
};

}  // namespace quire

#define QUIRE_LOG(logger, level, event) ::quire::LogLine(&(logger), ::quire::LogLevel::level, (event))
