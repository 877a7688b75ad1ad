#include "courier/plugin.hpp"

namespace courier {

JobContext::JobContext() : deadline_ms_(NowUnixMs() + 3600 * 1000) {}

JobContext::JobContext(const Envelope& envelope)
    : job_id_(envelope.job_id),
      service_(envelope.service),
      attempt_(envelope.attempt),
      max_attempts_(envelope.max_attempts),
      deadline_ms_(envelope.deadline_ms),
      trace_id_(envelope.trace_id),
      sealed_(envelope.key_id != kUnsealedKeyId) {}

std::chrono::milliseconds JobContext::remaining() const {
  const std::uint64_t now = NowUnixMs();
  if (now >= deadline_ms_) return -std::chrono::milliseconds(now - deadline_ms_);
  return std::chrono::milliseconds(deadline_ms_ - now);
}

}  // namespace courier
