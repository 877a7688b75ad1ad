#include "error_sink_service.hpp"

#include <algorithm>

#include <spdlog/spdlog.h>

#include "envelope_codec.hpp"
#include "reporting/report_codec.hpp"
#include "reporting/service_caller.hpp"

namespace courier::sink {
namespace {

[[noreturn]] void Invalid(const std::string& what) { throw Error(ErrorCode::kInvalidPayload, what); }

std::optional<std::uint64_t> OptionalUint(const Value& request, std::string_view key) {
  const Value* field = request.Find(key);
  if (field == nullptr || field->IsNil()) return std::nullopt;
  if (!field->IsInteger()) Invalid(std::string(key) + ": expected an unsigned integer");
  try {
    return field->AsUint();
  } catch (const Error&) {
    Invalid(std::string(key) + ": expected an unsigned integer");
  }
}

std::optional<std::string> OptionalString(const Value& request, std::string_view key) {
  const Value* field = request.Find(key);
  if (field == nullptr || field->IsNil()) return std::nullopt;
  if (!field->IsString()) Invalid(std::string(key) + ": expected a string");
  return field->AsString();
}

std::int64_t RequiredId(const Value& request) {
  const auto id = OptionalUint(request, "id");
  if (!id || *id == 0 || *id > static_cast<std::uint64_t>(INT64_MAX)) Invalid("id: expected a report id (1 or more)");
  return static_cast<std::int64_t>(*id);
}

ReportFilter ReadFilter(const Value& request) {
  ReportFilter filter;
  filter.service = OptionalString(request, "service");
  filter.since_ms = OptionalUint(request, "since_ms");
  filter.fingerprint = OptionalString(request, "fingerprint");
  if (const Value* code = request.Find("code"); code != nullptr && !code->IsNil()) {
    std::optional<ErrorCode> parsed;
    if (code->IsString()) parsed = ParseErrorCode(code->AsString());
    if (code->IsInteger() && code->AsInt() > 0 && code->AsInt() < 65536) {
      parsed = ParseErrorCode(std::to_string(code->AsInt()));
    }
    if (!parsed) Invalid("code: expected an error code name or number");
    filter.code = parsed;
  }
  if (const auto before = OptionalUint(request, "before_id")) {
    filter.before_id = static_cast<std::int64_t>(std::min<std::uint64_t>(*before, INT64_MAX));
  }
  if (const auto limit = OptionalUint(request, "limit")) {
    if (*limit == 0 || *limit > kMaxListLimit) Invalid("limit: expected 1.." + std::to_string(kMaxListLimit));
    filter.limit = static_cast<std::size_t>(*limit);
  }
  return filter;
}

std::string Hex(std::string_view bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (const char c : bytes) {
    out += kHex[(static_cast<unsigned char>(c) >> 4) & 0xf];
    out += kHex[static_cast<unsigned char>(c) & 0xf];
  }
  return out;
}

Value StatsToValue(const StoreStats& stats) {
  return Value::Object({{"stored", Value(stats.stored)},
                        {"received", Value(stats.received)},
                        {"dropped", Value(stats.dropped)},
                        {"duplicate_batches", Value(stats.duplicate_batches)},
                        {"pruned", Value(stats.pruned)},
                        {"fingerprints", Value(stats.fingerprints)}});
}

}  // namespace

Value StoredReportToValue(const StoredReport& row, bool with_job) {
  const ErrorReport& report = row.report;
  const bool traced = std::any_of(report.trace_id.begin(), report.trace_id.end(), [](auto b) { return b != 0; });
  Value out = Value::Object({
      {"id", Value(row.id)},
      {"received_ms", Value(row.received_ms)},
      {"time_ms", Value(report.time_ms)},
      {"service", Value(report.service)},
      {"job_id", Value(report.job_id.Hex())},
      {"attempt", Value(report.attempt)},
      {"max_attempts", Value(report.max_attempts)},
      {"trace_id", Value(traced ? Hex(std::string_view(reinterpret_cast<const char*>(report.trace_id.data()), 16))
                                : std::string())},
      {"reporter", Value(report.reporter)},
      {"host", Value(report.host)},
      {"pid", Value(report.pid)},
      {"instance", Value(report.instance)},
      {"stage", Value(report.stage)},
      {"code", Value(static_cast<std::uint64_t>(report.code))},
      {"code_name", Value(ToString(report.code))},
      {"message", Value(report.message)},
      {"sender", Value(report.sender)},
      {"broker", Value(report.broker)},
      {"fingerprint", Value(row.fingerprint)},
      {"occurrences", Value(row.occurrences)},
      {"replays", Value(row.replays)},
      {"last_replay", Value(row.last_replay)},
      {"dead_letter", Value(row.has_job)},
  });
  if (with_job && row.has_job) {
    out.Set("envelope", Value(Binary{report.envelope}));
    out.Set("payload", Value(Binary{report.payload}));
    try {
      const detail::EnvelopeView view = detail::DecodeEnvelope(report.envelope);
      out.Set("job", Value::Object({{"job_id", Value(view.job_id.Hex())},
                                    {"service", Value(view.service)},
                                    {"attempt", Value(view.attempt)},
                                    {"max_attempts", Value(view.max_attempts)},
                                    {"created_at_ms", Value(view.created_at_ms)},
                                    {"deadline_ms", Value(view.deadline_ms)},
                                    {"key_id", Value(view.key_id)},
                                    {"mode", Value(static_cast<unsigned>(view.mode))},
                                    {"payload_bytes", Value(report.payload.size())}}));
    } catch (const Error& e) {
      out.Set("job", Value::Object({{"error", Value(std::string(e.what()))}}));
    }
  }
  return out;
}

ErrorSinkService::ErrorSinkService(const ConfigSection& config) {
  using std::chrono::milliseconds;
  const std::string db = config.GetString("db", "");
  StoreLimits limits;
  limits.max_age = config.GetDuration("max_age", limits.max_age, milliseconds(1000),
                                      milliseconds(std::chrono::hours(24 * 365 * 10)));
  limits.max_reports = static_cast<std::uint64_t>(
      config.GetInt("max_reports", static_cast<std::int64_t>(limits.max_reports), 1, 1'000'000'000));
  limits.synchronous_full = config.GetEnum("synchronous", "full", {"full", "normal"}) == "full";
  brokers_ = config.GetStringArray("brokers", {"tcp://127.0.0.1:5555"});
  if (brokers_.empty()) throw Error(ErrorCode::kConfig, config.Describe("brokers", "needs at least one broker"));
  replay_wait_ = config.GetDuration("replay_wait", replay_wait_, milliseconds(1), milliseconds(600000));
  // Replays are submitted as a client: with CURVE they present this key pair (which the
  // brokers must admit as a client too, besides as the worker serving courier.errors).
  if (const auto server_key = config.GetOptionalString("curve_server_key")) {
    curve_.server_public_key = *server_key;
    curve_.key_file = config.GetString("curve_key_file", "");
    curve_ = curve_.Resolved();
  }
  config.RejectUnknownKeys();
  const std::filesystem::path path = db.empty() ? ErrorStore::DefaultPath() : std::filesystem::path(db);
  store_ = std::make_unique<ErrorStore>(path, limits);
  const StoreStats stats = store_->Stats();
  spdlog::info("error sink: storing in {} ({} reports held, {} fingerprints)", path.string(), stats.stored,
               stats.fingerprints);
}

Value ErrorSinkService::Handle(const Value& request, const JobContext& job) {
  if (!request.IsMap()) Invalid("expected a map: a report batch or a query {\"op\": ...}");
  if (request.Find("reports") != nullptr) return Store(request, job);
  const auto op = OptionalString(request, "op");
  if (!op) Invalid("expected \"reports\" (a batch) or \"op\" (a query)");
  // Reports and dead letters come unsealed (allow_unsealed); what reads the store or
  // re-runs a job is answered only to a key holder, with or without CURVE.
  if (!job.sealed() && *op != "stats") {
    throw Error(ErrorCode::kUnauthenticated,
                "courier.errors answers \"" + *op +
                    "\" only to a sealed query: seal it with the payload keyring the sink holds (`courier errors "
                    "--keyring FILE ...` does; a plain Majordomo request cannot)");
  }
  if (*op == "list") return List(request);
  if (*op == "show") return Show(request);
  if (*op == "groups") return Groups(request);
  if (*op == "replay") return Replay(request);
  if (*op == "replayed") return Replayed(request);
  if (*op == "stats") return Stats();
  Invalid("unknown op \"" + *op + "\" (list, show, groups, replay, replayed, stats)");
}

Value ErrorSinkService::Store(const Value& request, const JobContext& job) {
  detail::ErrorBatch batch;
  detail::ReportVerdict verdict;
  try {
    batch = detail::DecodeErrorBatch(request);
    verdict = detail::CheckErrorBatch(batch, NowUnixMs());
  } catch (const Error& e) {
    ++rejected_batches_;
    if (const auto held = log_gate_.Allow()) {
      spdlog::warn("error sink: refused a report batch (job {}): {} ({} more garbage lines held back)",
                   job.job_id().Hex(), e.what(), *held);
    }
    throw;
  }
  if (verdict.clamped > 0) {
    clamped_reports_ += verdict.clamped;
    if (const auto held = log_gate_.Allow()) {
      spdlog::warn("error sink: repaired {} reports of a batch (job {}): {} ({} more garbage lines held back)",
                   verdict.clamped, job.job_id().Hex(), verdict.problem, *held);
    }
  }
  const auto handle_start = std::chrono::steady_clock::now();
  const ErrorStore::InsertResult result = store_->Insert(job.job_id(), batch, NowUnixMs());
  timings_.Record(kName, "error_handle", std::chrono::steady_clock::now() - handle_start);
  if (batch.dropped > 0 && !result.duplicate) {
    spdlog::warn("error sink: a reporter ({} {} pid {}) lost {} reports to buffer overflow",
                 batch.reporter.empty() ? "?" : batch.reporter, batch.host, batch.pid, batch.dropped);
  }
  return Value::Object({{"stored", Value(result.ids.size())}, {"duplicate", Value(result.duplicate)}});
}

Value ErrorSinkService::List(const Value& request) const {
  const ReportFilter filter = ReadFilter(request);
  Value rows = Value::Array{};
  for (const StoredReport& row : store_->List(filter)) rows.Append(StoredReportToValue(row, false));
  return Value::Object({{"reports", std::move(rows)}, {"stats", StatsValue()}});
}

Value ErrorSinkService::Show(const Value& request) const {
  const std::int64_t id = RequiredId(request);
  const std::optional<StoredReport> row = store_->Find(id);
  if (!row) Invalid("no error report with id " + std::to_string(id));
  return StoredReportToValue(*row, true);
}

Value ErrorSinkService::Groups(const Value& request) const {
  const ReportFilter filter = ReadFilter(request);
  Value groups = Value::Array{};
  for (const FingerprintGroup& group : store_->Groups(filter)) {
    groups.Append(Value::Object({{"fingerprint", Value(group.fingerprint)},
                                 {"service", Value(group.service)},
                                 {"stage", Value(group.stage)},
                                 {"code", Value(static_cast<std::uint64_t>(group.code))},
                                 {"code_name", Value(ToString(group.code))},
                                 {"message", Value(group.message)},
                                 {"count", Value(group.count)},
                                 {"first_ms", Value(group.first_ms)},
                                 {"last_ms", Value(group.last_ms)},
                                 {"last_id", Value(group.last_id)}}));
  }
  return Value::Object({{"groups", std::move(groups)}});
}

Value ErrorSinkService::Replay(const Value& request) {
  const std::int64_t id = RequiredId(request);
  std::chrono::milliseconds wait = replay_wait_;
  if (const auto wait_ms = OptionalUint(request, "wait_ms")) {
    wait = std::chrono::milliseconds(std::clamp<std::uint64_t>(*wait_ms, 1, 600000));
  }
  const std::optional<StoredReport> row = store_->Find(id);
  if (!row) Invalid("no error report with id " + std::to_string(id));
  if (!row->has_job) Invalid("error report " + std::to_string(id) + " is not a dead letter: no job is stored");
  std::string envelope = row->report.envelope;
  detail::EnvelopeView view;
  try {
    view = detail::DecodeEnvelope(envelope);
  } catch (const Error& e) {
    Invalid("error report " + std::to_string(id) + ": stored envelope is unusable: " + e.what());
  }
  Value result = Value::Object({{"id", Value(id)},
                                {"job_id", Value(view.job_id.Hex())},
                                {"service", Value(std::string(view.service))},
                                {"deadline_ms", Value(view.deadline_ms)},
                                {"key_id", Value(view.key_id)},
                                {"mode", Value(static_cast<unsigned>(view.mode))}});
  const std::uint64_t now = NowUnixMs();
  if (view.deadline_ms <= now) {
    result.Set("outcome", Value("expired"));
    result.Set("message", Value("the job's deadline has passed; it is sealed into the job, so only a key holder can "
                                "resubmit it as a fresh job"));
    store_->RecordReplay(id, "expired", now);
    return result;
  }
  wait = std::min(wait, std::chrono::milliseconds(view.deadline_ms - now));
  detail::PatchAttempt(envelope.data(), envelope.size(), 1);
  detail::CallerOptions options;
  options.brokers = brokers_;
  options.curve = curve_;
  detail::ServiceCaller caller(options);
  const auto answer = caller.Submit(view.job_id, envelope, row->report.payload, wait);
  std::string outcome;
  if (!answer) {
    outcome = "no_answer";
    result.Set("message", Value(caller.heard_from_broker() ? "the job was submitted but not answered in time"
                                                           : "no broker answered"));
  } else {
    result.Set("broker", Value(answer->broker));
    switch (answer->kind) {
      case detail::ServiceCaller::Answer::Kind::kReply:
        outcome = "replied";
        result.Set("reply_envelope", Value(Binary{answer->envelope}));
        result.Set("reply_payload", Value(Binary{answer->payload}));
        break;
      case detail::ServiceCaller::Answer::Kind::kAccepted:
        outcome = "accepted";
        break;
      case detail::ServiceCaller::Answer::Kind::kError:
        outcome = "failed";
        result.Set("code", Value(static_cast<std::uint64_t>(answer->error.code)));
        result.Set("code_name", Value(ToString(answer->error.code)));
        result.Set("message", Value(answer->error.message));
        break;
    }
  }
  result.Set("outcome", Value(outcome));
  store_->RecordReplay(id, outcome, NowUnixMs());
  spdlog::info("error sink: replayed report {} (job {} of {}): {}", id, view.job_id.Hex(), view.service, outcome);
  return result;
}

Value ErrorSinkService::Replayed(const Value& request) {
  const std::int64_t id = RequiredId(request);
  std::string outcome = OptionalString(request, "outcome").value_or("replayed");
  if (outcome.size() > 200) outcome.resize(200);
  if (!store_->RecordReplay(id, outcome, NowUnixMs())) Invalid("no error report with id " + std::to_string(id));
  return Value::Object({{"id", Value(id)}, {"recorded", Value(true)}});
}

Value ErrorSinkService::Stats() const { return StatsValue(); }

Value ErrorSinkService::StatsValue() const {
  Value stats = StatsToValue(store_->Stats());
  stats.Set("rejected_batches", Value(rejected_batches_.load()));
  stats.Set("clamped_reports", Value(clamped_reports_.load()));
  return stats;
}

}  // namespace courier::sink
