// Time, injected: production code reads a Clock, tests advance a ManualClock.
#pragma once

#include <atomic>
#include <chrono>

#include "core/types.h"

namespace quire {

class Clock {
 public:
  virtual ~Clock() = default;
  // Wall-clock milliseconds since the Unix epoch (timestamps stored in events).
  virtual TimestampMs NowMs() const = 0;
  // Monotonic nanoseconds, for latency measurement and timeouts.
  virtual int64_t MonotonicNs() const = 0;
};

class SystemClock final : public Clock {
 public:
  TimestampMs NowMs() const override {
    using namespace std::chrono;
    return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
  }
  int64_t MonotonicNs() const override {
    using namespace std::chrono;
    return duration_cast<nanoseconds>(steady_clock::now().time_since_epoch()).count();
  }
  // A process-wide instance; it holds no state.
  static const SystemClock& Instance() {
    static const SystemClock clock;
    return clock;
  }
};

// A clock that moves only when told to. Thread-safe.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(TimestampMs start_ms = 1'700'000'000'000) : now_ms_(start_ms) {}
  TimestampMs NowMs() const override { return now_ms_.load(); }
  int64_t MonotonicNs() const override { return now_ms_.load() * 1'000'000; }
  void AdvanceMs(int64_t ms) { now_ms_ += ms; }

 private:
  std::atomic<TimestampMs> now_ms_;
};

}  // namespace quire
