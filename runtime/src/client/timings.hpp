// timings.hpp — per-service aggregates (count, sum, min, max) of the client's stage timings.
//
// Memory is bounded: at most kMaxServices names are tracked; later names share one
// "(other)" row. Thread-safety: every member is safe to call from any thread.
#pragma once

#include <chrono>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "courier/client.hpp"
#include "reporting/stage_recorder.hpp"

namespace courier::detail {

// The client's stages (wire/stages.hpp); kKey has no column in ServiceTimings.
enum class TimedStage : std::uint8_t { kEncode, kKey, kSeal, kRoundTrip, kOpen, kDecode };

class TimingTable {
 public:
  static constexpr std::size_t kMaxServices = 1024;
  static constexpr std::string_view kOther = "(other)";

  void Record(std::string_view service, TimedStage stage, std::chrono::nanoseconds time);
  // Records a submitted job's encode, key and seal times at once (one lock of each table,
  // not three).
  void RecordSubmit(std::string_view service, std::chrono::nanoseconds encode, std::chrono::nanoseconds key,
                    std::chrono::nanoseconds seal);
  void RecordOutcome(std::string_view service, bool ok);
  // Returns: one row per service, sorted by name.
  std::vector<ServiceTimings> Snapshot() const;
  // Returns: cumulative totals with the protocol's histograms, for a MetricsReporter.
  std::vector<StageTotals> Totals() const { return recorder_.Totals(); }

 private:
  ServiceTimings& Row(std::string_view service);

  mutable std::mutex mutex_;
  std::map<std::string, ServiceTimings, std::less<>> rows_;
  StageRecorder recorder_;
};

}  // namespace courier::detail
