#include "report_buffer.hpp"

namespace courier::detail {

bool ReportBuffer::Push(ErrorReport&& report) noexcept {
  try {
    std::lock_guard lock(mutex_);
    if (reports_.size() >= limit_) {
      ++pending_dropped_;
      ++total_dropped_;
      return false;
    }
    reports_.emplace_back(std::move(report), std::chrono::steady_clock::now());
    return true;
  } catch (...) {  // out of memory: count it like an overflow
    std::lock_guard lock(mutex_);
    ++pending_dropped_;
    ++total_dropped_;
    return false;
  }
}

ReportBuffer::Batch ReportBuffer::Take(std::size_t max_reports, std::size_t max_bytes) {
  Batch batch;
  std::lock_guard lock(mutex_);
  std::size_t bytes = 0;
  while (!reports_.empty() && batch.reports.size() < max_reports) {
    const std::size_t size = EstimateBytes(reports_.front().first);
    if (!batch.reports.empty() && bytes + size > max_bytes) break;
    bytes += size;
    batch.reports.push_back(std::move(reports_.front().first));
    batch.pushed_at.push_back(reports_.front().second);
    reports_.pop_front();
  }
  batch.dropped = pending_dropped_;
  pending_dropped_ = 0;
  return batch;
}

void ReportBuffer::AddDropped(std::uint64_t lost, std::uint64_t unannounced) noexcept {
  std::lock_guard lock(mutex_);
  pending_dropped_ += lost + unannounced;
  total_dropped_ += lost;
}

std::size_t ReportBuffer::size() const {
  std::lock_guard lock(mutex_);
  return reports_.size();
}

std::uint64_t ReportBuffer::pending_dropped() const {
  std::lock_guard lock(mutex_);
  return pending_dropped_;
}

std::uint64_t ReportBuffer::total_dropped() const {
  std::lock_guard lock(mutex_);
  return total_dropped_;
}

std::size_t ReportBuffer::EstimateBytes(const ErrorReport& report) noexcept {
  // Key names and fixed-size fields come to about 200 bytes.
  return 200 + report.service.size() + report.reporter.size() + report.host.size() + report.instance.size() +
         report.stage.size() + report.message.size() + report.sender.size() + report.broker.size() +
         report.envelope.size() + report.payload.size();
}

}  // namespace courier::detail
