#include "stage_recorder.hpp"

#include "histogram.hpp"

namespace courier::detail {

StageTotals* StageRecorder::Series(std::string_view service, std::string_view stage) {
  auto it = series_.find(std::pair<std::string_view, std::string_view>(service, stage));
  if (it != series_.end()) return &it->second;
  std::pair<std::string, std::string> key{std::string(service), std::string(stage)};
  if (series_.size() >= kMaxSeries) {
    ++overflow_;
    return nullptr;
  }
  StageTotals fresh;
  fresh.service = key.first;
  fresh.stage = key.second;
  fresh.buckets.assign(kLatencyBuckets, 0);
  return &series_.emplace(std::move(key), std::move(fresh)).first->second;
}

void StageRecorder::Record(std::string_view service, std::string_view stage, std::chrono::nanoseconds duration) {
  std::lock_guard lock(mutex_);
  AddLocked(service, stage, duration);
}

void StageRecorder::Record(std::string_view service,
                           std::initializer_list<std::pair<std::string_view, std::chrono::nanoseconds>> stages) {
  std::lock_guard lock(mutex_);
  for (const auto& [stage, duration] : stages) AddLocked(service, stage, duration);
}

void StageRecorder::AddLocked(std::string_view service, std::string_view stage, std::chrono::nanoseconds duration) {
  const auto ns = static_cast<std::uint64_t>(duration.count() < 0 ? 0 : duration.count());
  StageTotals* series = Series(service, stage);
  if (series == nullptr) return;
  series->min_ns = series->count == 0 ? ns : std::min(series->min_ns, ns);
  series->max_ns = std::max(series->max_ns, ns);
  ++series->count;
  series->sum_ns += ns;
  ++series->buckets[LatencyBucket(ns)];
}

void StageRecorder::RecordError(std::string_view service, std::string_view stage) {
  std::lock_guard lock(mutex_);
  if (StageTotals* series = Series(service, stage)) ++series->errors;
}

std::vector<StageTotals> StageRecorder::Totals() const {
  std::lock_guard lock(mutex_);
  std::vector<StageTotals> out;
  out.reserve(series_.size());
  for (const auto& [key, totals] : series_) out.push_back(totals);
  return out;
}

std::uint64_t StageRecorder::overflow() const {
  std::lock_guard lock(mutex_);
  return overflow_;
}

}  // namespace courier::detail
