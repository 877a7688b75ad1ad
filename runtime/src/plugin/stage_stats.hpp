// stage_stats.hpp — per-(service, stage) timing aggregates of the worker host: count, sum,
// min, max and a log-bucket histogram of durations in nanoseconds, plus an error count.
//
// Writers are the pool threads, the I/O thread ("send", replayed child samples) and the
// error reporter's thread ("error_send"). Each writing thread records into a shard of its
// own (found through a thread_local cache, made on its first record), so recording touches
// no cache line another thread writes and takes no lock: every field is a relaxed atomic
// with a single writer. Readers (the metrics flush once a second, the shutdown summary)
// take a Snapshot(), which merges the shards: each field is read atomically, the set of
// fields is not (a snapshot may see a count without its sum for a job recorded at that
// instant; good enough for monitoring).
// Thread-safety: Record*/Snapshot from any thread. Services are added before recording.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "courier/worker.hpp"
#include "reporting/histogram.hpp"  // the protocol's log buckets

namespace courier::detail {

// One (service, stage) of one thread's shard: written by that thread only.
class StageAggregate {
 public:
  void Record(std::chrono::nanoseconds duration) noexcept;
  void RecordError() noexcept { Bump(errors_, 1); }
  // Adds this aggregate into `into` (count, errors, sum, min, max, buckets).
  void MergeInto(StageSummary& into) const;

 private:
  static void Bump(std::atomic<std::uint64_t>& field, std::uint64_t by) noexcept {
    field.store(field.load(std::memory_order_relaxed) + by, std::memory_order_relaxed);
  }

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
  StageStats();
  StageStats(const StageStats&) = delete;
  StageStats& operator=(const StageStats&) = delete;

  // Adds a service. Returns: its index for Record. Not thread-safe: call before recording.
  std::size_t AddService(std::string name);
  std::size_t services() const { return names_.size(); }

  void Record(std::size_t service, Stage stage, std::chrono::nanoseconds duration) noexcept {
    if (StageAggregate* cell = Cell(service, stage)) cell->Record(duration);
    if (journal_ != nullptr) Journal(service, stage, false, duration);
  }
  void RecordError(std::size_t service, Stage stage) noexcept {
    if (StageAggregate* cell = Cell(service, stage)) cell->RecordError();
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
  // One thread's cells: kStageCount per service known when it was made.
  struct Shard {
    std::thread::id owner;
    std::size_t services = 0;
    std::unique_ptr<StageAggregate[]> cells;
  };
  StageAggregate* Cell(std::size_t service, Stage stage) noexcept {
    Shard* shard = LocalShard(service);
    if (shard == nullptr) return nullptr;
    return &shard->cells[service * kStageCount + static_cast<std::size_t>(stage)];
  }
  // Returns: this thread's shard holding `service` (made if needed), or null when none can
  // be made (out of memory: the sample is lost, the job is not).
  Shard* LocalShard(std::size_t service) noexcept;
  Shard* FindOrMakeShard(std::size_t service) noexcept;
  void Journal(std::size_t service, Stage stage, bool error, std::chrono::nanoseconds duration) noexcept;

  const std::uint64_t id_;  // tells this instance apart in the threads' caches
  std::vector<std::string> names_;
  mutable std::mutex shards_mutex_;  // guards the list, never a cell
  std::deque<Shard> shards_;         // deque: a shard never moves once made
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
