#include "report_codec.hpp"

#include <unistd.h>

#include <algorithm>
#include <utility>

#include "courier/error.hpp"
#include "utf8.hpp"

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

// ---- Plausibility ---------------------------------------------------------------------

namespace {

bool IsControl(std::string_view text, std::size_t i, std::size_t length, bool keep_newlines) noexcept {
  const auto b0 = static_cast<unsigned char>(text[i]);
  if (length == 1) return (b0 < 0x20 && !(keep_newlines && (b0 == '\n' || b0 == '\t'))) || b0 == 0x7F;
  return length == 2 && b0 == 0xC2 && static_cast<unsigned char>(text[i + 1]) < 0xA0;  // C1: U+0080..U+009F
}

bool IsCleanText(std::string_view text, std::size_t max_bytes) noexcept {
  if (text.size() > max_bytes) return false;
  for (std::size_t i = 0; i < text.size();) {
    const std::size_t length = Utf8SequenceLength(text, i);
    if (length == 0 || IsControl(text, i, length, false)) return false;
    i += length;
  }
  return true;
}

std::string StageProblem(const StageInterval& stage, std::uint64_t interval_ms, const ReportLimits& limits) {
  if (!IsReportName(stage.stage)) return "stage: not a name (1..64 of A-Z a-z 0-9 _ . -)";
  if (!IsCleanText(stage.service, 255)) return "service: not UTF-8 text without control characters";
  const std::uint64_t most = static_cast<std::uint64_t>(
      std::min<unsigned __int128>(static_cast<unsigned __int128>(limits.max_rate_per_second) * interval_ms / 1000,
                                  UINT64_MAX));
  if (stage.count > most) return "count: " + std::to_string(stage.count) + " in " + std::to_string(interval_ms) + " ms";
  if (stage.errors > most) {
    return "errors: " + std::to_string(stage.errors) + " in " + std::to_string(interval_ms) + " ms";
  }
  if (stage.count == 0) {
    if (stage.sum_ns != 0 || stage.min_ns != 0 || stage.max_ns != 0 || !stage.buckets.empty()) {
      return "durations without a count";
    }
    return {};
  }
  if (stage.min_ns > stage.max_ns) return "min_ns > max_ns";
  if (stage.max_ns > limits.max_sample_ns) {
    return "max_ns: " + std::to_string(stage.max_ns) + " ns, above " + std::to_string(limits.max_sample_ns);
  }
  if (static_cast<unsigned __int128>(stage.count) * stage.max_ns < stage.sum_ns) return "sum_ns: above count x max_ns";
  if (static_cast<unsigned __int128>(stage.count) * stage.min_ns > stage.sum_ns) return "sum_ns: below count x min_ns";
  if (!stage.buckets.empty()) {
    const std::size_t lowest = LatencyBucket(stage.min_ns);
    const std::size_t highest = LatencyBucket(stage.max_ns);
    unsigned __int128 total = 0;
    for (const auto& [index, count] : stage.buckets) {
      if (index < lowest || index > highest) return "buckets: index " + std::to_string(index) + " outside min..max";
      total += count;
    }
    if (total != stage.count) return "buckets: do not add up to count";
  }
  return {};
}

}  // namespace

bool IsValidUtf8(std::string_view text) noexcept {
  for (std::size_t i = 0; i < text.size();) {
    const std::size_t length = Utf8SequenceLength(text, i);
    if (length == 0) return false;
    i += length;
  }
  return true;
}

bool IsReportName(std::string_view text) noexcept {
  if (text.empty() || text.size() > 64) return false;
  return std::all_of(text.begin(), text.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
           c == '-';
  });
}

bool RepairText(std::string& text, bool keep_newlines) {
  static constexpr std::string_view kReplacement = "\xEF\xBF\xBD";
  std::string out;
  bool changed = false;
  for (std::size_t i = 0; i < text.size();) {
    const std::size_t length = Utf8SequenceLength(text, i);
    if (length == 0 || IsControl(text, i, length, keep_newlines)) {
      if (!changed) out.assign(text, 0, i);
      changed = true;
      out += kReplacement;
      i += length == 0 ? 1 : length;
      continue;
    }
    if (changed) out.append(text, i, length);
    i += length;
  }
  if (changed) text = std::move(out);
  return changed;
}

