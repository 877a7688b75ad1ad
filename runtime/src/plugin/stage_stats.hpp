// stage_stats.hpp — per-(service, stage) timing aggregates of the worker host: count, sum,
// min, max and a log-bucket histogram of durations in nanoseconds, plus an error count.
//
// Writers are the pool threads (and the I/O thread for "send"); every field is a relaxed
// atomic, so recording is lock-free and never blocks the job path. Readers (the metrics
// flush once a second, the shutdown summary) take a Snapshot(): each field is read
// atomically, the set of fields is not (a snapshot may see a count without its sum for a
// job recorded at that instant; good enough for monitoring).
// Thread-safety: Record*/Snapshot from any thread. Services are added before Run().
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "courier/worker.hpp"
#include "reporting/histogram.hpp"  // the protocol's log buckets

namespace courier::detail {


class StageAggregate {
 public:
  void Record(std::chrono::nanoseconds duration) noexcept;
  void RecordError() noexcept { errors_.fetch_add(1, std::memory_order_relaxed); }
  StageSummary Summary() const;

 private:
  std::atomic<std::uint64_t> count_{0};
  std::atomic<std::uint64_t> errors_{0};
  std::atomic<std::uint64_t> sum_{0};
  std::atomic<std::uint64_t> min_{UINT64_MAX};
  std::atomic<std::uint64_t> max_{0};
  std::array<std::atomic<std::uint64_t>, kLatencyBuckets> buckets_{};
};

// One recorded duration (or failure), as a handler child process sends it to its host.
struct StageSample {
  std::uint32_t service = 0;
  Stage stage = Stage::kOpen;
  bool error = false;
  std::uint64_t ns = 0;
};

class StageStats {
 public:
  // Adds a service. Returns: its index for Record. Not thread-safe: call before recording.
  std::size_t AddService(std::string name);

  void Record(std::size_t service, Stage stage, std::chrono::nanoseconds duration) noexcept {
    At(service, stage).Record(duration);
    if (journal_ != nullptr) Journal(service, stage, false, duration);
  }
  void RecordError(std::size_t service, Stage stage) noexcept {
    At(service, stage).RecordError();
    if (journal_ != nullptr) Journal(service, stage, true, std::chrono::nanoseconds(0));
  }
  // Also appends every sample to `journal` (null: stop). Only for a single-threaded
  // recorder: a handler child process, whose host replays the samples into its own stats.
  void SetJournal(std::vector<StageSample>* journal) noexcept { journal_ = journal; }
  // Records a sample that another process journaled.
  void Replay(const StageSample& sample) noexcept;
  // Returns: one summary per (service, stage), services in the order added.
  std::vector<StageSummary> Snapshot() const;
  // Returns: a few human lines (one per service: count, mean and max per stage, errors).
  std::vector<std::string> Describe() const;

 private:
  struct ServiceStages {
    std::string name;
    std::array<StageAggregate, kStageCount> stages;
  };
  StageAggregate& At(std::size_t service, Stage stage) noexcept {
    return services_[service].stages[static_cast<std::size_t>(stage)];
  }
  void Journal(std::size_t service, Stage stage, bool error, std::chrono::nanoseconds duration) noexcept;

  std::deque<ServiceStages> services_;  // deque: atomics never move
  std::vector<StageSample>* journal_ = nullptr;
};

// Measures one stage at a time with steady_clock: Lap(stage) records the time since the
// previous lap (or construction) against `stage`.
class StageTimer {
 public:
  StageTimer(StageStats& stats, std::size_t service)
      : stats_(stats), service_(service), last_(std::chrono::steady_clock::now()) {}
  void Lap(Stage stage) noexcept { LapAt(stage, std::chrono::steady_clock::now()); }
  void LapAt(Stage stage, std::chrono::steady_clock::time_point now) noexcept {
    stats_.Record(service_, stage, now - last_);
    last_ = now;
  }
  void Fail(Stage stage) noexcept { stats_.RecordError(service_, stage); }
  void Restart() noexcept { last_ = std::chrono::steady_clock::now(); }

 private:
  StageStats& stats_;
  std::size_t service_;
  std::chrono::steady_clock::time_point last_;
};

}  // namespace courier::detail
