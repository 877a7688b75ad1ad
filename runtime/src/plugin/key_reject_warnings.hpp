// key_reject_warnings.hpp — rate-limits the worker host's warning about jobs that did not
// open with its keys: at most one line per (service, key id) every `interval`, each line
// counting the jobs since the one before, so a client sealing with a key this host lacks
// neither floods the log with a line per job nor goes unmentioned.
//
//   KeyRejectWarnings warnings(std::chrono::seconds(10));
//   if (auto line = warnings.Count("echo", 1234, ErrorCode::kUnknownKey, now)) Warn(*line);
//   for (const auto& line : warnings.Due(now)) Warn(line);  // the held-back counts, later
//
// Bounded: at most kMaxTracked (service, key id) pairs; jobs under further key ids are
// counted under key id 0 (which a sealed job never carries), "other key ids".
// Thread-safety: a value; one owner thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "courier/error.hpp"

namespace courier::detail {

class KeyRejectWarnings {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr std::size_t kMaxTracked = 256;

  struct Line {
    std::string service;
    std::uint32_t key_id = 0;  // 0: jobs under key ids past kMaxTracked
    ErrorCode code = ErrorCode::kUnknownKey;  // the last failure seen (unknown_key or unauthenticated)
    std::uint64_t jobs = 0;                   // since the previous line for this pair
  };

  explicit KeyRejectWarnings(Clock::duration interval) : interval_(interval) {}

  // Counts one job of `service` sealed with `key_id` that failed to open with `code`.
  // Returns: the line to log now (this job and those held back since the last line) when
  // none was logged for the pair within the interval; nullopt when it is held back.
  std::optional<Line> Count(const std::string& service, std::uint32_t key_id, ErrorCode code, Clock::time_point now);

  // Returns: a line for every pair with held-back jobs whose interval has passed (each
  // starts a new interval). Forgets pairs quiet for a whole interval.
  std::vector<Line> Due(Clock::time_point now);

 private:
  struct Entry {
    Clock::time_point last{};  // when its last line was logged
    std::uint64_t held = 0;    // jobs counted since
    ErrorCode code = ErrorCode::kUnknownKey;
  };
  void Forget(Clock::time_point now);

  Clock::duration interval_;
  std::map<std::pair<std::string, std::uint32_t>, Entry> entries_;
};

}  // namespace courier::detail
