#include "report_codec.hpp"

#include <unistd.h>

#include <algorithm>

#include "courier/error.hpp"

namespace courier::detail {
namespace {

[[noreturn]] void Invalid(const std::string& what) { throw Error(ErrorCode::kInvalidPayload, what); }

const Value::Map& MapOf(const Value& value, const std::string& what) {
  if (!value.IsMap()) Invalid(what + ": expected a map, got " + std::string(Value::TypeName(value.type())));
  return value.AsMap();
}

std::uint64_t UintField(const Value& map, std::string_view key, std::uint64_t fallback, const std::string& where) {
  const Value* field = map.Find(key);
  if (field == nullptr || field->IsNil()) return fallback;
  if (field->type() == Value::Type::kUint) return field->AsUint();
  if (field->type() == Value::Type::kInt && field->AsInt() >= 0) return static_cast<std::uint64_t>(field->AsInt());
  Invalid(where + "." + std::string(key) + ": expected an unsigned integer");
}

std::string StrField(const Value& map, std::string_view key, std::size_t max_bytes, const std::string& where,
                     bool truncate = false) {
  const Value* field = map.Find(key);
  if (field == nullptr || field->IsNil()) return {};
  if (!field->IsString()) Invalid(where + "." + std::string(key) + ": expected a string");
  const std::string& text = field->AsString();
  if (text.size() > max_bytes) {
    if (!truncate) Invalid(where + "." + std::string(key) + ": longer than " + std::to_string(max_bytes) + " bytes");
    std::size_t cut = max_bytes;
    while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;  // keep UTF-8 whole
    return text.substr(0, cut);
  }
  return text;
}

std::string BinField(const Value& map, std::string_view key, std::size_t max_bytes, const std::string& where) {
  const Value* field = map.Find(key);
  if (field == nullptr || field->IsNil()) return {};
  if (field->type() != Value::Type::kBinary) Invalid(where + "." + std::string(key) + ": expected binary");
  const std::string& bytes = field->AsBinary().bytes;
  if (bytes.size() > max_bytes) {
    Invalid(where + "." + std::string(key) + ": longer than " + std::to_string(max_bytes) + " bytes");
  }
  return bytes;
}

bool AllZero(const std::array<std::uint8_t, 16>& bytes) {
  return std::all_of(bytes.begin(), bytes.end(), [](std::uint8_t b) { return b == 0; });
}

}  // namespace

std::string LocalHostName() {
  char name[256] = {};
  if (::gethostname(name, sizeof name - 1) != 0 || name[0] == '\0') return "unknown";
  return name;
}

Value ErrorReportToValue(const ErrorReport& report) {
  Value out = Value::Map{};
  out.Set("time_ms", Value(report.time_ms));
  out.Set("service", Value(report.service));
  out.Set("job_id", Value(Binary{std::string(report.job_id.View())}));
  out.Set("attempt", Value(report.attempt));
  out.Set("max_attempts", Value(report.max_attempts));
  out.Set("trace_id", Value(Binary{AllZero(report.trace_id)
                                       ? std::string()
                                       : std::string(reinterpret_cast<const char*>(report.trace_id.data()), 16)}));
  out.Set("reporter", Value(report.reporter));
  out.Set("host", Value(report.host));
  out.Set("pid", Value(report.pid));
  out.Set("instance", Value(report.instance));
  out.Set("stage", Value(report.stage));
  out.Set("code", Value(static_cast<std::uint64_t>(report.code)));
  out.Set("message", Value(report.message));
  out.Set("sender", Value(report.sender));
  if (!report.broker.empty()) out.Set("broker", Value(report.broker));
  if (!report.envelope.empty() || !report.payload.empty()) {
    out.Set("envelope", Value(Binary{report.envelope}));
    out.Set("payload", Value(Binary{report.payload}));
  }
  return out;
}

std::string EncodeErrorBatch(const ErrorBatch& batch) {
  Value reports = Value::Array{};
  reports.AsArray().reserve(batch.reports.size());
  for (const ErrorReport& report : batch.reports) reports.Append(ErrorReportToValue(report));
  Value out = Value::Map{};
  out.Set("reports", std::move(reports));
  out.Set("dropped", Value(batch.dropped));
  if (!batch.reporter.empty()) out.Set("reporter", Value(batch.reporter));
  if (!batch.host.empty()) out.Set("host", Value(batch.host));
  if (batch.pid != 0) out.Set("pid", Value(batch.pid));
  if (!batch.instance.empty()) out.Set("instance", Value(batch.instance));
  return EncodeValue(out);
}

ErrorReport ErrorReportFromValue(const Value& value) {
  const std::string where = "report";
  MapOf(value, where);
  ErrorReport report;
  report.time_ms = UintField(value, "time_ms", 0, where);
  report.service = StrField(value, "service", 255, where);
  const std::string job_id = BinField(value, "job_id", 16, where);
  if (!job_id.empty()) {
    const auto id = JobId::FromBytes(job_id);
    if (!id) Invalid(where + ".job_id: expected 16 bytes");
    report.job_id = *id;
  }
  const std::uint64_t attempt = UintField(value, "attempt", 0, where);
  const std::uint64_t max_attempts = UintField(value, "max_attempts", 0, where);
  if (attempt > UINT32_MAX || max_attempts > UINT32_MAX) Invalid(where + ".attempt: out of range");
  report.attempt = static_cast<std::uint32_t>(attempt);
  report.max_attempts = static_cast<std::uint32_t>(max_attempts);
  const std::string trace = BinField(value, "trace_id", 16, where);
  if (!trace.empty()) {
    if (trace.size() != 16) Invalid(where + ".trace_id: expected 0 or 16 bytes");
    std::copy(trace.begin(), trace.end(), report.trace_id.begin());
  }
  report.reporter = StrField(value, "reporter", 64, where);
  report.host = StrField(value, "host", 255, where);
  report.pid = UintField(value, "pid", 0, where);
  report.instance = StrField(value, "instance", 255, where);
  report.stage = StrField(value, "stage", 64, where);
  const std::uint64_t code = UintField(value, "code", static_cast<std::uint64_t>(ErrorCode::kInternal), where);
  report.code = code <= UINT32_MAX && IsWireCode(static_cast<std::uint32_t>(code)) ? static_cast<ErrorCode>(code)
                                                                                  : ErrorCode::kInternal;
  report.message = StrField(value, "message", kMaxMessageBytes, where, /*truncate=*/true);
  report.sender = StrField(value, "sender", 255, where);
  report.broker = StrField(value, "broker", 1024, where);
  report.envelope = BinField(value, "envelope", 512, where);
  report.payload = BinField(value, "payload", 16 * 1024 * 1024, where);
  return report;
}

ErrorBatch DecodeErrorBatch(const Value& payload) {
  MapOf(payload, "error batch");
  const Value* reports = payload.Find("reports");
  if (reports == nullptr || !reports->IsArray()) Invalid("error batch.reports: expected an array");
  if (reports->size() > kMaxReportsPerBatch) {
    Invalid("error batch.reports: more than " + std::to_string(kMaxReportsPerBatch) + " reports");
  }
  ErrorBatch batch;
  batch.dropped = UintField(payload, "dropped", 0, "error batch");
  batch.reporter = StrField(payload, "reporter", 64, "error batch");
  batch.host = StrField(payload, "host", 255, "error batch");
  batch.pid = UintField(payload, "pid", 0, "error batch");
  batch.instance = StrField(payload, "instance", 255, "error batch");
  batch.reports.reserve(reports->size());
  for (const Value& report : reports->AsArray()) batch.reports.push_back(ErrorReportFromValue(report));
  return batch;
}

std::string EncodeMetricsReport(const MetricsReport& report) {
  Value stages = Value::Array{};
  stages.AsArray().reserve(report.stages.size());
  for (const StageInterval& stage : report.stages) {
    Value buckets = Value::Array{};
    buckets.AsArray().reserve(stage.buckets.size());
    for (const auto& [index, count] : stage.buckets) {
      buckets.Append(Value(Value::Array{Value(static_cast<std::uint64_t>(index)), Value(count)}));
    }
    Value entry = Value::Map{};
    entry.Set("service", Value(stage.service));
    entry.Set("stage", Value(stage.stage));
    entry.Set("count", Value(stage.count));
    entry.Set("errors", Value(stage.errors));
    entry.Set("sum_ns", Value(stage.sum_ns));
    entry.Set("min_ns", Value(stage.min_ns));
    entry.Set("max_ns", Value(stage.max_ns));
    entry.Set("buckets", std::move(buckets));
    stages.Append(std::move(entry));
  }
  Value out = Value::Map{};
  out.Set("process", Value(report.process));
  out.Set("host", Value(report.host));
  out.Set("pid", Value(report.pid));
  out.Set("instance", Value(report.instance));
  out.Set("interval_ms", Value(report.interval_ms));
  out.Set("stages", std::move(stages));
  return EncodeValue(out);
}

MetricsReport DecodeMetricsReport(const Value& payload) {
  const std::string where = "metrics report";
  MapOf(payload, where);
  MetricsReport report;
  report.process = StrField(payload, "process", 64, where);
  report.host = StrField(payload, "host", 255, where);
  report.pid = UintField(payload, "pid", 0, where);
  report.instance = StrField(payload, "instance", 255, where);
  report.interval_ms = UintField(payload, "interval_ms", 0, where);
  const Value* stages = payload.Find("stages");
  if (stages == nullptr || !stages->IsArray()) Invalid(where + ".stages: expected an array");
  if (stages->size() > kMaxStagesPerReport) Invalid(where + ".stages: too many stages");
  report.stages.reserve(stages->size());
  for (const Value& entry : stages->AsArray()) {
    const std::string at = where + ".stages[" + std::to_string(report.stages.size()) + "]";
    MapOf(entry, at);
    StageInterval stage;
    stage.service = StrField(entry, "service", 255, at);
    stage.stage = StrField(entry, "stage", 64, at);
    if (stage.stage.empty()) Invalid(at + ".stage: missing");
    stage.count = UintField(entry, "count", 0, at);
    stage.errors = UintField(entry, "errors", 0, at);
    stage.sum_ns = UintField(entry, "sum_ns", 0, at);
    stage.min_ns = UintField(entry, "min_ns", 0, at);
    stage.max_ns = UintField(entry, "max_ns", 0, at);
    if (const Value* buckets = entry.Find("buckets"); buckets != nullptr && !buckets->IsNil()) {
      if (!buckets->IsArray()) Invalid(at + ".buckets: expected an array");
      if (buckets->size() > kLatencyBuckets) Invalid(at + ".buckets: more than 252 buckets");
      std::int64_t previous = -1;
      for (const Value& pair : buckets->AsArray()) {
        if (!pair.IsArray() || pair.size() != 2 || pair.AsArray()[0].type() != Value::Type::kUint ||
            pair.AsArray()[1].type() != Value::Type::kUint) {
          Invalid(at + ".buckets: expected [index, count] pairs of unsigned integers");
        }
        const std::uint64_t index = pair.AsArray()[0].AsUint();
        const std::uint64_t count = pair.AsArray()[1].AsUint();
        if (index >= kLatencyBuckets || static_cast<std::int64_t>(index) <= previous) {
          Invalid(at + ".buckets: indexes must ascend within 0..251");
        }
        previous = static_cast<std::int64_t>(index);
        if (count != 0) stage.buckets.emplace_back(static_cast<std::uint32_t>(index), count);
      }
    }
    report.stages.push_back(std::move(stage));
  }
  return report;
}

}  // namespace courier::detail
