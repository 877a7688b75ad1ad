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

ServiceTimings& TimingTable::Row(std::string_view service) {
  auto it = rows_.find(service);
  if (it != rows_.end()) return it->second;
  const bool full = rows_.size() >= kMaxServices;
  const std::string_view name = full ? kOther : service;
  it = rows_.find(name);
  if (it == rows_.end()) {
    it = rows_.emplace(std::string(name), ServiceTimings{}).first;
    it->second.service = std::string(name);
  }
  return it->second;
}

namespace {
std::string_view StageName(TimedStage stage) {
  switch (stage) {
    case TimedStage::kEncode: return "encode";
    case TimedStage::kKey: return "key";
    case TimedStage::kSeal: return "seal";
    case TimedStage::kRoundTrip: return "round_trip";
    case TimedStage::kOpen: return "open";
    case TimedStage::kDecode: return "decode";
  }
  return "unknown";
}
}  // namespace

void TimingTable::Record(std::string_view service, TimedStage stage, std::chrono::nanoseconds time) {
  recorder_.Record(service, StageName(stage), time);
  if (stage == TimedStage::kKey) return;
  std::lock_guard lock(mutex_);
  ServiceTimings& row = Row(service);
  switch (stage) {
    case TimedStage::kKey: break;
    case TimedStage::kEncode: row.encode.Add(time); break;
    case TimedStage::kSeal: row.seal.Add(time); break;
    case TimedStage::kRoundTrip: row.round_trip.Add(time); break;
    case TimedStage::kOpen: row.open.Add(time); break;
    case TimedStage::kDecode: row.decode.Add(time); break;
  }
}

void TimingTable::RecordSubmit(std::string_view service, std::chrono::nanoseconds encode, std::chrono::nanoseconds key,
                               std::chrono::nanoseconds seal) {
  recorder_.Record(service, {{StageName(TimedStage::kEncode), encode},
                             {StageName(TimedStage::kKey), key},
                             {StageName(TimedStage::kSeal), seal}});
  std::lock_guard lock(mutex_);
  ServiceTimings& row = Row(service);
  row.encode.Add(encode);
  row.seal.Add(seal);
}

void TimingTable::RecordOutcome(std::string_view service, bool ok) {
  std::lock_guard lock(mutex_);
  ServiceTimings& row = Row(service);
  ++(ok ? row.ok : row.failed);
}

std::vector<ServiceTimings> TimingTable::Snapshot() const {
  std::lock_guard lock(mutex_);
  std::vector<ServiceTimings> rows;
  rows.reserve(rows_.size());
  for (const auto& [name, row] : rows_) rows.push_back(row);
  return rows;
}

}  // namespace detail
}  // namespace courier
