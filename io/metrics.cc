#include "io/metrics.h"

#include <algorithm>
#include <cstdio>

namespace quire::io {

Histogram::Histogram(std::vector<double> upper_bounds)
    : bounds_(std::move(upper_bounds)), counts_(bounds_.size() + 1, 0) {
  std::sort(bounds_.begin(), bounds_.end());
}

void Histogram::Observe(double v) {
  size_t i = static_cast<size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin());
  ++counts_[i];
  ++count_;
  sum_ += v;
}

Counter& Metrics::counter(const std::string& name, const std::string& help) {
  Entry& e = entries_[name];
  if (!e.counter) {
    e.help = help;
    e.counter = std::make_unique<Counter>();
  }
  return *e.counter;
}

Gauge& Metrics::gauge(const std::string& name, const std::string& help) {
  Entry& e = entries_[name];
  if (!e.gauge) {
    e.help = help;
    e.gauge = std::make_unique<Gauge>();
  }
  return *e.gauge;
}

Histogram& Metrics::histogram(const std::string& name, const std::string& help,
                              std::vector<double> upper_bounds) {
  Entry& e = entries_[name];
  if (!e.histogram) {
    e.help = help;
    e.histogram = std::make_unique<Histogram>(std::move(upper_bounds));
  }
  return *e.histogram;
}

std::vector<double> Metrics::LatencyBounds() {
  return {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
          0.025,   0.05,   0.1,     0.25,   0.5,   1,      2.5,    5,     10};
}

std::string Metrics::RenderPrometheus() const {
  std::string out;
  char buf[64];
  for (const auto& [name, e] : entries_) {
    out += "# HELP " + name + " " + e.help + "\n";
    if (e.counter) {
      out += "# TYPE " + name + " counter\n" + name + " " + std::to_string(e.counter->value()) + "\n";
    } else if (e.gauge) {
      out += "# TYPE " + name + " gauge\n" + name + " " + std::to_string(e.gauge->value()) + "\n";
    } else if (e.histogram) {
      const Histogram& h = *e.histogram;
      out += "# TYPE " + name + " histogram\n";
      int64_t cumulative = 0;
      for (size_t i = 0; i < h.bounds().size(); ++i) {
        cumulative += h.counts()[i];
        std::snprintf(buf, sizeof buf, "%g", h.bounds()[i]);
        out += name + "_bucket{le=\"" + buf + "\"} " + std::to_string(cumulative) + "\n";
      }
      out += name + "_bucket{le=\"+Inf\"} " + std::to_string(h.count()) + "\n";
      std::snprintf(buf, sizeof buf, "%.9g", h.sum());
      out += name + "_sum " + buf + "\n";
      out += name + "_count " + std::to_string(h.count()) + "\n";
    }
  }
  return out;
}

}  // namespace quire::io
