// timings.hpp — per-service aggregates of the client's stage timings: count, sum, min, max
// and the protocol's log-bucket histogram per stage, plus ok/failed outcomes.
//
// Recording is striped: each thread records into one of kStripes shards (picked once per
// thread, round-robin), each under a mutex of its own, so the threads that submit jobs and
// the I/O thread that times round trips do not share a lock or a cache line. Readers
// (Snapshot for the SDK's Timings(), Totals for the metrics reporter) lock each shard in
// turn and merge them.
//
// Memory is bounded: the stripes hold at most kMaxRows rows between them (a service that
// threads on two stripes record is two rows) and a merged view at most kMaxServices; later
// names share one "(other)" row. A stage's histogram (2 KiB) is made on its first sample. Thread-safety: every member is safe to call
// from any thread.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "courier/client.hpp"
#include "courier/reporting.hpp"
#include "reporting/histogram.hpp"

namespace courier::detail {

// The client's stages (wire/stages.hpp); kKey has no column in ServiceTimings.
enum class TimedStage : std::uint8_t { kEncode, kKey, kSeal, kRoundTrip, kOpen, kDecode };
inline constexpr std::size_t kTimedStageCount = 6;

class TimingTable {
 public:
  static constexpr std::size_t kMaxServices = 1024;
  static constexpr std::size_t kMaxRows = 2 * kMaxServices;
  static constexpr std::size_t kStripes = 8;
  static constexpr std::string_view kOther = "(other)";

  void Record(std::string_view service, TimedStage stage, std::chrono::nanoseconds time);
  // Records a submitted job's encode, key and seal times at once (one lock, not three).
  void RecordSubmit(std::string_view service, std::chrono::nanoseconds encode, std::chrono::nanoseconds key,
                    std::chrono::nanoseconds seal);
  void RecordOutcome(std::string_view service, bool ok);
  // Returns: one row per service, sorted by name.
  std::vector<ServiceTimings> Snapshot() const;
  // Returns: cumulative totals with the protocol's histograms, for a MetricsReporter; one
  // per (service, stage) that has recorded something, sorted by (service, stage).
  std::vector<StageTotals> Totals() const;

 private:
  struct Aggregate {
    std::uint64_t count = 0;
    std::uint64_t sum_ns = 0;
    std::uint64_t min_ns = 0;
    std::uint64_t max_ns = 0;
    std::unique_ptr<std::array<std::uint64_t, kLatencyBuckets>> buckets;
    void Add(std::uint64_t ns);
    void MergeInto(Aggregate& into) const;
  };
  struct Row {
    std::array<Aggregate, kTimedStageCount> stages;
    std::uint64_t ok = 0;
    std::uint64_t failed = 0;
  };
  using Rows = std::map<std::string, Row, std::less<>>;
  // alignas: two stripes never share a cache line.
  struct alignas(64) Stripe {
    mutable std::mutex mutex;
    Rows rows;
  };

  Stripe& LocalStripe();
  // Returns: the row of `service` in a stripe's rows, or "(other)"'s once kMaxRows are made.
  Row& StripeRow(Rows& rows, std::string_view service);
  Rows Merged() const;

  std::array<Stripe, kStripes> stripes_;
  std::atomic<std::size_t> rows_made_{0};
};

}  // namespace courier::detail
