#include "reports.hpp"

#include <unistd.h>

#include <algorithm>
#include <msgpack.hpp>

#include "courier/codec.hpp"

#include "envelope_codec.hpp"
#include "reporting/histogram.hpp"
#include "reporting/report_codec.hpp"

namespace courier::broker {

std::string EncodeDeadLetter(const DeadLetterInput& input, std::string_view instance) {
  ErrorReport report;
  report.time_ms = input.time_ms;
  report.service = std::string(input.service);
  report.job_id = input.job_id;
  report.attempt = input.attempt;
  report.max_attempts = input.max_attempts;
  try {
    report.trace_id = detail::DecodeEnvelope(input.envelope).trace_id;
  } catch (const Error&) {
    // Validated on arrival; a failure here would only lose the trace id.
  }
  report.reporter = "broker";
  report.host = detail::LocalHostName();
  report.pid = static_cast<std::uint64_t>(::getpid());
  report.instance = std::string(instance);
  report.stage = "dispatch";
  report.code = input.code;
  report.message = std::string(input.message);
  report.sender = std::string(input.sender);
  report.envelope = std::string(input.envelope);
  report.payload = std::string(input.payload);
  detail::ErrorBatch batch;
  batch.reports.push_back(std::move(report));
  return detail::EncodeErrorBatch(batch);
}

std::string EncodeQueryFailure(ErrorCode code, std::string_view message) {
  std::string out;
  detail::StringWriter stream(out);
  msgpack::packer<detail::StringWriter> packer(stream);
  packer.pack_array(2);
  packer.pack_uint16(static_cast<std::uint16_t>(code));
  packer.pack_str(static_cast<std::uint32_t>(message.size()));
  packer.pack_str_body(message.data(), static_cast<std::uint32_t>(message.size()));
  return out;
}

std::string_view ToString(BrokerStage stage) noexcept {
  switch (stage) {
    case BrokerStage::kQueueWait: return "queue_wait";
    case BrokerStage::kDispatch: return "dispatch";
    case BrokerStage::kLbStrategy: return "lb_strategy";
  }
  return "unknown";
}

namespace {

void Add(StageTotals& totals, std::chrono::steady_clock::duration duration) {
  const auto ns = static_cast<std::uint64_t>(
      std::max<std::int64_t>(0, std::chrono::duration_cast<std::chrono::nanoseconds>(duration).count()));
  totals.min_ns = totals.count == 0 ? ns : std::min(totals.min_ns, ns);
  totals.max_ns = std::max(totals.max_ns, ns);
  ++totals.count;
  totals.sum_ns += ns;
  // Only as long as the slowest sample needs: a series of sub-microsecond picks holds ~30
  // buckets, not 252 (a broker with thousands of services keeps thousands of series).
  const std::size_t bucket = detail::LatencyBucket(ns);
  if (bucket >= totals.buckets.size()) totals.buckets.resize(bucket + 1);
  ++totals.buckets[bucket];
}

}  // namespace

StageTotals& BrokerTimings::At(std::uint32_t service, std::string_view name, BrokerStage stage) {
  if (service >= totals_.size()) totals_.resize(service + 1);
  auto& stages = totals_[service];
  if (!stages) stages = std::make_unique<std::array<StageTotals, kBrokerStages>>();
  StageTotals& totals = (*stages)[static_cast<std::size_t>(stage)];
  if (totals.stage.empty() || totals.service != name) {  // new, or a pruned service's slot reused
    totals = StageTotals{};
    totals.service = std::string(name);
    totals.stage = std::string(ToString(stage));
  }
  return totals;
}

void BrokerTimings::Record(std::uint32_t service, std::string_view name, BrokerStage stage,
                           std::chrono::steady_clock::duration duration) {
  Add(At(service, name, stage), duration);
}

void BrokerTimings::RecordMonitor(std::chrono::steady_clock::duration duration) {
  if (monitor_.stage.empty()) {
    monitor_.service = std::string(kAllServices);
    monitor_.stage = "lb_monitor";
  }
  Add(monitor_, duration);
}

void BrokerTimings::RecordError(std::uint32_t service, std::string_view name, BrokerStage stage) {
  ++At(service, name, stage).errors;
}

std::string BrokerTimings::BuildReport(std::string_view instance, std::uint64_t interval_ms) {
  pending_.clear();
  for (const auto& stages : totals_) {
    if (!stages) continue;
    for (const StageTotals& totals : *stages) {
      if (totals.count + totals.errors > 0) pending_.push_back(totals);
    }
  }
  if (monitor_.count > 0) pending_.push_back(monitor_);
  detail::MetricsReport report;
  report.stages = delta_.Compute(pending_);
  if (report.stages.empty()) return {};
  report.process = "broker";
  report.host = detail::LocalHostName();
  report.pid = static_cast<std::uint64_t>(::getpid());
  report.instance = std::string(instance);
  report.interval_ms = interval_ms;
  return detail::EncodeMetricsReport(report);
}

void BrokerTimings::Forget(std::uint32_t service) {
  if (service < totals_.size()) totals_[service].reset();
  while (!totals_.empty() && !totals_.back()) totals_.pop_back();
  if (totals_.capacity() > 2 * totals_.size() + 64) totals_.shrink_to_fit();
}

void BrokerTimings::Commit() { delta_.Commit(std::move(pending_)); }

}  // namespace courier::broker
