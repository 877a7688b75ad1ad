// error_reporter.hpp — where the worker host sends a record of every failed job.
//
// The reporting area's reporter (reporting/worker_reporting.hpp) ships records to the
// error sink (courier.errors) without blocking the job path; LoggingErrorReporter, the
// host's default until that reporter is installed, writes them to the log, rate-limited
// so hostile input cannot flood it (suppressed records are counted and logged).
// Thread-safety: Report is called from every pool thread and the I/O thread; implementations
// must be thread-safe and must not throw.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "courier/error.hpp"
#include "courier/job.hpp"
#include "courier/log.hpp"
#include "courier/worker.hpp"

namespace courier::detail {

struct ErrorRecord {
  JobId job_id;
  std::string service;
  std::string broker;          // endpoint the job came from
  std::string sender;          // the submitter's transport key name, as the broker said ("" unknown)
  std::uint32_t attempt = 0;
  std::array<std::uint8_t, 16> trace_id{};
  Stage stage = Stage::kOpen;  // where it failed
  ErrorCode code = ErrorCode::kInternal;
  std::string message;         // what the client was told
  std::uint64_t at_ms = 0;     // Unix time
};

class ErrorReporter {
 public:
  virtual ~ErrorReporter() = default;
  virtual void Report(const ErrorRecord& record) noexcept = 0;
};

class LoggingErrorReporter final : public ErrorReporter {
 public:
  LoggingErrorReporter();
  void Report(const ErrorRecord& record) noexcept override;

 private:
  std::mutex mutex_;
  RateLimiter limiter_;
};

}  // namespace courier::detail
