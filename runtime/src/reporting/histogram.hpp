// histogram.hpp — the log-bucket latency histogram of schemas/PROTOCOL.md §10.2, in sparse
// form, and the percentile estimate the collector derives from it.
//
// Bucket of a duration v (ns): v < 4 → v; else e = ⌊log₂ v⌋ and 4·(e − 1) + ((v >> (e − 2)) & 3).
// Four buckets per power of two, indexes 0..251. Bucket i ≥ 4 covers
// [(4 + s)·2^(e−2), (5 + s)·2^(e−2)) with e = ⌊i/4⌋ + 1, s = i mod 4.
// Thread-safety: plain functions and values.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

namespace courier::detail {

inline constexpr std::size_t kLatencyBuckets = 252;

// Returns: the bucket index of `nanoseconds` (0..251).
std::size_t LatencyBucket(std::uint64_t nanoseconds) noexcept;
// Returns: the smallest value in bucket `index`.
std::uint64_t LatencyBucketLower(std::size_t index) noexcept;
// Returns: one past the largest value in bucket `index` (saturating at UINT64_MAX).
std::uint64_t LatencyBucketUpper(std::size_t index) noexcept;

// Non-zero buckets only, ascending by index: [(index, count), ...].
using SparseBuckets = std::vector<std::pair<std::uint32_t, std::uint64_t>>;

// Adds `from` into `into`, both ascending; the result stays ascending.
void MergeBuckets(SparseBuckets& into, const SparseBuckets& from);

// Returns: the estimated q-quantile (0 < q ≤ 1) of the values counted in `buckets`,
// interpolated linearly inside the bucket that holds rank ⌈q·N⌉ and clamped to
// [min_ns, max_ns]; std::nullopt if the buckets are empty.
std::optional<double> EstimateQuantile(const SparseBuckets& buckets, double q, std::uint64_t min_ns,
                                       std::uint64_t max_ns);

}  // namespace courier::detail
