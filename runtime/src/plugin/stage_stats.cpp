#include "stage_stats.hpp"

#include <algorithm>
#include <cstdio>

#include "wire/stages.hpp"

namespace courier {

std::string_view ToString(Stage stage) noexcept {
  // The worker's entries of the stage vocabulary, in the enum's order.
  static const std::array<std::string_view, kStageCount> kNames = [] {
    std::array<std::string_view, kStageCount> names{};
    std::size_t next = 0;
    for (const wire::StageInfo& info : wire::kStages) {
      if (info.process == "worker" && next < names.size()) names[next++] = info.name;
    }
    return names;
  }();
  const auto index = static_cast<std::size_t>(stage);
  return index < kNames.size() ? kNames[index] : "unknown";
}

namespace detail {
namespace {

std::atomic<std::uint64_t> next_stats_id{1};

// The shard this thread used last, and whose stats it belongs to.
struct LocalShardCache {
  std::uint64_t owner = 0;
  void* shard = nullptr;
  std::size_t services = 0;
};
thread_local LocalShardCache local_shard;

}  // namespace

void StageAggregate::Record(std::chrono::nanoseconds duration) noexcept {
  const auto ns = static_cast<std::uint64_t>(duration.count() < 0 ? 0 : duration.count());
  Bump(count_, 1);
  Bump(sum_, ns);
  if (ns < min_.load(std::memory_order_relaxed)) min_.store(ns, std::memory_order_relaxed);
  if (ns > max_.load(std::memory_order_relaxed)) max_.store(ns, std::memory_order_relaxed);
  Bump(buckets_[LatencyBucket(ns)], 1);
}

void StageAggregate::MergeInto(StageSummary& into) const {
  const std::uint64_t count = count_.load(std::memory_order_relaxed);
  into.errors += errors_.load(std::memory_order_relaxed);
  if (count == 0) return;
  const std::uint64_t min = min_.load(std::memory_order_relaxed);
  const std::uint64_t max = max_.load(std::memory_order_relaxed);
  into.min = std::chrono::nanoseconds(into.count == 0 ? min : std::min<std::uint64_t>(into.min.count(), min));
  into.max = std::chrono::nanoseconds(std::max<std::uint64_t>(into.max.count(), max));
  into.count += count;
  into.sum += std::chrono::nanoseconds(sum_.load(std::memory_order_relaxed));
  for (std::size_t i = 0; i < kLatencyBuckets; ++i) into.buckets[i] += buckets_[i].load(std::memory_order_relaxed);
}

StageStats::StageStats() : id_(next_stats_id.fetch_add(1, std::memory_order_relaxed)) {}

StageStats::Shard* StageStats::LocalShard(std::size_t service) noexcept {
  if (local_shard.owner == id_ && service < local_shard.services) return static_cast<Shard*>(local_shard.shard);
  return FindOrMakeShard(service);
}

StageStats::Shard* StageStats::FindOrMakeShard(std::size_t service) noexcept {
  if (service >= names_.size()) return nullptr;
  const std::thread::id self = std::this_thread::get_id();
  try {
    std::lock_guard lock(shards_mutex_);
    Shard* found = nullptr;
    for (Shard& shard : shards_) {
      // A shard of a thread that ended may be taken over by a new thread with its id: it
      // still has one writer at a time.
      if (shard.owner == self && service < shard.services) found = &shard;
    }
    if (found == nullptr) {
      Shard fresh;
      fresh.owner = self;
      fresh.services = names_.size();
      fresh.cells = std::make_unique<StageAggregate[]>(fresh.services * kStageCount);
      shards_.push_back(std::move(fresh));
      found = &shards_.back();
    }
    local_shard = LocalShardCache{id_, found, found->services};
    return found;
  } catch (...) {
    return nullptr;
  }
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
  if (sample.service >= names_.size() || static_cast<std::size_t>(sample.stage) >= kStageCount) return;
  StageAggregate* cell = Cell(sample.service, sample.stage);
  if (cell == nullptr) return;
  if (sample.error) {
    cell->RecordError();
  } else {
    cell->Record(std::chrono::nanoseconds(sample.ns));
  }
}

std::size_t StageStats::AddService(std::string name) {
  names_.push_back(std::move(name));
  return names_.size() - 1;
}

std::vector<StageSummary> StageStats::Snapshot() const {
  std::vector<StageSummary> out(names_.size() * kStageCount);
  for (std::size_t i = 0; i < out.size(); ++i) {
    out[i].service = names_[i / kStageCount];
    out[i].stage = static_cast<Stage>(i % kStageCount);
    out[i].buckets.assign(kLatencyBuckets, 0);
  }
  std::lock_guard lock(shards_mutex_);
  for (const Shard& shard : shards_) {
    for (std::size_t i = 0; i < shard.services * kStageCount && i < out.size(); ++i) shard.cells[i].MergeInto(out[i]);
  }
  return out;
}

std::vector<std::string> StageStats::Describe() const {
  const std::vector<StageSummary> summaries = Snapshot();
  std::vector<std::string> lines;
  for (std::size_t index = 0; index < names_.size(); ++index) {
    std::string line = names_[index] + ":";
    bool any = false;
    for (std::size_t i = 0; i < kStageCount; ++i) {
      const StageSummary& s = summaries[index * kStageCount + i];
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
