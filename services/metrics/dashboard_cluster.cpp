#include "dashboard_cluster.hpp"

#include <algorithm>
#include <future>

#include <spdlog/spdlog.h>

#include "courier/error.hpp"
#include "courier/job.hpp"

namespace courier::metrics {
namespace {

using std::chrono::milliseconds;
constexpr std::string_view kSink = "courier.errors";
constexpr std::int64_t kRateSpanMs = 10000;

std::uint64_t Uint(const Value& map, std::string_view key) {
  const Value* field = map.IsMap() ? map.Find(key) : nullptr;
  return field != nullptr && field->IsInteger() ? field->AsUint() : 0;
}

std::string Str(const Value& map, std::string_view key) {
  const Value* field = map.IsMap() ? map.Find(key) : nullptr;
  return field != nullptr && field->IsString() ? field->AsString() : std::string();
}

void Push(std::deque<CounterSample>& samples, CounterSample sample) {
  if (!samples.empty() && (sample.total < samples.back().total || sample.failed < samples.back().failed)) {
    samples.clear();  // the counters started over
  }
  samples.push_back(sample);
  while (samples.size() > 2 && samples.back().t_ms - samples[1].t_ms >= kRateSpanMs) samples.pop_front();
}

Value WorkerValue(const WorkerInfo& worker) {
  Value keys = Value::Array{};
  for (const WorkerKey& key : worker.keys) {
    keys.Append(Value::Object({{"id", Value(static_cast<std::uint64_t>(key.id))}, {"fingerprint", Value(key.fingerprint)}}));
  }
  return Value::Object({{"id", Value(worker.id)},
                        {"service", Value(worker.service)},
                        {"protocol", Value(worker.protocol)},
                        {"host", Value(worker.host)},
                        {"pid", Value(worker.pid)},
                        {"instance", Value(worker.instance)},
                        {"capacity", Value(worker.capacity)},
                        {"in_flight", Value(worker.in_flight)},
                        {"idle_ms", Value(worker.idle_ms)},
                        {"stuck", Value(worker.stuck)},
                        {"keys", std::move(keys)},
                        {"broker", Value(worker.broker)}});
}

Value JobValue(const JobStatus& job) {
  Value out = Value::Object({{"id", Value(job.id.Hex())},
                             {"service", Value(job.service)},
                             {"state", Value(std::string(ToString(job.state)))},
                             {"attempt", Value(static_cast<std::uint64_t>(job.attempt))},
                             {"max_attempts", Value(static_cast<std::uint64_t>(job.max_attempts))},
                             {"worker", Value(job.worker)},
                             {"since_ms", Value(job.since_ms)},
                             {"expires_ms", Value(job.expires_ms)},
                             {"durable", Value(job.durable)},
                             {"broker", Value(job.broker)}});
  if (job.error) {
    out.Set("code", Value(std::string(ToString(job.error->code()))));
    out.Set("message", Value(std::string(job.error->what())));
  }
  return out;
}

// The latency the overview shows for a service: the brokers' dispatch-to-answer time, or
// the workers' handler time when no broker reports it.
const SeriesView* LatencySeries(const std::vector<SeriesView>& rows, const std::string& service) {
  const SeriesView* handle = nullptr;
  for (const SeriesView& row : rows) {
    if (row.service != service || row.windows[kWindow1m].count == 0) continue;
    if (row.process == "broker" && row.stage == "dispatch") return &row;
    if (row.process == "worker" && row.stage == "handle") handle = &row;
  }
  return handle;
}

}  // namespace

Rates RateOf(const std::deque<CounterSample>& samples) {
  if (samples.size() < 2) return {};
  const CounterSample& first = samples.front();
  const CounterSample& last = samples.back();
  if (last.t_ms <= first.t_ms || last.total < first.total || last.failed < first.failed) return {};
  const double total = static_cast<double>(last.total - first.total);
  const double failed = static_cast<double>(last.failed - first.failed);
  return Rates{total * 1000.0 / static_cast<double>(last.t_ms - first.t_ms), total > 0 ? failed / total : 0.0};
}

ClusterView::ClusterView(ClientOptions client, const StageTable& table, milliseconds call_deadline)
    : table_(table), call_deadline_(call_deadline) {
  client.report = false;  // the dashboard's own questions are not the cluster's work
  client.max_in_flight = 1000;
  try {
    if (client.keyring) {
      keyring_ = client.keyring;
    } else {
      const auto path = client.keyring_path.empty() ? Keyring::DefaultPath() : client.keyring_path;
      keyring_ = std::make_shared<const Keyring>(Keyring::LoadOrCreate(path));
    }
    client.keyring = keyring_;
  } catch (const courier::Error& e) {
    spdlog::warn("dashboard: no keyring ({}): error reports cannot be listed or replayed", e.what());
  }
  if (client.curve.enabled() && client.curve.key_file.empty()) {
    no_client_ = "with CURVE the dashboard needs an operator's key pair to ask the brokers and the error sink "
                 "(courier-metrics --dashboard-curve-key FILE); only the collector's own figures are shown";
    problem_ = no_client_;
    return;
  }
  client_ = std::make_unique<Client>(std::move(client));
}

Client& ClusterView::client() {
  if (!client_) throw courier::Error(ErrorCode::kConfig, no_client_);
  return *client_;
}

ClusterView::~ClusterView() = default;

void ClusterView::Poll() {
  if (!client_) return;
  const auto now = static_cast<std::int64_t>(NowUnixMs());
  std::map<std::string, Value> stats;
  std::vector<ServiceInfo> services;
  std::vector<WorkerInfo> workers;
  std::string problem;
  try {
    for (BrokerAnswer& answer : client_->QueryAll("stats")) {
      if (answer.result) stats[answer.broker] = std::move(*answer.result);
    }
    services = client_->ClusterServices();
    workers = client_->ClusterWorkers();
  } catch (const std::exception& e) {
    problem = e.what();
  }
  std::lock_guard lock(mutex_);
  updated_ms_ = now;
  problem_ = problem;
  broker_stats_ = std::move(stats);
  for (const auto& [endpoint, answer] : broker_stats_) {
    Push(broker_samples_[endpoint], CounterSample{now, Uint(answer, "jobs_answered"), 0});
  }
  if (problem.empty()) {
    services_ = std::move(services);
    workers_ = std::move(workers);
    for (const ServiceInfo& service : services_) {
      Push(service_samples_[service.name], CounterSample{now, service.replied + service.failed, service.failed});
    }
    // Forget the history of services the brokers no longer hold.
    std::erase_if(service_samples_, [this](const auto& entry) {
      return std::none_of(services_.begin(), services_.end(),
                          [&](const ServiceInfo& service) { return service.name == entry.first; });
    });
  }
}

Value ClusterView::Overview() const {
  const auto now = Clock::now();
  const std::vector<SeriesView> rows = table_.Snapshot(now);
  const TableCounters counters = table_.counters(now);
  const std::size_t reporters = table_.Reporters(now).size();
  const std::vector<BrokerStatus> health = client_ ? client_->brokers() : std::vector<BrokerStatus>{};  // never waits
  std::lock_guard lock(mutex_);
  Value brokers = Value::Array{};
  for (const BrokerStatus& broker : health) {
    Value row = Value::Object({{"endpoint", Value(broker.broker)}, {"health", Value(std::string(ToString(broker.health)))}});
    if (const auto stats = broker_stats_.find(broker.broker); stats != broker_stats_.end() && broker.health == BrokerHealth::kUp) {
      row.Set("uptime_ms", Value(Uint(stats->second, "uptime_ms")));
      row.Set("jobs_answered", Value(Uint(stats->second, "jobs_answered")));
      row.Set("dead_lettered", Value(Uint(stats->second, "dead_lettered")));
    }
    if (const auto samples = broker_samples_.find(broker.broker); samples != broker_samples_.end()) {
      row.Set("jobs_per_s", Value(broker.health == BrokerHealth::kUp ? RateOf(samples->second).per_second : 0.0));
    }
    brokers.Append(std::move(row));
  }
  // Every service a broker holds, then any the collector alone has heard of.
  std::vector<std::string> names;
  for (const ServiceInfo& service : services_) names.push_back(service.name);
  for (const SeriesView& row : rows) {
    if (std::find(names.begin(), names.end(), row.service) == names.end()) names.push_back(row.service);
  }
  std::sort(names.begin(), names.end());
  Value services = Value::Array{};
  for (const std::string& name : names) {
    Value row = Value::Object({{"name", Value(name)}});
    const auto info = std::find_if(services_.begin(), services_.end(), [&](const ServiceInfo& s) { return s.name == name; });
    if (info != services_.end()) {
      row.Set("workers", Value(info->workers));
      row.Set("queued", Value(info->queued));
      row.Set("in_flight", Value(info->in_flight));
      row.Set("replied", Value(info->replied));
      row.Set("failed", Value(info->failed));
      const auto samples = service_samples_.find(name);
      const Rates rates = samples != service_samples_.end() ? RateOf(samples->second) : Rates{};
      row.Set("jobs_per_s", Value(rates.per_second));
      row.Set("error_ratio", Value(rates.error_ratio));
    }
    if (const SeriesView* latency = LatencySeries(rows, name)) {
      const WindowStats& minute = latency->windows[kWindow1m];
      row.Set("latency_stage", Value(latency->process + " " + latency->stage));
      if (const auto p50 = minute.quantile_ns(0.5)) row.Set("p50_ns", Value(*p50));
      if (const auto p99 = minute.quantile_ns(0.99)) row.Set("p99_ns", Value(*p99));
      if (info == services_.end()) {  // no broker figures: the collector's own rates
        row.Set("jobs_per_s", Value(latency->windows[kWindow10s].rate()));
        row.Set("error_ratio", Value(latency->windows[kWindow10s].error_ratio()));
      }
    }
    services.Append(std::move(row));
  }
  Value out = Value::Object({{"updated_ms", Value(updated_ms_)},
                             {"collector", Value::Object({{"uptime_ms", Value(static_cast<std::uint64_t>(counters.uptime.count()))},
                                                          {"reports", Value(counters.reports)},
                                                          {"reporters", Value(static_cast<std::uint64_t>(reporters))},
                                                          {"series", Value(static_cast<std::uint64_t>(counters.series))}})},
                             {"brokers", std::move(brokers)},
                             {"services", std::move(services)}});
  if (!problem_.empty()) out.Set("problem", Value(problem_));
  return out;
}

Value ClusterView::Workers(const std::string& service) const {
  std::lock_guard lock(mutex_);
  Value out = Value::Array{};
  for (const WorkerInfo& worker : workers_) {
    if (worker.service == service) out.Append(WorkerValue(worker));
  }
  return out;
}

void ClusterView::RequireSink() {
  if (!keyring_) throw courier::Error(ErrorCode::kConfig, "the collector has no keyring: the error sink answers only sealed questions");
  if (!client().ServiceAvailable(kSink)) {
    throw courier::Error(ErrorCode::kNoSuchService, "no error sink is registered with the brokers (start courier-error-sink)");
  }
}

Value ClusterView::Ask(const Value& request, milliseconds deadline) {
  CallOptions call;
  call.deadline = deadline;
  call.max_retries = 0;
  return client().Call(kSink, request, call);
}

Value ClusterView::Errors(const ErrorFilter& filter, bool groups) {
  Value request = Value::Object({{"op", groups ? "groups" : "list"},
                                 {"limit", Value(static_cast<std::uint64_t>(std::clamp<std::size_t>(filter.limit, 1, 1000)))}});
  if (!filter.service.empty()) request.Set("service", Value(filter.service));
  if (!filter.fingerprint.empty()) request.Set("fingerprint", Value(filter.fingerprint));
  if (filter.since_ms > 0) request.Set("since_ms", Value(filter.since_ms));
  if (!filter.code.empty()) {
    const auto code = ParseErrorCode(filter.code);
    if (!code) throw courier::Error(ErrorCode::kBadRequest, "unknown error code \"" + filter.code + "\"");
    request.Set("code", Value(static_cast<std::uint64_t>(*code)));
  }
  RequireSink();
  return Ask(request, call_deadline_);
}

std::optional<Value> ClusterView::OpenPayload(const std::string& envelope, const std::string& payload,
                                              std::string& why) const {
  try {
    // The envelope is a MessagePack array whose element 9 is the key id (PROTOCOL.md §4).
    const Value fields = DecodeValue(envelope);
    const std::uint64_t key_id = fields.IsArray() && fields.size() > 9 ? fields.AsArray()[9].AsUint() : 0;
    if (key_id == 0) return DecodeValue(payload);
    if (!keyring_ || !keyring_->Holds(static_cast<std::uint32_t>(key_id))) {
      why = "sealed with key " + std::to_string(key_id) + ", which the collector's keyring does not hold";
      return std::nullopt;
    }
    return DecodeValue(keyring_->Open(envelope, payload));
  } catch (const std::exception& e) {
    why = e.what();
    return std::nullopt;
  }
}

Value ClusterView::Error(std::int64_t id, bool reveal) {
  RequireSink();
  Value row = Ask(Value::Object({{"op", "show"}, {"id", Value(id)}}), call_deadline_);
  std::string envelope;
  std::string payload;
  if (const Value* field = row.Find("envelope"); field != nullptr && field->type() == Value::Type::kBinary) {
    envelope = field->AsBinary().bytes;
  }
  if (const Value* field = row.Find("payload"); field != nullptr && field->type() == Value::Type::kBinary) {
    payload = field->AsBinary().bytes;
  }
  Value out = Value::Map{};
  for (const auto& [key, value] : row.AsMap()) {
    if (key.IsString() && (key.AsString() == "envelope" || key.AsString() == "payload")) continue;
    out.Set(key.AsString(), value);
  }
  out.Set("payload_bytes", Value(static_cast<std::uint64_t>(payload.size())));
  if (reveal) {
    std::string why;
    if (payload.empty()) {
      out.Set("payload_problem", Value("no payload is stored with this report (only dead letters keep theirs)"));
    } else if (auto opened = OpenPayload(envelope, payload, why)) {
      out.Set("payload", std::move(*opened));
    } else {
      out.Set("payload_problem", Value(why));
    }
  }
  return out;
}

Value ClusterView::Replay(std::int64_t id, milliseconds wait) {
  RequireSink();
  const Value row = Ask(Value::Object({{"op", "show"}, {"id", Value(id)}}), call_deadline_);
  const Value* job = row.Find("job");
  const Value* dead = row.Find("dead_letter");
  if (dead == nullptr || dead->type() != Value::Type::kBool || !dead->AsBool() || job == nullptr || !job->IsMap() ||
      job->Find("error") != nullptr) {
    throw courier::Error(ErrorCode::kInvalidPayload,
                         "error " + std::to_string(id) + " is not a dead letter with a usable job: nothing to replay");
  }
  const std::string service = Str(*job, "service");
  const std::uint64_t deadline = Uint(*job, "deadline_ms");
  Value out = Value::Object({{"id", Value(id)}, {"service", Value(service)}});

  // 1. The same job, resubmitted by the sink, while its sealed deadline allows.
  if (deadline > NowUnixMs() + 500) {
    const Value result = Ask(Value::Object({{"op", "replay"}, {"id", Value(id)},
                                            {"wait_ms", Value(static_cast<std::uint64_t>(wait.count()))}}),
                             wait + call_deadline_);
    const std::string outcome = Str(result, "outcome");
    if (outcome != "expired") {
      out.Set("how", Value("same job, resubmitted by the error sink"));
      out.Set("outcome", Value(outcome));
      out.Set("job_id", Value(Str(result, "job_id")));
      if (!Str(result, "code_name").empty()) out.Set("code", Value(Str(result, "code_name")));
      if (!Str(result, "message").empty()) out.Set("message", Value(Str(result, "message")));
      return out;
    }
  }

  // 2. A fresh job (new id and deadline) with the original payload: needs its key.
  std::string why;
  const Value* envelope = row.Find("envelope");
  const Value* payload = row.Find("payload");
  std::optional<Value> request;
  if (envelope != nullptr && payload != nullptr && envelope->type() == Value::Type::kBinary &&
      payload->type() == Value::Type::kBinary) {
    request = OpenPayload(envelope->AsBinary().bytes, payload->AsBinary().bytes, why);
  }
  if (!request) {
    throw courier::Error(ErrorCode::kUnknownKey, "the job's deadline has passed, so only a fresh job can replay it, and " +
                                                     (why.empty() ? std::string("its payload is not stored") : why));
  }
  const bool send_mode = Uint(*job, "mode") == 1;
  std::promise<Result> done;
  auto answered = done.get_future();
  auto deliver = [&done](Result result) { done.set_value(std::move(result)); };
  CallOptions call;
  call.deadline = wait;
  if (send_mode) {
    client().Send(service, std::move(*request), deliver, call);
  } else {
    client().Submit(service, std::move(*request), deliver, call);
  }
  const Result result = answered.get();
  std::string outcome;
  if (const courier::Error* error = result.error()) {
    outcome = "failed";
    out.Set("code", Value(std::string(ToString(error->code()))));
    out.Set("message", Value(std::string(error->what())));
  } else {
    outcome = send_mode ? "accepted" : "replied";
  }
  out.Set("how", Value("fresh job with the original payload"));
  out.Set("outcome", Value(outcome));
  out.Set("job_id", Value(result.job_id().Hex()));
  try {
    Ask(Value::Object({{"op", "replayed"}, {"id", Value(id)},
                       {"outcome", Value("fresh job " + result.job_id().Hex() + " (dashboard): " + outcome)}}),
        call_deadline_);
  } catch (const std::exception& e) {
    spdlog::warn("dashboard: replay of error {} was not recorded in the error sink: {}", id, e.what());
  }
  return out;
}

Value ClusterView::ReplayGroup(const std::string& fingerprint, std::size_t limit) {
  ErrorFilter filter;
  filter.fingerprint = fingerprint;
  filter.limit = limit;
  const Value listed = Errors(filter, false);
  Value results = Value::Array{};
  std::uint64_t replayed = 0;
  std::uint64_t skipped = 0;
  std::vector<std::string> jobs;  // one replay per job, however many reports it left
  for (const Value& row : listed.At("reports").AsArray()) {
    const Value* dead = row.Find("dead_letter");
    const std::string job_id = Str(row, "job_id");
    if (dead == nullptr || dead->type() != Value::Type::kBool || !dead->AsBool() ||
        std::find(jobs.begin(), jobs.end(), job_id) != jobs.end()) {
      ++skipped;
      continue;
    }
    jobs.push_back(job_id);
    const std::int64_t id = row.At("id").AsInt();
    try {
      results.Append(Replay(id, milliseconds(2000)));
      ++replayed;
    } catch (const std::exception& e) {
      results.Append(Value::Object({{"id", Value(id)}, {"error", Value(std::string(e.what()))}}));
    }
  }
  return Value::Object({{"replayed", Value(replayed)}, {"skipped", Value(skipped)}, {"results", std::move(results)}});
}

Value ClusterView::Job(const std::string& id_hex, bool reveal) {
  const auto id = JobId::FromHex(id_hex);
  if (!id) throw courier::Error(ErrorCode::kBadRequest, "not a job id: \"" + id_hex + "\" (32 hex digits)");
  const JobStatus status = client().Job(*id);
  Value out = JobValue(status);
  if (status.result) {
    out.Set("has_result", Value(true));
    if (reveal) out.Set("result", *status.result);
  }
  return out;
}

Value ClusterView::Jobs(const std::string& service, const std::string& state, std::size_t limit) {
  JobsFilter filter;
  filter.service = service;
  filter.limit = std::clamp<std::size_t>(limit, 1, 1000);
  if (!state.empty()) {
    filter.state = ParseJobState(state);
    if (!filter.state) throw courier::Error(ErrorCode::kBadRequest, "unknown state \"" + state + "\" (queued, running, done, failed, dead)");
  }
  Value out = Value::Array{};
  for (const JobStatus& job : client().Jobs(filter)) out.Append(JobValue(job));
  return out;
}

}  // namespace courier::metrics
