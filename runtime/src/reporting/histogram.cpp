#include "histogram.hpp"

#include <algorithm>
#include <bit>
#include <cmath>

namespace courier::detail {

std::size_t LatencyBucket(std::uint64_t v) noexcept {
  if (v < 4) return static_cast<std::size_t>(v);
  const int e = 63 - std::countl_zero(v);  // ⌊log₂ v⌋ ≥ 2
  return static_cast<std::size_t>(4 * (e - 1)) + static_cast<std::size_t>((v >> (e - 2)) & 3);
}

std::uint64_t LatencyBucketLower(std::size_t index) noexcept {
  if (index < 4) return index;
  const std::size_t e = index / 4 + 1;
  const std::uint64_t s = index % 4;
  return (std::uint64_t{4} + s) << (e - 2);
}

std::uint64_t LatencyBucketUpper(std::size_t index) noexcept {
  if (index < 4) return index + 1;
  if (index >= kLatencyBuckets - 1) return UINT64_MAX;
  return LatencyBucketLower(index + 1);
}

void MergeBuckets(SparseBuckets& into, const SparseBuckets& from) {
  if (from.empty()) return;
  if (into.empty()) {
    into = from;
    return;
  }
  SparseBuckets merged;
  merged.reserve(into.size() + from.size());
  std::size_t i = 0;
  std::size_t j = 0;
  while (i < into.size() || j < from.size()) {
    if (j == from.size() || (i < into.size() && into[i].first < from[j].first)) {
      merged.push_back(into[i++]);
    } else if (i == into.size() || from[j].first < into[i].first) {
      merged.push_back(from[j++]);
    } else {
      merged.emplace_back(into[i].first, into[i].second + from[j].second);
      ++i;
      ++j;
    }
  }
  into = std::move(merged);
}

std::optional<double> EstimateQuantile(const SparseBuckets& buckets, double q, std::uint64_t min_ns,
                                       std::uint64_t max_ns) {
  std::uint64_t total = 0;
  for (const auto& [index, count] : buckets) total += count;
  if (total == 0) return std::nullopt;
  q = std::clamp(q, 0.0, 1.0);
  const auto rank = std::max<std::uint64_t>(1, static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(total))));
  std::uint64_t before = 0;
  double estimate = static_cast<double>(max_ns);
  for (const auto& [index, count] : buckets) {
    if (before + count >= rank) {
      const double lower = static_cast<double>(LatencyBucketLower(index));
      const double upper = static_cast<double>(LatencyBucketUpper(index));
      // The rank's position inside the bucket, assuming values spread evenly over it.
      const double within = (static_cast<double>(rank - before) - 0.5) / static_cast<double>(count);
      estimate = lower + (upper - lower) * within;
      break;
    }
    before += count;
  }
  if (max_ns >= min_ns && max_ns > 0) {
    estimate = std::clamp(estimate, static_cast<double>(min_ns), static_cast<double>(max_ns));
  }
  return estimate;
}

}  // namespace courier::detail
