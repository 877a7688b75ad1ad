// reports.hpp — what the broker itself tells courier.errors and courier.metrics, built on
// the runtime's report codec (schemas/PROTOCOL.md §10): dead letters, and its own stage
// timings (wire/stages.hpp; queue_wait: queued → dispatched; lb_strategy: choosing a worker;
// dispatch: dispatched → answered by the worker; lb_monitor: one heartbeat and expiry pass,
// reported under service "*" since it covers them all).
// Single-threaded, like the broker loop that owns it.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "courier/error.hpp"
#include "courier/job.hpp"
#include "courier/reporting.hpp"
#include "reporting/stage_delta.hpp"

namespace courier::broker {

// How long a dead letter may wait for courier.errors to appear.
inline constexpr std::uint64_t kDeadLetterLifetimeMs = 24ULL * 3600 * 1000;
// How long a metrics report may wait for courier.metrics: stale metrics are worthless.
inline constexpr std::uint64_t kMetricsLifetimeMs = 60ULL * 1000;

struct DeadLetterInput {
  std::string_view service;
  JobId job_id;
  std::uint32_t attempt = 0;
  std::uint32_t max_attempts = 0;
  ErrorCode code = ErrorCode::kAttemptsExhausted;
  std::string_view message;
  std::string_view envelope;  // original wire bytes
  std::string_view payload;   // still sealed
  std::uint64_t time_ms = 0;
  std::string_view sender;    // the submitter's CURVE key name, or ""
};

// Returns: an error batch holding one dead letter (reporter "broker", stage "dispatch").
std::string EncodeDeadLetter(const DeadLetterInput& input, std::string_view instance);

// Returns: a QUERY_REPLY body [code, message] for a failed query.
std::string EncodeQueryFailure(ErrorCode code, std::string_view message);

enum class BrokerStage : std::uint8_t { kQueueWait, kDispatch, kLbStrategy };
inline constexpr std::size_t kBrokerStages = 3;
// Returns: the stage's wire name ("queue_wait", "dispatch", "lb_strategy").
std::string_view ToString(BrokerStage stage) noexcept;
// The service name lb_monitor is reported under.
inline constexpr std::string_view kAllServices = "*";

// Cumulative timings per service and broker stage; becomes one metrics report a second.
class BrokerTimings {
 public:
  // `service` is the broker's service slot; a slot reused under another name starts over.
  void Record(std::uint32_t service, std::string_view name, BrokerStage stage,
              std::chrono::steady_clock::duration duration);
  void RecordError(std::uint32_t service, std::string_view name, BrokerStage stage);
  // Records one heartbeat and expiry pass (lb_monitor).
  void RecordMonitor(std::chrono::steady_clock::duration duration);
  // Forgets a pruned service's timings (its slot may be reused under another name).
  void Forget(std::uint32_t service);
  // Returns: the report of what changed since the last Commit, or "" if nothing did.
  std::string BuildReport(std::string_view instance, std::uint64_t interval_ms);
  // Makes the totals BuildReport saw the new baseline (call once the report is queued).
  void Commit();

 private:
  StageTotals& At(std::uint32_t service, std::string_view name, BrokerStage stage);

  // By service slot; allocated on a service's first timing and freed when it is pruned, so
  // a table once filled by thousands of services (a hostile flood) does not stay resident.
  std::vector<std::unique_ptr<std::array<StageTotals, kBrokerStages>>> totals_;
  StageTotals monitor_;
  detail::StageDelta delta_;
  std::vector<StageTotals> pending_;
};

}  // namespace courier::broker
