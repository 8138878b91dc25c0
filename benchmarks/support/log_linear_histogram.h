// LogLinearHistogram: constant-memory latency histogram for the load generator. Values (ns) are
// counted in log-linear buckets: 128 linear sub-buckets per power of two, so a reported
// quantile is the upper bound of its bucket and at most 1/128 (< 0.8%) above the true value.
// Buckets can be exported and merged, so several load-generator processes add up exactly.
// Not thread-safe.
#pragma once

#include <algorithm>
#include <bit>
#include <cstdint>
#include <utility>
#include <vector>

namespace quire::bench {

class LogLinearHistogram {
 public:
  static constexpr int kSubBits = 7;
  static constexpr uint64_t kSub = uint64_t{1} << kSubBits;
  static constexpr size_t kBuckets = (64 - kSubBits + 1) * kSub;

  LogLinearHistogram() : counts_(kBuckets, 0) {}

  void Record(int64_t value_ns) {
    if (value_ns < 0) value_ns = 0;
    counts_[Bucket(static_cast<uint64_t>(value_ns))] += 1;
    count_ += 1;
    max_ = std::max(max_, value_ns);
    sum_ += static_cast<double>(value_ns);
  }
  void Merge(const LogLinearHistogram& other) {
    for (size_t i = 0; i < kBuckets; ++i) counts_[i] += other.counts_[i];
    count_ += other.count_;
    max_ = std::max(max_, other.max_);
    sum_ += other.sum_;
  }
  int64_t count() const { return count_; }
  int64_t max() const { return max_; }
  double mean() const { return count_ ? sum_ / static_cast<double>(count_) : 0.0; }

  // The value at quantile q in [0, 1]: the upper bound of the bucket holding the ceil(q*n)-th
  // smallest value, capped at the exact maximum.
  int64_t Quantile(double q) const {
    if (count_ == 0) return 0;
    auto rank = static_cast<int64_t>(q * static_cast<double>(count_));
    if (static_cast<double>(rank) < q * static_cast<double>(count_)) ++rank;
    rank = std::clamp<int64_t>(rank, 1, count_);
    int64_t seen = 0;
    for (size_t i = 0; i < kBuckets; ++i) {
      seen += counts_[i];
      if (seen >= rank) return std::min<int64_t>(static_cast<int64_t>(UpperBound(i)), max_);
    }
    return max_;
  }

  // Non-empty buckets as (bucket index, count), for export; FromBuckets inverts it.
  std::vector<std::pair<size_t, int64_t>> NonEmpty() const {
    std::vector<std::pair<size_t, int64_t>> out;
    for (size_t i = 0; i < kBuckets; ++i)
      if (counts_[i] != 0) out.emplace_back(i, counts_[i]);
    return out;
  }

  static size_t Bucket(uint64_t v) {
    if (v < kSub) return static_cast<size_t>(v);
    int exp = static_cast<int>(std::bit_width(v)) - 1 - kSubBits;  // >= 0
    uint64_t sub = (v >> exp) - kSub;                              // in [0, kSub)
    return static_cast<size_t>((static_cast<uint64_t>(exp) + 1) * kSub + sub);
  }
  static uint64_t UpperBound(size_t bucket) {
    if (bucket < kSub) return bucket;
    uint64_t exp = bucket / kSub - 1;
    uint64_t sub = bucket % kSub;
    return ((kSub + sub + 1) << exp) - 1;
  }

 private:
  std::vector<int64_t> counts_;
  int64_t count_ = 0;
  int64_t max_ = 0;
  double sum_ = 0;
};

}  // namespace quire::bench
