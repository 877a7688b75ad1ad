#include "client/timings.hpp"

#include <algorithm>

namespace courier {

void StageStats::Add(std::chrono::nanoseconds sample) {
  if (sample < std::chrono::nanoseconds(0)) sample = std::chrono::nanoseconds(0);
  if (count == 0) {
    min = sample;
    max = sample;
  } else {
    min = std::min(min, sample);
    max = std::max(max, sample);
  }
  ++count;
  sum += sample;
}

namespace detail {
namespace {

std::atomic<std::size_t> next_stripe{0};
// Picked on a thread's first record, for every table it records into.
thread_local const std::size_t local_stripe = next_stripe.fetch_add(1, std::memory_order_relaxed);

constexpr std::array<std::string_view, kTimedStageCount> kStageNames{"encode", "key", "seal",
                                                                     "round_trip", "open", "decode"};

std::uint64_t Nanoseconds(std::chrono::nanoseconds time) {
  return static_cast<std::uint64_t>(time.count() < 0 ? 0 : time.count());
}

StageStats ToStageStats(std::uint64_t count, std::uint64_t sum_ns, std::uint64_t min_ns, std::uint64_t max_ns) {
  StageStats stats;
  stats.count = count;
  stats.sum = std::chrono::nanoseconds(sum_ns);
  stats.min = std::chrono::nanoseconds(min_ns);
  stats.max = std::chrono::nanoseconds(max_ns);
  return stats;
}

}  // namespace

void TimingTable::Aggregate::Add(std::uint64_t ns) {
  min_ns = count == 0 ? ns : std::min(min_ns, ns);
  max_ns = std::max(max_ns, ns);
  ++count;
  sum_ns += ns;
  if (!buckets) buckets = std::make_unique<std::array<std::uint64_t, kLatencyBuckets>>();
  ++(*buckets)[LatencyBucket(ns)];
}

void TimingTable::Aggregate::MergeInto(Aggregate& into) const {
  if (count == 0) return;
  into.min_ns = into.count == 0 ? min_ns : std::min(into.min_ns, min_ns);
  into.max_ns = std::max(into.max_ns, max_ns);
  into.count += count;
  into.sum_ns += sum_ns;
  if (!buckets) return;
  if (!into.buckets) into.buckets = std::make_unique<std::array<std::uint64_t, kLatencyBuckets>>();
  for (std::size_t i = 0; i < kLatencyBuckets; ++i) (*into.buckets)[i] += (*buckets)[i];
}

TimingTable::Stripe& TimingTable::LocalStripe() { return stripes_[local_stripe % kStripes]; }

TimingTable::Row& TimingTable::StripeRow(Rows& rows, std::string_view service) {
  if (auto it = rows.find(service); it != rows.end()) return it->second;
  const bool full = rows_made_.fetch_add(1, std::memory_order_relaxed) >= kMaxRows;
  return rows.try_emplace(std::string(full ? kOther : service)).first->second;
}

void TimingTable::Record(std::string_view service, TimedStage stage, std::chrono::nanoseconds time) {
  Stripe& stripe = LocalStripe();
  std::lock_guard lock(stripe.mutex);
  StripeRow(stripe.rows, service).stages[static_cast<std::size_t>(stage)].Add(Nanoseconds(time));
}

void TimingTable::RecordSubmit(std::string_view service, std::chrono::nanoseconds encode, std::chrono::nanoseconds key,
                               std::chrono::nanoseconds seal) {
  Stripe& stripe = LocalStripe();
  std::lock_guard lock(stripe.mutex);
  Row& row = StripeRow(stripe.rows, service);
  row.stages[static_cast<std::size_t>(TimedStage::kEncode)].Add(Nanoseconds(encode));
  row.stages[static_cast<std::size_t>(TimedStage::kKey)].Add(Nanoseconds(key));
  row.stages[static_cast<std::size_t>(TimedStage::kSeal)].Add(Nanoseconds(seal));
}

void TimingTable::RecordOutcome(std::string_view service, bool ok) {
  Stripe& stripe = LocalStripe();
  std::lock_guard lock(stripe.mutex);
  Row& row = StripeRow(stripe.rows, service);
  ++(ok ? row.ok : row.failed);
}

TimingTable::Rows TimingTable::Merged() const {
  Rows merged;
  for (const Stripe& stripe : stripes_) {
    std::lock_guard lock(stripe.mutex);
    for (const auto& [name, row] : stripe.rows) {
      auto it = merged.find(name);
      if (it == merged.end()) it = merged.try_emplace(merged.size() >= kMaxServices ? std::string(kOther) : name).first;
      Row& into = it->second;
      for (std::size_t i = 0; i < kTimedStageCount; ++i) row.stages[i].MergeInto(into.stages[i]);
      into.ok += row.ok;
      into.failed += row.failed;
    }
  }
  return merged;
}

std::vector<ServiceTimings> TimingTable::Snapshot() const {
  std::vector<ServiceTimings> out;
  for (const auto& [name, merged] : Merged()) {
    const Row& row = merged;  // a structured binding cannot be captured (C++20 before P1091 in clang)
    ServiceTimings& timings = out.emplace_back();
    timings.service = name;
    const auto stats = [&row](TimedStage stage) {
      const Aggregate& a = row.stages[static_cast<std::size_t>(stage)];
      return ToStageStats(a.count, a.sum_ns, a.min_ns, a.max_ns);
    };
    timings.encode = stats(TimedStage::kEncode);
    timings.seal = stats(TimedStage::kSeal);
    timings.round_trip = stats(TimedStage::kRoundTrip);
    timings.open = stats(TimedStage::kOpen);
    timings.decode = stats(TimedStage::kDecode);
    timings.ok = row.ok;
    timings.failed = row.failed;
  }
  return out;
}

std::vector<StageTotals> TimingTable::Totals() const {
  std::vector<StageTotals> out;
  for (const auto& [name, row] : Merged()) {
    const std::size_t first = out.size();
    for (std::size_t i = 0; i < kTimedStageCount; ++i) {
      const Aggregate& a = row.stages[i];
      if (a.count == 0) continue;
      StageTotals& totals = out.emplace_back();
      totals.service = name;
      totals.stage = std::string(kStageNames[i]);
      totals.count = a.count;
      totals.sum_ns = a.sum_ns;
      totals.min_ns = a.min_ns;
      totals.max_ns = a.max_ns;
      if (a.buckets) totals.buckets.assign(a.buckets->begin(), a.buckets->end());
    }
    std::sort(out.begin() + static_cast<std::ptrdiff_t>(first), out.end(),
              [](const StageTotals& a, const StageTotals& b) { return a.stage < b.stage; });
  }
  return out;
}

}  // namespace detail
}  // namespace courier
