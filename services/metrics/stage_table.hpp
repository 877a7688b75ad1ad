// stage_table.hpp — the collector's aggregates: per (service, process, stage), everything
// since the collector started plus sliding windows of 10 s, 1 min and 5 min. The process
// ("client", "broker", "worker") is part of the key because processes share stage names:
// a client's "seal" and a worker's "seal" of the same service are different series.
//
//   StageTable table;
//   table.Add(job_id, report, Clock::now());          // one metrics report (many stages)
//   for (const SeriesView& s : table.Snapshot(Clock::now())) s.windows[kWindow1m].mean_ns();
//
// Each series keeps a ring of 300 one-second slots (count, errors, sum, min, max and a
// sparse histogram); a report is added to the slot of the second it arrives in (a report
// covers the interval, normally 1 s, before it arrives). A window sums the slots of its
// last N seconds, so mean = Σ sum_ns / Σ count over every report of every process in it —
// weighted by counts, as the protocol asks — and percentiles come from the merged
// histogram (to within one bucket, ~19%, clamped to the window's min and max).
// Rates are completions per second over the window's span (shorter while the collector is
// younger than the window); the error ratio is errors / (count + errors).
//
// Each series also counts, since the collector started, its samples in fixed Prometheus
// buckets (kDurationBounds, 10 µs .. 10 s in 1-2.5-5 steps) for the
// courier_stage_duration_seconds histogram. Reporters send log-bucket histograms
// (histogram.hpp, four buckets per power of two); a log bucket's samples are counted under
// the first bound at or above the largest duration that log bucket holds. So a bucket
// le="x" counts exactly the samples whose log bucket lies wholly at or below x: never a
// sample above x, and a sample at most one log bucket (< 25 %) below x may be counted
// under the next bound instead. A stage entry without a histogram (the protocol allows
// one) has all its samples counted under the bound of its mean (sum / count).
//
// Bounded: at most max_series (service, process, stage) series (later ones are dropped and
// counted), 300 slots each;
// the last 10000 report job ids are remembered to drop duplicates (a report resent after a
// lost ACCEPT); reporting processes are remembered for 5 minutes (at most 10000).
// Thread-safety: every member is safe from any thread (one mutex).
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <tuple>
#include <unordered_set>
#include <vector>

#include "courier/job.hpp"
#include "reporting/histogram.hpp"
#include "reporting/report_codec.hpp"

namespace courier::metrics {

using Clock = std::chrono::steady_clock;

enum WindowIndex : std::size_t { kWindow10s = 0, kWindow1m = 1, kWindow5m = 2, kWindowAll = 3 };
inline constexpr std::size_t kWindows = 4;
inline constexpr std::array<std::string_view, kWindows> kWindowNames = {"10s", "1m", "5m", "all"};
inline constexpr std::array<std::int64_t, 3> kWindowSeconds = {10, 60, 300};

// Upper bounds (seconds) of the courier_stage_duration_seconds histogram's buckets.
inline constexpr std::array<double, 19> kDurationBounds = {
    0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
    0.025,   0.05,     0.1,     0.25,   0.5,     1,      2.5,   5,      10};
// Samples per bucket (not cumulative): [i] for bound i-1 < v <= bound i; the last entry
// for samples above the last bound.
using DurationCounts = std::array<std::uint64_t, kDurationBounds.size() + 1>;
// Returns: the index in DurationCounts of a sample of `nanoseconds`.
std::size_t DurationBucket(std::uint64_t nanoseconds);

struct WindowStats {
  double seconds = 0;  // the span rates are computed over
  std::uint64_t count = 0;
  std::uint64_t errors = 0;
  std::uint64_t sum_ns = 0;
  std::uint64_t min_ns = 0;
  std::uint64_t max_ns = 0;
  detail::SparseBuckets buckets;

