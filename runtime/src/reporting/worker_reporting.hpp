// worker_reporting.hpp — plugs the reporters into the worker host (header-only, so it is
// compiled only where the host includes it).
//
// In WorkerHost::Impl (runtime/src/plugin/worker_host.cpp):
//   std::unique_ptr<detail::ErrorReporter> reporter;          // instead of LoggingErrorReporter
//   std::unique_ptr<MetricsReporter> metrics;
//   ...in Run(), before the pool starts:
//   ReporterOptions reporting = detail::WorkerReporterOptions(options.brokers, options.instance, options.curve);
//   reporter = std::make_unique<detail::SinkErrorReporter>(reporting);
//   metrics = std::make_unique<MetricsReporter>(reporting, [this] { return detail::ToStageTotals(stats.Snapshot()); });
//   ...after the drain (so the last failures and timings go out), reset metrics, then reporter.
//
// Thread-safety: SinkErrorReporter::Report is safe from any thread and never blocks.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "../plugin/error_reporter.hpp"
#include "courier/reporting.hpp"
#include "courier/worker.hpp"

namespace courier::detail {

// Returns: reporter settings for a worker host serving `brokers` as `instance`, with the
// host's CURVE settings (the reporters connect to the same brokers with the same key).
inline ReporterOptions WorkerReporterOptions(std::vector<std::string> brokers, std::string instance,
                                             CurveOptions curve = {}) {
  ReporterOptions options;
  options.brokers = std::move(brokers);
  options.reporter = "worker";
  options.instance = std::move(instance);
  options.curve = std::move(curve);
  return options;
}

// The worker host's ErrorReporter that ships every record to courier.errors.
class SinkErrorReporter final : public ErrorReporter {
 public:
  explicit SinkErrorReporter(ReporterOptions options) : sender_(std::move(options)) {}

  void Report(const ErrorRecord& record) noexcept override {
    try {
      ErrorReport report;
      report.time_ms = record.at_ms;
      report.service = record.service;
      report.job_id = record.job_id;
      report.attempt = record.attempt;
      report.trace_id = record.trace_id;
      report.stage = std::string(ToString(record.stage));
      report.code = record.code;
      report.message = record.message;
      report.broker = record.broker;
      report.sender = record.sender;
      sender_.Report(std::move(report));
    } catch (...) {
      // Reporting never takes down the job path; the sender counts what it loses.
    }
  }

  ErrorReportSender& sender() { return sender_; }

 private:
  ErrorReportSender sender_;
};

// Returns: the host's cumulative stage summaries as the metrics reporter wants them.
inline std::vector<StageTotals> ToStageTotals(const std::vector<StageSummary>& summaries) {
  std::vector<StageTotals> out;
  out.reserve(summaries.size());
  for (const StageSummary& summary : summaries) {
    StageTotals totals;
    totals.service = summary.service;
    totals.stage = std::string(ToString(summary.stage));
    totals.count = summary.count;
    totals.errors = summary.errors;
    totals.sum_ns = static_cast<std::uint64_t>(summary.sum.count());
    totals.min_ns = static_cast<std::uint64_t>(summary.min.count());
    totals.max_ns = static_cast<std::uint64_t>(summary.max.count());
    totals.buckets = summary.buckets;
    out.push_back(std::move(totals));
  }
  return out;
}

}  // namespace courier::detail
