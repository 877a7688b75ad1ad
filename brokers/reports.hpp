// reports.hpp — MessagePack bodies the broker writes itself: dead-letter reports for
// courier.errors and management query replies (schemas/PROTOCOL.md, "Reports" and
// "Management queries"). Maps are used on purpose: these are rare and readable beats fast.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "courier/error.hpp"
#include "courier/job.hpp"

namespace courier::broker {

// How long a dead letter may wait for courier.errors to appear.
inline constexpr std::uint64_t kDeadLetterLifetimeMs = 24ULL * 3600 * 1000;

struct DeadLetterInput {
  std::string service;
  JobId job_id;
  std::uint32_t attempt = 0;
  std::uint32_t max_attempts = 0;
  ErrorCode code = ErrorCode::kAttemptsExhausted;
  std::string message;
  std::string_view envelope;  // original wire bytes
  std::string_view payload;   // still sealed
  std::uint64_t time_ms = 0;
};

// Returns: {"reports": [report], "dropped": 0} for one dead-lettered job.
std::string EncodeDeadLetterReport(const DeadLetterInput& input);

// Returns: a QUERY_REPLY body [code, message] for a failed query.
std::string EncodeQueryFailure(ErrorCode code, std::string_view message);

}  // namespace courier::broker
