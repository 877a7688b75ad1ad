// report_buffer.hpp — the bounded buffer between Report() callers and the reporter's actor.
//
// Push never blocks on anything but a short mutex hold: when `limit` reports are already
// buffered the report is dropped and counted. Take hands the actor the next batch together
// with the drop count accumulated since the previous Take, which the batch then reports.
// Thread-safety: every member is safe from any thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <utility>
#include <vector>

#include "courier/reporting.hpp"

namespace courier::detail {

class ReportBuffer {
 public:
  explicit ReportBuffer(std::size_t limit) : limit_(limit) {}

  // Returns: false if the buffer was full (the report is dropped and counted).
  bool Push(ErrorReport&& report) noexcept;

  struct Batch {
    std::vector<ErrorReport> reports;
    std::vector<std::chrono::steady_clock::time_point> pushed_at;  // when each report was Pushed
    std::uint64_t dropped = 0;  // drops to announce with this batch
  };
  // Removes up to `max_reports` reports (at least one if any is buffered, however large)
  // whose estimated size stays within `max_bytes`, and the pending drop count.
  Batch Take(std::size_t max_reports, std::size_t max_bytes);
  // A batch was refused for good: counts its `lost` reports as dropped and puts the drop
  // count it was carrying (`unannounced`) back, so both are announced with the next batch.
  void AddDropped(std::uint64_t lost, std::uint64_t unannounced = 0) noexcept;

  std::size_t size() const;
  // Drops not yet handed out by Take.
  std::uint64_t pending_dropped() const;
  // Drops since construction.
  std::uint64_t total_dropped() const;

  // Returns: an estimate of the report's encoded size, in bytes.
  static std::size_t EstimateBytes(const ErrorReport& report) noexcept;

 private:
  const std::size_t limit_;
  mutable std::mutex mutex_;
  std::deque<std::pair<ErrorReport, std::chrono::steady_clock::time_point>> reports_;
  std::uint64_t pending_dropped_ = 0;
  std::uint64_t total_dropped_ = 0;
};

}  // namespace courier::detail
