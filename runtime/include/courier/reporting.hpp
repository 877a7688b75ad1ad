// courier/reporting.hpp — how a Courier process tells the error sink (courier.errors) about
// failures and the metrics collector (courier.metrics) about stage timings, without ever
// blocking the job path.
//
//   courier::ReporterOptions options;                       // local broker, unsealed reports
//   options.reporter = "worker";
//   courier::ErrorReportSender errors(options);
//   errors.Report({.service = "resize", .stage = "handle",
//                  .code = courier::ErrorCode::kHandlerError, .message = "image too wide"});
//
//   courier::MetricsReporter metrics(options, [&] { return my_stage_totals(); });
//
// Both speak the Reports section of schemas/PROTOCOL.md: each owns one background actor
// thread with one DEALER per broker, submits mode-1 (send) CRC01 jobs, and waits for the
// broker's ACCEPT; when no broker answers it retries with exponential backoff (and tries the
// next broker) while the job's deadline allows.
//
// ErrorReportSender: Report() copies the report into a bounded buffer (default 10000
// reports) and returns at once; it never blocks on I/O and never throws. When the buffer is
// full the report is dropped and counted, and the count travels in the next batch's
// "dropped" field, so the sink knows how many it never saw. The actor sends a batch (at most
// batch_limit reports) whenever flush_interval passed (default 1 s, the protocol's period)
// or a full batch is waiting, one batch in flight at a time; at most buffer_limit reports
// wait besides the batch in flight. Batches the broker refuses for good (or whose deadline
// passes) are counted as dropped too.
//
// MetricsReporter: once per interval (default 1 s) calls the snapshot provider, which returns
// CUMULATIVE totals per (service, stage) (as courier::WorkerHost::StageSnapshot() does), and
// sends the difference since the last accepted report as ONE metrics report. Nothing is lost
// when a report cannot be delivered: the next one covers the longer interval. A stage whose
// cumulative min/max did not move in an interval reports its interval min/max from the
// histogram buckets (clamped to the cumulative bounds): exact to one bucket (about 19%).
//
// Reports are sent unsealed (key_id 0) unless ReporterOptions::keyring is set; the error
// sink and the collector accept both (allow_unsealed = true).
//
// Shutdown: the destructor keeps delivering what is buffered for at most stop_timeout
// (default 1 s), then stops and joins the actor; reports still buffered then are lost and
// logged with their count.
//
// Thread-safety: Report(), counters() and Flush() are safe from any thread. Construct and
// destroy an instance on one thread. The snapshot provider runs on the reporter's own
// thread and must be thread-safe with respect to the code that records the timings.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "courier/curve.hpp"
#include "courier/error.hpp"
#include "courier/job.hpp"
#include "courier/keyring.hpp"

