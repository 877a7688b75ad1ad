#include "stage_stats.hpp"

#include <cstdio>

namespace courier {

std::string_view ToString(Stage stage) noexcept {
  switch (stage) {
    case Stage::kOpen: return "open";
    case Stage::kParse: return "parse";
    case Stage::kVerify: return "verify";
    case Stage::kHandle: return "handle";
    case Stage::kConvert: return "convert";
    case Stage::kSeal: return "seal";
    case Stage::kSend: return "send";
  }
  return "unknown";
}

namespace detail {

void StageAggregate::Record(std::chrono::nanoseconds duration) noexcept {
  const auto ns = static_cast<std::uint64_t>(duration.count() < 0 ? 0 : duration.count());
  count_.fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(ns, std::memory_order_relaxed);
  std::uint64_t seen = min_.load(std::memory_order_relaxed);
  while (ns < seen && !min_.compare_exchange_weak(seen, ns, std::memory_order_relaxed)) {
  }
  seen = max_.load(std::memory_order_relaxed);
  while (ns > seen && !max_.compare_exchange_weak(seen, ns, std::memory_order_relaxed)) {
  }
  buckets_[LatencyBucket(ns)].fetch_add(1, std::memory_order_relaxed);
}

StageSummary StageAggregate::Summary() const {
  StageSummary summary;
  summary.count = count_.load(std::memory_order_relaxed);
  summary.errors = errors_.load(std::memory_order_relaxed);
  summary.sum = std::chrono::nanoseconds(sum_.load(std::memory_order_relaxed));
  const std::uint64_t min = min_.load(std::memory_order_relaxed);
  summary.min = std::chrono::nanoseconds(min == UINT64_MAX ? 0 : min);
  summary.max = std::chrono::nanoseconds(max_.load(std::memory_order_relaxed));
  summary.buckets.resize(kLatencyBuckets);
  for (std::size_t i = 0; i < kLatencyBuckets; ++i) {
    summary.buckets[i] = buckets_[i].load(std::memory_order_relaxed);
  }
  return summary;
}

void StageStats::Journal(std::size_t service, Stage stage, bool error, std::chrono::nanoseconds duration) noexcept {
  try {
    journal_->push_back(StageSample{static_cast<std::uint32_t>(service), stage, error,
                                    static_cast<std::uint64_t>(duration.count() < 0 ? 0 : duration.count())});
  } catch (...) {
    // Out of memory in a child: the sample is lost, the job is not.
  }
}

void StageStats::Replay(const StageSample& sample) noexcept {
  if (sample.service >= services_.size() || static_cast<std::size_t>(sample.stage) >= kStageCount) return;
  if (sample.error) {
    At(sample.service, sample.stage).RecordError();
  } else {
    At(sample.service, sample.stage).Record(std::chrono::nanoseconds(sample.ns));
  }
}

std::size_t StageStats::AddService(std::string name) {
  services_.emplace_back();
  services_.back().name = std::move(name);
  return services_.size() - 1;
}

std::vector<StageSummary> StageStats::Snapshot() const {
  std::vector<StageSummary> out;
  out.reserve(services_.size() * kStageCount);
  for (const ServiceStages& service : services_) {
    for (std::size_t i = 0; i < kStageCount; ++i) {
      StageSummary summary = service.stages[i].Summary();
      summary.service = service.name;
      summary.stage = static_cast<Stage>(i);
      out.push_back(std::move(summary));
    }
  }
  return out;
}

std::vector<std::string> StageStats::Describe() const {
  std::vector<std::string> lines;
  for (const ServiceStages& service : services_) {
    std::string line = service.name + ":";
    bool any = false;
    for (std::size_t i = 0; i < kStageCount; ++i) {
      const StageSummary s = service.stages[i].Summary();
      if (s.count == 0 && s.errors == 0) continue;
      any = true;
      const double mean_us = s.count == 0 ? 0.0 : static_cast<double>(s.sum.count()) / static_cast<double>(s.count) / 1000.0;
      char buffer[160];
      std::snprintf(buffer, sizeof buffer, " %s n=%llu mean=%.1fus max=%.1fus",
                    std::string(ToString(static_cast<Stage>(i))).c_str(),
                    static_cast<unsigned long long>(s.count), mean_us,
                    static_cast<double>(s.max.count()) / 1000.0);
      line += buffer;
      if (s.errors != 0) line += " errors=" + std::to_string(s.errors);
    }
    if (!any) line += " no jobs";
    lines.push_back(std::move(line));
  }
  return lines;
}

}  // namespace detail
}  // namespace courier