  std::optional<double> mean_ns() const;
  double rate() const;         // completions per second
  double error_ratio() const;  // errors / (count + errors); 0 when both are 0
  // Returns: the estimated q-quantile, within [min_ns, max_ns] (so never above max, and
  // non-decreasing in q); std::nullopt when the window has no completions.
  std::optional<double> quantile_ns(double q) const;
};

struct SeriesView {
  std::string service;
  std::string process;  // the reporting process: "client", "broker" or "worker"
  std::string stage;
  std::array<WindowStats, kWindows> windows;
  DurationCounts durations{};  // since the collector started (above)
};

struct ReporterView {
  std::string process;
  std::string host;
  std::uint64_t pid = 0;
  std::string instance;
  std::uint64_t reports = 0;
  std::chrono::milliseconds age{0};  // since its last report
};

struct TableCounters {
  std::uint64_t reports = 0;         // metrics reports added
  std::uint64_t duplicates = 0;      // reports dropped as already seen
  std::uint64_t series_dropped = 0;  // stage entries dropped because max_series was reached
  std::uint64_t rejected_reports = 0;  // reports refused by detail::CheckMetricsReport
  std::uint64_t rejected_stages = 0;   // stage entries it dropped as implausible
  std::size_t series = 0;
  std::chrono::milliseconds uptime{0};
};

class StageTable {
 public:
  static constexpr std::size_t kDefaultMaxSeries = 2000;  // ~25 KB each at most

  // `max_series` bounds the (service, process, stage) series held (default 2000).
  explicit StageTable(std::size_t max_series = kDefaultMaxSeries, Clock::time_point start = Clock::now());

  // Adds a report received at `now`. Returns: false if `report_id` was already added.
  // The report is trusted: check it first (detail::CheckMetricsReport). Sums saturate at
  // 2^64 - 1 instead of wrapping.
  bool Add(const JobId& report_id, const detail::MetricsReport& report, Clock::time_point now);
  // Counts what detail::CheckMetricsReport refused: whole reports and single stage entries.
  void CountRejected(std::uint64_t reports, std::uint64_t stages);

  // Returns: every series, sorted by service, then process (ProcessOrder), then stage
  // (StageOrder).
  std::vector<SeriesView> Snapshot(Clock::time_point now) const;
  // Returns: processes that reported within the last 5 minutes, most recent first.
  std::vector<ReporterView> Reporters(Clock::time_point now) const;
  TableCounters counters(Clock::time_point now) const;

 private:
  struct Slot {
    std::int64_t second = -1;
    std::uint64_t count = 0;
    std::uint64_t errors = 0;
    std::uint64_t sum_ns = 0;
    std::uint64_t min_ns = 0;
    std::uint64_t max_ns = 0;
    detail::SparseBuckets buckets;
  };
  struct Series {
    std::array<Slot, 300> ring;
    Slot total;
    DurationCounts durations{};
  };
  struct Reporter {
    std::uint64_t reports = 0;
    Clock::time_point last{};
  };

  std::int64_t SecondOf(Clock::time_point now) const;

  const std::size_t max_series_;
  const Clock::time_point start_;
  mutable std::mutex mutex_;
  std::map<std::tuple<std::string, std::string, std::string>, Series> series_;  // (service, process, stage)
  std::map<std::tuple<std::string, std::string, std::uint64_t, std::string>, Reporter> reporters_;
  std::deque<JobId> recent_order_;
  std::unordered_set<JobId, JobIdHash> recent_;
  std::uint64_t reports_ = 0;
  std::uint64_t duplicates_ = 0;
  std::uint64_t series_dropped_ = 0;
  std::uint64_t rejected_reports_ = 0;
  std::uint64_t rejected_stages_ = 0;
};

// The order and groups come from the stage vocabulary (wire/stages.hpp, PROTOCOL.md §10.2).
// Returns: the position of `process` in the order a job meets them: client 0, broker 1,
// worker 2; any other process 3 (callers sort those alphabetically).
int ProcessOrder(std::string_view process);

// Returns: the position of `stage` among `process`'s stages in the order a job goes
// through them, or, for a stage the process is not known to time, a position after all of
// them (callers sort those alphabetically).
int StageOrder(std::string_view process, std::string_view stage);

// Returns: the design's group of the stage ("request", "response", "error", "crypto",
// "load_balancing"), or "other" for a stage the vocabulary does not know.
std::string_view GroupName(std::string_view process, std::string_view stage);

// Returns: whether series `a` sorts before `b`: by service, then ProcessOrder, then
// StageOrder, with unknown processes and stages alphabetically after the known ones.
bool SeriesBefore(const SeriesView& a, const SeriesView& b);

}  // namespace courier::metrics
