// LatencyHistogram: constant-memory latency recording with ~1.5% relative precision
// (log-linear buckets, HdrHistogram's idea in miniature). Not thread-safe.
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cstdint>

namespace quire::bench {

class LatencyHistogram {
 public:
  void Record(int64_t value_ns) {
    if (value_ns < 0) value_ns = 0;
    counts_[Bucket(static_cast<uint64_t>(value_ns))] += 1;
    count_ += 1;
    max_ = std::max(max_, value_ns);
    sum_ += value_ns;
  }
  void Merge(const LatencyHistogram& other) {
    for (size_t i = 0; i < counts_.size(); ++i) counts_[i] += other.counts_[i];
    count_ += other.count_;
    max_ = std::max(max_, other.max_);
    sum_ += other.sum_;
  }
  int64_t count() const { return count_; }
  int64_t max() const { return max_; }
  double mean() const { return count_ ? static_cast<double>(sum_) / count_ : 0.0; }

  // The value at quantile q in [0, 1] (an upper bound of its bucket, capped at the maximum).
  int64_t Quantile(double q) const {
    if (count_ == 0) return 0;
    int64_t rank = static_cast<int64_t>(q * static_cast<double>(count_ - 1)) + 1;
    int64_t seen = 0;
    for (size_t i = 0; i < counts_.size(); ++i) {
      seen += counts_[i];
      if (seen >= rank) return std::min<int64_t>(static_cast<int64_t>(UpperBound(i)), max_);
    }
    return max_;
  }

 private:
  static constexpr int kSubBits = 6;  // 64 sub-buckets per power of two
  static constexpr uint64_t kSub = uint64_t{1} << kSubBits;

  static size_t Bucket(uint64_t v) {
    if (v < kSub) return static_cast<size_t>(v);
    int exp = std::bit_width(v) - 1 - kSubBits;  // >= 0
    uint64_t sub = (v >> exp) - kSub;            // in [0, kSub)
    return static_cast<size_t>((static_cast<uint64_t>(exp) + 1) * kSub + sub);
  }
  static uint64_t UpperBound(size_t bucket) {
    if (bucket < kSub) return bucket;
    uint64_t exp = bucket / kSub - 1;
    uint64_t sub = bucket % kSub;
    return ((kSub + sub + 1) << exp) - 1;
  }

  std::array<int64_t, (64 - kSubBits + 1) * kSub> counts_{};
  int64_t count_ = 0;
  int64_t max_ = 0;
  int64_t sum_ = 0;
};

}  // namespace quire::bench
