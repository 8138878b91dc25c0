// Metrics in Prometheus text format. Counters, gauges and fixed-bucket histograms, registered
// by name; owned by the server, used on the loop thread only.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace quire::io {

class Counter {
 public:
  void Inc(int64_t by = 1) { value_ += by; }
  int64_t value() const { return value_; }

 private:
  int64_t value_ = 0;
};

class Gauge {
 public:
  void Set(int64_t v) { value_ = v; }
  void Add(int64_t by) { value_ += by; }
  int64_t value() const { return value_; }

 private:
  int64_t value_ = 0;
};

class Histogram {
 public:
  explicit Histogram(std::vector<double> upper_bounds);
  void Observe(double v);
  const std::vector<double>& bounds() const { return bounds_; }
  const std::vector<int64_t>& counts() const { return counts_; }  // per bucket, not cumulative
  int64_t count() const { return count_; }
  double sum() const { return sum_; }

 private:
  std::vector<double> bounds_;
  std::vector<int64_t> counts_;  // bounds_.size() + 1 (+Inf)
  int64_t count_ = 0;
  double sum_ = 0;
};

class Metrics {
 public:
  // Returns the metric named `name`, creating it on first use. References stay valid for the
  // lifetime of the registry.
  Counter& counter(const std::string& name, const std::string& help);
  Gauge& gauge(const std::string& name, const std::string& help);
  // Bounds in the unit of the name (seconds for *_seconds).
  Histogram& histogram(const std::string& name, const std::string& help,
                       std::vector<double> upper_bounds);
  // Latency buckets from 50 µs to 10 s.
  static std::vector<double> LatencyBounds();

  std::string RenderPrometheus() const;

 private:
  struct Entry {
    std::string help;
    std::unique_ptr<Counter> counter;
    std::unique_ptr<Gauge> gauge;
    std::unique_ptr<Histogram> histogram;
  };
  std::map<std::string, Entry> entries_;
};

}  // namespace quire::io
