// report_codec.hpp — the payloads of report jobs (schemas/PROTOCOL.md §10, "Reports"):
// error batches for courier.errors and metrics reports for courier.metrics.
//
// Encoders write string-keyed MessagePack maps (reports are rare; readable beats fast).
// Decoders take a decoded payload Value (the worker host already applied DecodeLimits),
// ignore keys they do not know, and throw Error(kInvalidPayload) naming the first field
// that has the wrong type or range, so a hostile reporter gets a clear error reply.
// Thread-safety: plain functions.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
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

// ---- Plausibility (issue 15: reports are hostile input) -------------------------------
//
// The decoders above check types and sizes; the checks below decide whether a decoded
// report may change any figure. Anyone who reaches a broker can send reports (brokers'
// reports are unsealed), so every field is checked before it is applied:
//
//   error batch   refused (Error kInvalidPayload) when `dropped` exceeds
//                 max_dropped_per_batch, a `reporter` or `stage` is not a name (below), or
//                 a pid exceeds kMaxPid; repaired and counted as clamped otherwise: a
//                 time_ms outside [now - max_age_ms, now + max_skew_ms] becomes the arrival
//                 time, invalid UTF-8 and control characters in service, host, instance,
//                 sender, broker and message become U+FFFD (message keeps \n and \t).
//                 Error reports are repaired rather than refused, so a real failure is never
//                 lost to a cosmetic fault.
//   metrics report refused when `process` is not a name, host or instance is not clean text
//                 (UTF-8, no control characters, <= 255 bytes) or the pid exceeds kMaxPid;
//                 otherwise each stage entry is kept or dropped on its own. A stage is
//                 dropped when: its stage is not a name; its service is not clean text; count
//                 or errors exceed max_rate_per_second x the interval (interval_ms, counted as
//                 at least 1 s and at most max_interval_ms); count is 0 but a duration or
//                 bucket is set; min > max; max > max_sample_ns; sum_ns is outside
//                 [count x min, count x max]; the buckets are non-empty and do not add up to
//                 count, or hold an index outside [bucket(min), bucket(max)].
//                 Dropping a stage (not the whole report) matters: the reporter's next report
//                 covers a refused one again, so a refusal would repeat for ever.
//
// A name is 1..64 bytes of [A-Za-z0-9_.-]. Thread-safety: plain functions.
inline constexpr std::uint64_t kMaxPid = 0x7fffffff;

struct ReportLimits {
  std::uint64_t max_sample_ns = 3'600'000'000'000;        // one stage sample: 1 h
  std::uint64_t max_rate_per_second = 1'000'000;          // per stage, completions (and errors)
  std::uint64_t max_interval_ms = 7ull * 24 * 3600 * 1000;  // a report's interval counts at most 7 days
  std::uint64_t max_dropped_per_batch = 100'000'000;      // lost reports one batch may announce
  std::uint64_t max_age_ms = 30ull * 24 * 3600 * 1000;    // oldest plausible failure time: 30 days
  std::uint64_t max_skew_ms = 10 * 60 * 1000;             // latest: 10 minutes ahead of the receiver
};

struct ReportVerdict {
  std::size_t clamped = 0;   // error batches: reports (and the batch header) with a repaired field
  std::size_t dropped = 0;   // metrics reports: stage entries dropped
  std::string problem;       // the first thing found wrong, for logs and replies ("" if none)
};

// Repairs `batch` in place (see above). Returns: what was repaired.
// Throws: Error(kInvalidPayload) naming the field, for a batch that must be refused.
ReportVerdict CheckErrorBatch(ErrorBatch& batch, std::uint64_t now_ms, const ReportLimits& limits = {});
// Removes the implausible stage entries of `report` (see above). Returns: what was dropped.
// Throws: Error(kInvalidPayload) naming the field, for a report that must be refused.
ReportVerdict CheckMetricsReport(MetricsReport& report, const ReportLimits& limits = {});

// Returns: whether `text` is well-formed UTF-8 (no overlongs, surrogates or > U+10FFFF).
bool IsValidUtf8(std::string_view text) noexcept;
// Returns: whether `text` is a name: 1..64 bytes of [A-Za-z0-9_.-].
bool IsReportName(std::string_view text) noexcept;
// Replaces each byte of invalid UTF-8 and each control character (C0, DEL, C1; but \n and
// \t when `keep_newlines`) by U+FFFD. Returns: whether anything was replaced.
bool RepairText(std::string& text, bool keep_newlines = false);

// Rate-limits log lines about garbage reports: at most one per `period`.
// Thread-safety: safe from any thread.
class ReportLogGate {
 public:
  explicit ReportLogGate(std::chrono::milliseconds period = std::chrono::seconds(1)) : period_(period) {}
  // Returns: std::nullopt to stay quiet; otherwise how many lines were held back since the
  // last one allowed.
  std::optional<std::uint64_t> Allow();

 private:
  const std::chrono::milliseconds period_;
  std::mutex mutex_;
  std::chrono::steady_clock::time_point last_{};
  bool logged_ = false;
  std::uint64_t suppressed_ = 0;
};

}  // namespace courier::detail
