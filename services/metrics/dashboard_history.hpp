// dashboard_history.hpp — per-second history of every (service, process, stage) series for
// the dashboard's charts: completions, errors, mean and p99 of each second.
//
//   StageHistory history;
//   history.Sample(table.Snapshot(now), NowUnixMs());   // once a second
//   Value chart = history.ServiceValue("resize");        // {"t": [...], "series": [...]}
//
// Each sample takes the since-start totals of every series (count, errors, sum, histogram)
// and keeps the difference from the previous sample: that second's count, errors, mean
// (Σ sum / Σ count) and p99 (from the histogram's difference), exact to one bucket as
// everywhere in the collector. The last kPoints samples are kept, for at most max_series
// series (later ones are not charted). A series first seen counts from zero.
// Thread-safety: every member is safe from any thread (one mutex).
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "courier/value.hpp"
#include "stage_table.hpp"

namespace courier::metrics {

class StageHistory {
 public:
  static constexpr std::size_t kPoints = 300;  // five minutes of seconds

  explicit StageHistory(std::size_t max_series = StageTable::kDefaultMaxSeries) : max_series_(max_series) {}

  // Adds one sample of `series` (a StageTable::Snapshot) taken at `unix_ms`.
  void Sample(const std::vector<SeriesView>& series, std::int64_t unix_ms);

  // Returns: {"t": [unix_ms...], "series": [{"process", "stage", "count": [...],
  // "errors": [...], "mean_ns": [...], "p99_ns": [...]}]} for `service`, every array aligned
  // with "t" (nil where a series has no point or no completions that second), series in
  // pipeline order.
  Value ServiceValue(std::string_view service) const;

 private:
  struct Point {
    std::uint64_t tick = 0;
    std::uint32_t count = 0;
    std::uint32_t errors = 0;
    double mean_ns = -1;  // < 0: none
    double p99_ns = -1;
  };
  struct Series {
    std::uint64_t count = 0;  // totals at the previous sample
    std::uint64_t errors = 0;
    std::uint64_t sum_ns = 0;
    detail::SparseBuckets buckets;
    std::deque<Point> points;
  };

  const std::size_t max_series_;
  mutable std::mutex mutex_;
  std::uint64_t ticks_ = 0;             // samples taken
  std::deque<std::int64_t> times_;      // unix ms of the last kPoints samples (tick ticks_ - size .. ticks_ - 1)
  std::map<std::tuple<std::string, std::string, std::string>, Series> series_;
};

// Returns: `now` minus `before`, bucket by bucket (buckets missing or smaller in `now`
// count 0), both ascending.
detail::SparseBuckets SubtractBuckets(const detail::SparseBuckets& now, const detail::SparseBuckets& before);

}  // namespace courier::metrics