namespace courier {

// One failure, as the error sink stores it (PROTOCOL.md §10.1). Fields left empty by the
// caller (time, reporter, host, pid, instance) are filled in by ErrorReportSender.
struct ErrorReport {
  std::uint64_t time_ms = 0;         // Unix ms of the failure; 0 = now
  std::string service;               // the job's service ("" if none)
  JobId job_id;                      // all zero if there was no job
  std::uint32_t attempt = 0;
  std::uint32_t max_attempts = 0;
  std::array<std::uint8_t, 16> trace_id{};
  std::string reporter;              // "broker", "worker" or "client"; "" = the sender's
  std::string host;                  // "" = this host
  std::uint64_t pid = 0;             // 0 = this process
  std::string instance;              // "" = the sender's instance
  std::string stage;                 // queue, dispatch, open, parse, verify, handle, ...
  ErrorCode code = ErrorCode::kInternal;
  std::string message;               // human text; never payload content
  std::string sender;                // transport key name (§13), or ""
  std::string broker;                // endpoint the job came through, or "" (optional key)
  std::string envelope;              // dead letters only: original envelope bytes
  std::string payload;               // dead letters only: still-sealed payload bytes
};

struct ReporterOptions {
  // Brokers to submit to, tried in order and failed over. Default: the local broker.
  std::vector<std::string> brokers = {"tcp://127.0.0.1:5555"};
  // Who is reporting: "worker", "client" or "broker" (the "reporter"/"process" field).
  std::string reporter = "worker";
  // This process's name in reports. Default "" = "HOST:PID".
  std::string instance;
  // Seal reports with this keyring's active key. Default none: unsealed (key_id 0).
  std::shared_ptr<const Keyring> keyring;
  // CurveZMQ on the reporter's broker sockets (courier/curve.hpp). Default off. The key
  // pair is loaded at construction (Error(kConfig) if the file is missing or loose).
  CurveOptions curve;
  // Error reports held while no broker takes them (PROTOCOL.md default 10000); past it,
  // reports are dropped and counted.
  std::size_t buffer_limit = 10000;
  // Most reports per error batch (one job), and most bytes of report text per batch.
  std::size_t batch_limit = 500;
  std::size_t batch_bytes = 1024 * 1024;
  // How often buffered error reports are flushed (a full batch goes at once). Default 1 s,
  // the period PROTOCOL.md §10 allows.
  std::chrono::milliseconds flush_interval{1000};
  // How often metrics are reported. Default 1 s (the protocol's minimum period).
  std::chrono::milliseconds metrics_interval{1000};
  // How long to wait for a broker's ACCEPT before trying again (next broker). Default 1 s.
  std::chrono::milliseconds accept_timeout{1000};
  // Retry backoff: retry_initial doubling to retry_max, each ±50% jitter. 100 ms .. 5 s.
  std::chrono::milliseconds retry_initial{100};
  std::chrono::milliseconds retry_max{5000};
  // Deadline written in each error batch's envelope: how long a batch may wait in a
  // broker queue for the sink. Default 24 h (as the broker's dead letters).
  std::chrono::milliseconds error_deadline{24 * 3600 * 1000};
  // The same for metrics reports: stale metrics are worthless. Default 60 s.
  std::chrono::milliseconds metrics_deadline{60000};
  // How long destruction keeps trying to deliver what is buffered. Default 1 s.
  std::chrono::milliseconds stop_timeout{1000};
  // ErrorReportSender only: called on its thread for every report in a batch a broker
  // accepted, with the report's service and the time from Report() to that ACCEPT (the
  // error path's "error_send" stage). Must be quick and must not throw. Default none.
  std::function<void(std::string_view service, std::chrono::nanoseconds waited)> delivered;
};

// What a reporter did so far (all totals since construction, except buffered).
struct ReporterCounters {
  std::uint64_t reported = 0;   // reports handed to Report() (or metrics reports built)
  std::uint64_t sent = 0;       // reports in batches a broker accepted
  std::uint64_t dropped = 0;    // reports lost: buffer overflow or batches refused for good
  std::uint64_t batches = 0;    // jobs a broker accepted
  std::uint64_t retries = 0;    // resubmissions after a timeout or a retryable error
  std::size_t buffered = 0;     // reports waiting now (including the batch in flight)
};

class ErrorReportSender {
 public:
  // Starts the actor thread; brokers need not be up. Throws: Error(kConfig) for empty
  // brokers or a zero limit.
  explicit ErrorReportSender(ReporterOptions options);
  // Delivers what it can within stop_timeout, then joins the actor. noexcept.
  ~ErrorReportSender();
  ErrorReportSender(const ErrorReportSender&) = delete;
  ErrorReportSender& operator=(const ErrorReportSender&) = delete;

  // Queues `report` for the sink. Returns: false if the buffer was full (the report is
  // dropped and counted). Never blocks on I/O, never throws.
  bool Report(ErrorReport report) noexcept;

  ReporterCounters counters() const;
  // Waits until everything reported so far was accepted by a broker or dropped.
  // Returns: whether that happened within `timeout`.
  bool Flush(std::chrono::milliseconds timeout);

  const ReporterOptions& options() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Cumulative timings of one stage of one service, as a process has recorded them since it
// started. Durations in nanoseconds.
struct StageTotals {
  std::string service;
  std::string stage;
  std::uint64_t count = 0;   // completed the stage
  std::uint64_t errors = 0;  // failed in it
  std::uint64_t sum_ns = 0;
  std::uint64_t min_ns = 0;
  std::uint64_t max_ns = 0;
  // Dense log-bucket histogram (PROTOCOL.md §10.2): buckets[i] counts durations whose
  // bucket index is i. May be shorter than 252 or empty (then no percentiles).
  std::vector<std::uint64_t> buckets;
};

// Returns: cumulative totals now. Called on the reporter's thread; may throw (logged).
using StageSnapshotFn = std::function<std::vector<StageTotals>()>;

class MetricsReporter {
 public:
  // Starts the actor thread. Throws: Error(kConfig) for empty brokers or no provider.
  MetricsReporter(ReporterOptions options, StageSnapshotFn snapshot);
  // Sends a last report (within stop_timeout), then joins the actor. noexcept.
  ~MetricsReporter();
  MetricsReporter(const MetricsReporter&) = delete;
  MetricsReporter& operator=(const MetricsReporter&) = delete;

  ReporterCounters counters() const;
  // Takes a snapshot now and waits until every change seen so far was accepted.
  // Returns: whether that happened within `timeout`.
  bool Flush(std::chrono::milliseconds timeout);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace courier
