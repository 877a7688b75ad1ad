// stage_table.hpp — the collector's aggregates: per (service, stage), everything since the
// collector started plus sliding windows of 10 s, 1 min and 5 min.
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
// Bounded: at most max_series series (later ones are dropped and counted), 300 slots each;
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
  std::optional<double> quantile_ns(double q) const;
};

struct SeriesView {
  std::string service;
  std::string stage;
  std::array<WindowStats, kWindows> windows;
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
  std::size_t series = 0;
  std::chrono::milliseconds uptime{0};
};

class StageTable {
 public:
  static constexpr std::size_t kDefaultMaxSeries = 2000;  // ~25 KB each at most

  explicit StageTable(std::size_t max_series = kDefaultMaxSeries, Clock::time_point start = Clock::now());

  // Adds a report received at `now`. Returns: false if `report_id` was already added.
  bool Add(const JobId& report_id, const detail::MetricsReport& report, Clock::time_point now);

  // Returns: every series, sorted by service then stage (known stages in job order).
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
  };
  struct Reporter {
    std::uint64_t reports = 0;
    Clock::time_point last{};
  };

  std::int64_t SecondOf(Clock::time_point now) const;

  const std::size_t max_series_;
  const Clock::time_point start_;
  mutable std::mutex mutex_;
  std::map<std::pair<std::string, std::string>, Series> series_;
  std::map<std::tuple<std::string, std::string, std::uint64_t, std::string>, Reporter> reporters_;
  std::deque<JobId> recent_order_;
  std::unordered_set<JobId, JobIdHash> recent_;
  std::uint64_t reports_ = 0;
  std::uint64_t duplicates_ = 0;
  std::uint64_t series_dropped_ = 0;
};

// Returns: the position of `stage` in the order jobs go through stages (client, broker,
// worker); unknown stages sort after, alphabetically.
int StageOrder(std::string_view stage);

}  // namespace courier::metrics
