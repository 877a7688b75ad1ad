#include "stage_delta.hpp"

#include <algorithm>

#include "histogram.hpp"

namespace courier::detail {
namespace {

StageInterval Fresh(const StageTotals& current) {
  StageInterval out;
  out.service = current.service;
  out.stage = current.stage;
  out.count = current.count;
  out.errors = current.errors;
  out.sum_ns = current.sum_ns;
  out.min_ns = current.count == 0 ? 0 : current.min_ns;
  out.max_ns = current.count == 0 ? 0 : current.max_ns;
  const std::size_t n = std::min(current.buckets.size(), kLatencyBuckets);
  for (std::size_t i = 0; i < n; ++i) {
    if (current.buckets[i] != 0) out.buckets.emplace_back(static_cast<std::uint32_t>(i), current.buckets[i]);
  }
  return out;
}

}  // namespace

std::vector<StageInterval> StageDelta::Compute(const std::vector<StageTotals>& current) const {
  std::vector<StageInterval> out;
  for (const StageTotals& now : current) {
    const auto it = baseline_.find({now.service, now.stage});
    if (it == baseline_.end() || now.count < it->second.count || now.errors < it->second.errors ||
        now.sum_ns < it->second.sum_ns) {
      if (now.count == 0 && now.errors == 0) continue;
      out.push_back(Fresh(now));
      continue;
    }
    const StageTotals& before = it->second;
    if (now.count == before.count && now.errors == before.errors) continue;
    StageInterval interval;
    interval.service = now.service;
    interval.stage = now.stage;
    interval.count = now.count - before.count;
    interval.errors = now.errors - before.errors;
    interval.sum_ns = now.sum_ns - before.sum_ns;
    const std::size_t n = std::min(now.buckets.size(), kLatencyBuckets);
    for (std::size_t i = 0; i < n; ++i) {
      const std::uint64_t was = i < before.buckets.size() ? before.buckets[i] : 0;
      if (now.buckets[i] > was) interval.buckets.emplace_back(static_cast<std::uint32_t>(i), now.buckets[i] - was);
    }
    if (interval.count > 0) {
      // Exact when the running minimum (maximum) moved during the interval.
      if (before.count == 0 || now.min_ns < before.min_ns) {
        interval.min_ns = now.min_ns;
      } else if (!interval.buckets.empty()) {
        interval.min_ns = std::max(now.min_ns, LatencyBucketLower(interval.buckets.front().first));
      } else {
        interval.min_ns = now.min_ns;
      }
      if (before.count == 0 || now.max_ns > before.max_ns) {
        interval.max_ns = now.max_ns;
      } else if (!interval.buckets.empty()) {
        const std::uint64_t upper = LatencyBucketUpper(interval.buckets.back().first);
        interval.max_ns = std::min(now.max_ns, upper == 0 ? 0 : upper - 1);
      } else {
        interval.max_ns = now.max_ns;
      }
      if (interval.max_ns < interval.min_ns) interval.max_ns = interval.min_ns;
    }
    out.push_back(std::move(interval));
  }
  return out;
}

void StageDelta::Commit(std::vector<StageTotals> current) {
  for (StageTotals& totals : current) {
    std::pair<std::string, std::string> key{totals.service, totals.stage};
    baseline_[std::move(key)] = std::move(totals);
  }
}

}  // namespace courier::detail
