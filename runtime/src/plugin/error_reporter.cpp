#include "error_reporter.hpp"

#include <spdlog/spdlog.h>

namespace courier::detail {

LoggingErrorReporter::LoggingErrorReporter() : limiter_(50, std::chrono::seconds(1)) {}

void LoggingErrorReporter::Report(const ErrorRecord& record) noexcept {
  try {
    std::size_t suppressed = 0;
    {
      std::lock_guard lock(mutex_);
      if (!limiter_.Allow()) return;
      suppressed = limiter_.TakeSuppressed();
    }
    if (suppressed > 0) spdlog::warn("{} job error records suppressed by the rate limit", suppressed);
    spdlog::warn("job {} service={} stage={} attempt={} broker={}: {}: {}", record.job_id.Hex(),
                 record.service, ToString(record.stage), record.attempt, record.broker,
                 ToString(record.code), record.message);
  } catch (...) {
    // Reporting must never take down the job path.
  }
}

}  // namespace courier::detail
