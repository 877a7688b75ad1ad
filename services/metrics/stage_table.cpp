#include "stage_table.hpp"

#include <algorithm>

#include "wire/stages.hpp"

namespace courier::metrics {
namespace {

constexpr std::size_t kRecentIds = 10000;
constexpr std::size_t kMaxReporters = 10000;
constexpr auto kReporterMemory = std::chrono::minutes(5);

std::uint64_t SaturatingAdd(std::uint64_t a, std::uint64_t b) { return a > UINT64_MAX - b ? UINT64_MAX : a + b; }

void AddInto(WindowStats& into, std::uint64_t count, std::uint64_t errors, std::uint64_t sum_ns, std::uint64_t min_ns,
             std::uint64_t max_ns, const detail::SparseBuckets& buckets) {
  if (count > 0) {
    into.min_ns = into.count == 0 ? min_ns : std::min(into.min_ns, min_ns);
    into.max_ns = std::max(into.max_ns, max_ns);
  }
  into.count = SaturatingAdd(into.count, count);
  into.errors = SaturatingAdd(into.errors, errors);
  into.sum_ns = SaturatingAdd(into.sum_ns, sum_ns);
  detail::MergeBuckets(into.buckets, buckets);
}

// Nanoseconds of each bound of kDurationBounds.
constexpr std::array<std::uint64_t, kDurationBounds.size()> BoundsNs() {
  std::array<std::uint64_t, kDurationBounds.size()> out{};
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = static_cast<std::uint64_t>(kDurationBounds[i] * 1e9 + 0.5);
  return out;
}
constexpr std::array<std::uint64_t, kDurationBounds.size()> kBoundsNs = BoundsNs();

// Counts a stage entry's samples into the fixed buckets (stage_table.hpp says how).
void AddDurations(DurationCounts& into, const detail::StageInterval& stage) {
  std::uint64_t bucketed = 0;
  for (const auto& [index, count] : stage.buckets) {
    const std::uint64_t upper = detail::LatencyBucketUpper(index);
    std::uint64_t& bucket = into[DurationBucket(upper == 0 ? 0 : upper - 1)];
    bucket = SaturatingAdd(bucket, count);
    bucketed = SaturatingAdd(bucketed, count);
  }
  // No histogram (or one short of count: never after CheckMetricsReport): at the mean.
  if (stage.count > bucketed) {
    const std::uint64_t rest = stage.count - bucketed;
    std::uint64_t& bucket = into[DurationBucket(stage.sum_ns / stage.count)];
    bucket = SaturatingAdd(bucket, rest);
  }
}

}  // namespace

std::size_t DurationBucket(std::uint64_t nanoseconds) {
  return static_cast<std::size_t>(std::lower_bound(kBoundsNs.begin(), kBoundsNs.end(), nanoseconds) -
                                  kBoundsNs.begin());
}

std::optional<double> WindowStats::mean_ns() const {
  if (count == 0) return std::nullopt;
  return static_cast<double>(sum_ns) / static_cast<double>(count);
}

double WindowStats::rate() const { return seconds > 0 ? static_cast<double>(count) / seconds : 0.0; }

double WindowStats::error_ratio() const {
  const std::uint64_t all = count + errors;
  return all == 0 ? 0.0 : static_cast<double>(errors) / static_cast<double>(all);
}

std::optional<double> WindowStats::quantile_ns(double q) const {
  if (count == 0) return std::nullopt;  // no completion, no range to place an estimate in
  const std::optional<double> estimate = detail::EstimateQuantile(buckets, q, min_ns, max_ns);
  if (!estimate) return std::nullopt;
  // EstimateQuantile reads max 0 as "unknown" and does not clamp then; here it is a real
  // maximum (every job of a stage timed at 0 ns), and the interpolation inside bucket 0
  // showed "p90 1ns, max 0ns". The window's own range bounds every quantile, which also
  // keeps them in order (p50 <= p90 <= p99 <= max): the estimate grows with q.
  const double low = static_cast<double>(std::min(min_ns, max_ns));
  return std::clamp(*estimate, low, static_cast<double>(max_ns));
}

int ProcessOrder(std::string_view process) { return wire::ProcessOrder(process); }

int StageOrder(std::string_view process, std::string_view stage) { return wire::StageOrder(process, stage); }

std::string_view GroupName(std::string_view process, std::string_view stage) {
  const std::optional<wire::StageGroup> group = wire::GroupOf(process, stage);
  return group ? wire::ToString(*group) : std::string_view("other");
}

bool SeriesBefore(const SeriesView& a, const SeriesView& b) {
  if (a.service != b.service) return a.service < b.service;
  const int process_a = ProcessOrder(a.process);
  const int process_b = ProcessOrder(b.process);
  if (process_a != process_b) return process_a < process_b;
  if (a.process != b.process) return a.process < b.process;
  const int stage_a = StageOrder(a.process, a.stage);
  const int stage_b = StageOrder(b.process, b.stage);
  if (stage_a != stage_b) return stage_a < stage_b;
  return a.stage < b.stage;
}

StageTable::StageTable(std::size_t max_series, Clock::time_point start) : max_series_(max_series), start_(start) {}

std::int64_t StageTable::SecondOf(Clock::time_point now) const {
  return std::chrono::duration_cast<std::chrono::seconds>(std::max(now, start_) - start_).count();
}

bool StageTable::Add(const JobId& report_id, const detail::MetricsReport& report, Clock::time_point now) {
  std::lock_guard lock(mutex_);
  if (!report_id.IsZero()) {
    if (!recent_.insert(report_id).second) {
      ++duplicates_;
      return false;
    }
    recent_order_.push_back(report_id);
    if (recent_order_.size() > kRecentIds) {
      recent_.erase(recent_order_.front());
      recent_order_.pop_front();
    }
  }
  ++reports_;
  auto reporter_key = std::make_tuple(report.process, report.host, report.pid, report.instance);
  auto reporter = reporters_.find(reporter_key);
  if (reporter == reporters_.end() && reporters_.size() >= kMaxReporters) {
    std::erase_if(reporters_, [&](const auto& entry) { return now - entry.second.last > kReporterMemory; });
  }
  if (reporter != reporters_.end() || reporters_.size() < kMaxReporters) {
    Reporter& entry = reporters_[reporter_key];
    ++entry.reports;
    entry.last = now;
  }
  const std::int64_t second = SecondOf(now);
  for (const detail::StageInterval& stage : report.stages) {
    auto key = std::make_tuple(stage.service, report.process, stage.stage);
    auto it = series_.find(key);
    if (it == series_.end()) {
      if (series_.size() >= max_series_) {
        ++series_dropped_;
        continue;
      }
      it = series_.emplace(std::move(key), Series{}).first;
    }
    Series& series = it->second;
    Slot& slot = series.ring[static_cast<std::size_t>(second % static_cast<std::int64_t>(series.ring.size()))];
    if (slot.second != second) slot = Slot{.second = second};
    for (Slot* target : {&slot, &series.total}) {
      if (stage.count > 0) {
        target->min_ns = target->count == 0 ? stage.min_ns : std::min(target->min_ns, stage.min_ns);
        target->max_ns = std::max(target->max_ns, stage.max_ns);
      }
      target->count = SaturatingAdd(target->count, stage.count);
      target->errors = SaturatingAdd(target->errors, stage.errors);
      target->sum_ns = SaturatingAdd(target->sum_ns, stage.sum_ns);
      detail::MergeBuckets(target->buckets, stage.buckets);
    }
    AddDurations(series.durations, stage);
  }
  return true;
}

std::vector<SeriesView> StageTable::Snapshot(Clock::time_point now) const {
  const std::int64_t current = SecondOf(now);
  const double uptime = std::chrono::duration<double>(std::max(now, start_) - start_).count();
  // How far into the current second we are: a window of N seconds spans N-1 whole seconds
  // plus this fraction (and never more than the collector has been up).
  const double fraction = uptime - static_cast<double>(current);
  std::lock_guard lock(mutex_);
  std::vector<SeriesView> out;
  out.reserve(series_.size());
  for (const auto& [key, series] : series_) {
    SeriesView view;
    view.service = std::get<0>(key);
    view.process = std::get<1>(key);
    view.stage = std::get<2>(key);
    for (std::size_t w = 0; w < kWindowSeconds.size(); ++w) {
      view.windows[w].seconds = std::min(uptime, static_cast<double>(kWindowSeconds[w] - 1) + fraction);
    }
    for (const Slot& slot : series.ring) {  // one pass over the ring for every window
      if (slot.second < 0 || slot.second > current) continue;
      for (std::size_t w = 0; w < kWindowSeconds.size(); ++w) {
        if (slot.second <= current - kWindowSeconds[w]) continue;
        AddInto(view.windows[w], slot.count, slot.errors, slot.sum_ns, slot.min_ns, slot.max_ns, slot.buckets);
      }
    }
    WindowStats& all = view.windows[kWindowAll];
    all.seconds = uptime;
    AddInto(all, series.total.count, series.total.errors, series.total.sum_ns, series.total.min_ns,
            series.total.max_ns, series.total.buckets);
    view.durations = series.durations;
    out.push_back(std::move(view));
  }
  std::sort(out.begin(), out.end(), SeriesBefore);
  return out;
}

std::vector<ReporterView> StageTable::Reporters(Clock::time_point now) const {
  std::lock_guard lock(mutex_);
  std::vector<ReporterView> out;
  for (const auto& [key, reporter] : reporters_) {
    const auto age = std::chrono::duration_cast<std::chrono::milliseconds>(now - reporter.last);
    if (age > kReporterMemory) continue;
    out.push_back({std::get<0>(key), std::get<1>(key), std::get<2>(key), std::get<3>(key), reporter.reports, age});
  }
  std::sort(out.begin(), out.end(), [](const ReporterView& a, const ReporterView& b) { return a.age < b.age; });
  return out;
}

void StageTable::CountRejected(std::uint64_t reports, std::uint64_t stages) {
  std::lock_guard lock(mutex_);
  rejected_reports_ += reports;
  rejected_stages_ += stages;
}

TableCounters StageTable::counters(Clock::time_point now) const {
  std::lock_guard lock(mutex_);
  TableCounters counters;
  counters.reports = reports_;
  counters.duplicates = duplicates_;
  counters.series_dropped = series_dropped_;
  counters.rejected_reports = rejected_reports_;
  counters.rejected_stages = rejected_stages_;
  counters.series = series_.size();
  counters.uptime = std::chrono::duration_cast<std::chrono::milliseconds>(std::max(now, start_) - start_);
  return counters;
}

}  // namespace courier::metrics
