// report_codec.hpp — the payloads of report jobs (schemas/PROTOCOL.md §10, "Reports"):
// error batches for courier.errors and metrics reports for courier.metrics.
//
// Encoders write string-keyed MessagePack maps (reports are rare; readable beats fast).
// Decoders take a decoded payload Value (the worker host already applied DecodeLimits),
// ignore keys they do not know, and throw Error(kInvalidPayload) naming the first field
// that has the wrong type or range, so a hostile reporter gets a clear error reply.
// Thread-safety: plain functions.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "courier/reporting.hpp"
#include "courier/value.hpp"
#include "histogram.hpp"

namespace courier::detail {

// {"reports": [report, ...], "dropped": uint} plus, optionally, who sent the batch.
struct ErrorBatch {
  std::vector<ErrorReport> reports;
  std::uint64_t dropped = 0;  // reports the sender lost since its previous batch
  std::string reporter;       // optional batch-level sender identity (may be empty)
  std::string host;
  std::uint64_t pid = 0;
  std::string instance;
};

// Limits a decoder enforces on what it accepts.
inline constexpr std::size_t kMaxReportsPerBatch = 100000;
inline constexpr std::size_t kMaxMessageBytes = 64 * 1024;  // longer messages are cut

std::string EncodeErrorBatch(const ErrorBatch& batch);
Value ErrorReportToValue(const ErrorReport& report);
// Throws: Error(kInvalidPayload).
ErrorBatch DecodeErrorBatch(const Value& payload);
ErrorReport ErrorReportFromValue(const Value& report);

// One (service, stage) over one interval.
struct StageInterval {
  std::string service;
  std::string stage;
  std::uint64_t count = 0;
  std::uint64_t errors = 0;
  std::uint64_t sum_ns = 0;
  std::uint64_t min_ns = 0;
  std::uint64_t max_ns = 0;
  SparseBuckets buckets;
};

struct MetricsReport {
  std::string process;  // "client", "broker" or "worker"
  std::string host;
  std::uint64_t pid = 0;
  std::string instance;
  std::uint64_t interval_ms = 0;
  std::vector<StageInterval> stages;
};

inline constexpr std::size_t kMaxStagesPerReport = 100000;

std::string EncodeMetricsReport(const MetricsReport& report);
// Throws: Error(kInvalidPayload).
MetricsReport DecodeMetricsReport(const Value& payload);

// Returns: this machine's host name ("unknown" if it has none).
std::string LocalHostName();

}  // namespace courier::detail
