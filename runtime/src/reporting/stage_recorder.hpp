// stage_recorder.hpp — per-(service, stage) cumulative timings with the protocol's
// log-bucket histogram, for processes that have no aggregate of their own yet (the broker's
// queue_wait/dispatch, the client's encode/seal/round_trip). Totals() is the snapshot
// provider a MetricsReporter wants:
//
//   detail::StageRecorder stages;
//   MetricsReporter metrics(options, [&stages] { return stages.Totals(); });
//   stages.Record("echo", "round_trip", elapsed);
//
// Memory is bounded: at most kMaxSeries (service, stage) pairs; later ones are counted in
// overflow() and not recorded. Thread-safety: every member is safe from any thread (one
// short mutex hold per Record).
#pragma once

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "courier/reporting.hpp"

namespace courier::detail {

class StageRecorder {
 public:
  static constexpr std::size_t kMaxSeries = 4096;

  void Record(std::string_view service, std::string_view stage, std::chrono::nanoseconds duration);
  // Records several stages of one service under one lock.
  void Record(std::string_view service,
              std::initializer_list<std::pair<std::string_view, std::chrono::nanoseconds>> stages);
  void RecordError(std::string_view service, std::string_view stage);
  // Returns: cumulative totals, sorted by (service, stage).
  std::vector<StageTotals> Totals() const;
  std::uint64_t overflow() const;

 private:
  StageTotals* Series(std::string_view service, std::string_view stage);
  void AddLocked(std::string_view service, std::string_view stage, std::chrono::nanoseconds duration);

  // Orders (service, stage) keys as std::pair does; transparent, so a lookup by string
  // views builds no strings (Record runs several times per job on a client).
  struct SeriesLess {
    using is_transparent = void;
    template <class A, class B>
    bool operator()(const A& a, const B& b) const {
      const std::string_view a_service = a.first;
      const std::string_view b_service = b.first;
      if (a_service != b_service) return a_service < b_service;
      return std::string_view(a.second) < std::string_view(b.second);
    }
  };

  mutable std::mutex mutex_;
  std::map<std::pair<std::string, std::string>, StageTotals, SeriesLess> series_;
  std::uint64_t overflow_ = 0;
};

}  // namespace courier::detail