ReportVerdict CheckErrorBatch(ErrorBatch& batch, std::uint64_t now_ms, const ReportLimits& limits) {
  if (batch.dropped > limits.max_dropped_per_batch) {
    Invalid("error batch.dropped: " + std::to_string(batch.dropped) + " is not plausible (at most " +
            std::to_string(limits.max_dropped_per_batch) + " per batch)");
  }
  if (!batch.reporter.empty() && !IsReportName(batch.reporter)) Invalid("error batch.reporter: not a name");
  if (batch.pid > kMaxPid) Invalid("error batch.pid: out of range");
  ReportVerdict verdict;
  auto note = [&verdict](bool repaired, const std::string& what) {
    if (repaired && verdict.problem.empty()) verdict.problem = what;
    return repaired;
  };
  const bool host_repaired = RepairText(batch.host);  // both repaired, whatever the first says
  const bool instance_repaired = RepairText(batch.instance);
  if (note(host_repaired || instance_repaired, "error batch: host or instance repaired")) {
    ++verdict.clamped;
  }
  const std::uint64_t earliest = now_ms > limits.max_age_ms ? now_ms - limits.max_age_ms : 0;
  const std::uint64_t latest = now_ms + limits.max_skew_ms;
  for (std::size_t i = 0; i < batch.reports.size(); ++i) {
    ErrorReport& report = batch.reports[i];
    const std::string at = "error batch.reports[" + std::to_string(i) + "]";
    if (!report.reporter.empty() && !IsReportName(report.reporter)) Invalid(at + ".reporter: not a name");
    if (!report.stage.empty() && !IsReportName(report.stage)) Invalid(at + ".stage: not a name");
    if (report.pid > kMaxPid) Invalid(at + ".pid: out of range");
    bool repaired = false;
    if (report.time_ms != 0 && (report.time_ms < earliest || report.time_ms > latest)) {
      repaired = note(true, at + ".time_ms: " + std::to_string(report.time_ms) + " replaced by the arrival time");
      report.time_ms = now_ms;
    }
    for (std::string* text : {&report.service, &report.host, &report.instance, &report.sender, &report.broker}) {
      repaired |= note(RepairText(*text), at + ": invalid UTF-8 or control characters replaced");
    }
    repaired |= note(RepairText(report.message, /*keep_newlines=*/true), at + ".message: invalid UTF-8 replaced");
    if (repaired) ++verdict.clamped;
  }
  return verdict;
}

ReportVerdict CheckMetricsReport(MetricsReport& report, const ReportLimits& limits) {
  if (!IsReportName(report.process)) Invalid("metrics report.process: not a name (1..64 of A-Z a-z 0-9 _ . -)");
  if (!IsCleanText(report.host, 255)) Invalid("metrics report.host: not UTF-8 text without control characters");
  if (!IsCleanText(report.instance, 255)) {
    Invalid("metrics report.instance: not UTF-8 text without control characters");
  }
  if (report.pid > kMaxPid) Invalid("metrics report.pid: out of range");
  const std::uint64_t interval_ms = std::clamp<std::uint64_t>(report.interval_ms, 1000, limits.max_interval_ms);
  ReportVerdict verdict;
  std::vector<StageInterval> kept;
  kept.reserve(report.stages.size());
  for (std::size_t i = 0; i < report.stages.size(); ++i) {
    std::string problem = StageProblem(report.stages[i], interval_ms, limits);
    if (problem.empty()) {
      kept.push_back(std::move(report.stages[i]));
      continue;
    }
    ++verdict.dropped;
    if (verdict.problem.empty()) verdict.problem = "metrics report.stages[" + std::to_string(i) + "]." + problem;
  }
  report.stages = std::move(kept);
  return verdict;
}

std::optional<std::uint64_t> ReportLogGate::Allow() {
  const auto now = std::chrono::steady_clock::now();
  std::lock_guard lock(mutex_);
  if (logged_ && now - last_ < period_) {
    ++suppressed_;
    return std::nullopt;
  }
  logged_ = true;
  last_ = now;
  return std::exchange(suppressed_, 0);
}

}  // namespace courier::detail
