// courier — the command line for Courier: send jobs, load-test a service, list services
// and workers, ping brokers, create keys. Usage and exit codes: ops/cli/CLI.md.
#include <signal.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cctype>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <future>
#include <iostream>
#include <iterator>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <sys/stat.h>
#include <thread>

#include "cli_app.hpp"
#include "cli_support.hpp"
#include "command_line.hpp"
#include "errors_command.hpp"
#include "jobs_command.hpp"
#include "metrics_command.hpp"
#include "courier/client.hpp"
#include "courier/config.hpp"
#include "courier/curve.hpp"
#include "courier/error.hpp"
#include "courier/keyring.hpp"
#include "courier/log.hpp"
#include "courier/value.hpp"

namespace courier::cli {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;
using SteadyClock = std::chrono::steady_clock;

std::size_t TerminalWidth() {
  winsize size{};
  if (::ioctl(STDERR_FILENO, TIOCGWINSZ, &size) == 0 && size.ws_col > 0) return size.ws_col;
  return 80;
}

// ---- send ----------------------------------------------------------------------------------

struct SendFlags {
  std::string service;
  std::string json = "null";
  std::uint64_t count = 1;
  std::size_t concurrency = 16;
  bool summary_json = false;
  bool fire_and_forget = false;
  bool enqueue = false;
  bool pretty = false;
  std::string idempotency_key;
  std::uint32_t max_attempts = 0;
  int retries = -1;
};

Value ReadRequest(const std::string& text) {
  std::string json = text;
  if (text == "-") {
    json.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  }
  return FromJson(json);  // Error(kBadRequest) for malformed JSON: a usage error
}

CallOptions BuildCallOptions(const SendFlags& flags, std::optional<std::uint64_t> index) {
  CallOptions call;
  if (!flags.idempotency_key.empty()) {
    call.idempotency_key = index ? flags.idempotency_key + "/" + std::to_string(*index) : flags.idempotency_key;
  }
  if (flags.max_attempts > 0) call.max_attempts = flags.max_attempts;
  if (flags.retries >= 0) call.max_retries = static_cast<std::uint32_t>(flags.retries);
  return call;
}

int RunSingleJob(Client& client, const SendFlags& flags, const Value& request) {
  if (flags.enqueue) {
    // Stored: the id alone, for ID=$(courier send --enqueue ...) and `courier job $ID`.
    std::cout << client.Enqueue(flags.service, request, BuildCallOptions(flags, std::nullopt)).Hex() << "\n";
    return kExitOk;
  }
  if (flags.fire_and_forget) {
    const JobId id = client.Send(flags.service, request, BuildCallOptions(flags, std::nullopt));
    Json out;
    out["accepted"] = true;
    out["job_id"] = id.Hex();
    std::cout << out.dump() << "\n";
    return kExitOk;
  }
  const Value reply = client.Call(flags.service, request, BuildCallOptions(flags, std::nullopt));
  std::cout << ToJson(reply, flags.pretty ? 2 : -1) << "\n";
  return kExitOk;
}

// Returns: `error`, with the nearest served service's name when it names an unknown one.
Error WithSuggestion(Client& client, const Error& error, const std::string& service) {
  if (error.code() != ErrorCode::kNoSuchService) return error;
  std::vector<std::string> served;
  try {
    for (const ServiceInfo& info : client.Services()) served.push_back(info.name);
  } catch (const Error&) {
    return error;  // the suggestion is a courtesy; the answer stands without it
  }
  const std::string nearest = NearestName(service, served);
  if (nearest.empty()) return error;
  return Error(error.code(), std::string(error.what()) + "; did you mean '" + nearest + "'?");
}

// One job with --json: {"job_id": "<hex>", "reply": <reply>} ("accepted": true with --send,
// "stored": true with --enqueue), or {"job_id": "<hex>", "error": {"code", "message"}} and
// the error's exit code. Everything on stdout, so a script reads one document either way.
int RunSingleJobJson(Client& client, const SendFlags& flags, const Value& request) {
  std::promise<Result> answered;
  std::future<Result> answer = answered.get_future();
  auto deliver = [&answered](Result result) { answered.set_value(std::move(result)); };
  const CallOptions call = BuildCallOptions(flags, std::nullopt);
  if (flags.enqueue) {
    client.Enqueue(flags.service, request, deliver, call);
  } else if (flags.fire_and_forget) {
    client.Send(flags.service, request, deliver, call);
  } else {
    client.Submit(flags.service, request, deliver, call);
  }
  const Result result = answer.get();
  Json out;
  out["job_id"] = result.job_id().Hex();
  int status = kExitOk;
  if (const Error* failure = result.error()) {
    const Error error = WithSuggestion(client, *failure, flags.service);
    out["error"] = {{"code", std::string(ToString(error.code()))}, {"message", std::string(error.what())}};
    status = ExitCodeFor(error.code());
  } else if (flags.enqueue) {
    out["stored"] = true;
  } else if (flags.fire_and_forget) {
    out["accepted"] = true;
  } else {
    out["reply"] = Json::parse(ToJson(result.value()));  // the CLI's one JSON mapping (CLI.md)
  }
  std::cout << out.dump(flags.pretty ? 2 : -1) << "\n";
  return status;
}

int RunSingle(ClientOptions options, const SendFlags& flags, const Value& request) {
  Client client(std::move(options));
  if (flags.summary_json) return RunSingleJobJson(client, flags, request);
  try {
    return RunSingleJob(client, flags, request);
  } catch (const Error& error) {
    throw WithSuggestion(client, error, flags.service);
  }
}

// ---- Ctrl-C during a load run --------------------------------------------------------------

constexpr int kExitInterrupted = 130;  // 128 + SIGINT, what a shell reports for Ctrl-C
constexpr auto kInterruptGrace = std::chrono::seconds(1);

// Ctrl-Cs seen. The handler touches only this lock-free atomic and write/_exit, which are
// async-signal-safe; the sending thread polls it.
std::atomic<int> interrupts{0};
static_assert(std::atomic<int>::is_always_lock_free);

extern "C" void OnInterrupt(int) {
  if (interrupts.fetch_add(1) == 0) return;
  constexpr char kMessage[] = "\ncourier: interrupted again: exiting now\n";
  (void)!::write(STDERR_FILENO, kMessage, sizeof kMessage - 1);
  ::_exit(kExitInterrupted);
}

bool Interrupted() { return interrupts.load() > 0; }

// Catches SIGINT while it lives; the previous disposition comes back after.
class InterruptCatcher {
 public:
  InterruptCatcher() {
    interrupts.store(0);
    struct sigaction action {};
    action.sa_handler = OnInterrupt;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESTART;
    installed_ = ::sigaction(SIGINT, &action, &previous_) == 0;
  }
  ~InterruptCatcher() {
    if (installed_) ::sigaction(SIGINT, &previous_, nullptr);
  }
  InterruptCatcher(const InterruptCatcher&) = delete;
  InterruptCatcher& operator=(const InterruptCatcher&) = delete;

 private:
  struct sigaction previous_ {};
  bool installed_ = false;
};

// What the completion callbacks share with the sending thread. Shared: the client cancels
// the jobs still in flight when it is destroyed, and those callbacks must find it alive.
struct LoadState {
  std::mutex mutex;
  std::condition_variable changed;
  Summary summary;
  std::map<std::string, std::string> first_error;  // code → message
  std::uint64_t answered = 0;
  bool closed = false;  // the summary is taken: later answers (cancellations) are not counted
};

int RunLoad(ClientOptions options, const SendFlags& flags, const Value& request) {
  options.max_in_flight = std::max<std::size_t>(1, flags.concurrency);
  options.overflow = OverflowPolicy::kBlock;
  options.report = true;  // a load run's timings belong on the metrics collector
  const auto state = std::make_shared<LoadState>();
  const InterruptCatcher catcher;  // before the client: it outlives the client's shutdown
  Client client(std::move(options));
  const auto started = SteadyClock::now();

  const bool show_progress = ::isatty(STDERR_FILENO) == 1;
  std::atomic<bool> progress_done{false};
  std::thread progress;
  if (show_progress) {
    progress = std::thread([&] {
      const std::size_t width = std::max<std::size_t>(40, TerminalWidth() - 1);
      while (!progress_done.load()) {
        std::string line;
        {
          std::unique_lock lock(state->mutex);
          state->changed.wait_for(lock, std::chrono::milliseconds(100), [&] { return progress_done.load(); });
          if (progress_done.load()) break;
          const double seconds = std::chrono::duration<double>(SteadyClock::now() - started).count();
          line = ProgressLine(state->answered, flags.count, state->summary.ok, state->answered - state->summary.ok,
                              seconds, width);
        }
        std::fprintf(stderr, "\r%s\x1b[K", line.c_str());
        std::fflush(stderr);
      }
      std::fprintf(stderr, "\r\x1b[K");
      std::fflush(stderr);
    });
  }

  auto on_result = [state](Result result) {
    std::lock_guard lock(state->mutex);
    if (state->closed) return;
    if (const Error* error = result.error()) {
      state->summary.AddError(error->code(), result.elapsed());
      state->first_error.try_emplace(std::string(ToString(error->code())), error->what());
    } else {
      state->summary.AddOk(result.elapsed());
    }
    ++state->answered;
    state->changed.notify_all();
  };
  constexpr auto kPoll = std::chrono::milliseconds(50);  // how soon a Ctrl-C is noticed
  for (std::uint64_t i = 0; i < flags.count; ++i) {
    {
      // Wait for a free slot here, not blocked inside Submit, so Ctrl-C is noticed even
      // while every slot is taken by jobs that do not come back.
      std::unique_lock lock(state->mutex);
      while (state->summary.sent - state->answered >= flags.concurrency && !Interrupted()) {
        state->changed.wait_for(lock, kPoll);
      }
      if (Interrupted()) break;
      ++state->summary.sent;
    }
    const CallOptions call = BuildCallOptions(flags, i);
    if (flags.enqueue) {
      client.Enqueue(flags.service, request, on_result, call);
    } else if (flags.fire_and_forget) {
      client.Send(flags.service, request, on_result, call);
    } else {
      client.Submit(flags.service, request, on_result, call);
    }
  }
  Summary summary;
  std::map<std::string, std::string> first_error;
  {
    std::unique_lock lock(state->mutex);
    std::optional<SteadyClock::time_point> give_up;
    while (true) {
      if (Interrupted() && !give_up) {
        give_up = SteadyClock::now() + kInterruptGrace;
        std::fprintf(stderr,
                     "%scourier: interrupted after sending %llu jobs; waiting up to %lld ms for the %llu in "
                     "flight (Ctrl-C again to quit now)\n",
                     show_progress ? "\r\x1b[K\n" : "", static_cast<unsigned long long>(state->summary.sent),
                     static_cast<long long>(std::chrono::milliseconds(kInterruptGrace).count()),
                     static_cast<unsigned long long>(state->summary.sent - state->answered));
        std::fflush(stderr);
      }
      if (state->answered >= state->summary.sent) break;
      if (give_up && SteadyClock::now() >= *give_up) break;
      state->changed.wait_for(lock, kPoll);
    }
    state->closed = true;
    state->summary.elapsed = SteadyClock::now() - started;
    state->summary.interrupted = Interrupted();
    summary = state->summary;
    first_error = state->first_error;
  }
  if (show_progress) {
    progress_done.store(true);
    state->changed.notify_all();
    progress.join();
  }
  std::cout << (flags.summary_json ? summary.ToJson() + "\n" : summary.ToText()) << std::flush;
  for (const auto& [code, message] : first_error) {
    std::cerr << "courier: first " << code << " error: " << message << "\n";
  }
  return summary.interrupted ? kExitInterrupted : summary.ExitCode();
}

int RunSend(const GlobalFlags& global, const SendFlags& flags) {
  Value request;
  try {
    request = ReadRequest(flags.json);
  } catch (const Error& error) {
    std::cerr << "courier: the request is not valid JSON: " << error.what() << "\n";
    return kExitUsage;
  }
  ClientOptions options = BuildOptions(global);
  if (flags.count == 1) return RunSingle(std::move(options), flags, request);
  return RunLoad(std::move(options), flags, request);
}

// ---- services, workers, stats, ping --------------------------------------------------------

int RunServices(const GlobalFlags& global, bool json, bool cluster) {
  Client client(BuildOptions(global));
  const std::vector<ServiceInfo> services = cluster ? client.ClusterServices() : client.Services();
  if (json) {
    Json out = Json::array();
    for (const auto& s : services) {
      Json row = {{"name", s.name},         {"workers", s.workers},       {"queued", s.queued},
                  {"in_flight", s.in_flight}, {"strategy", s.strategy},   {"dispatched", s.dispatched},
                  {"replied", s.replied},   {"failed", s.failed}};
      if (cluster) row["brokers"] = s.brokers;
      out.push_back(std::move(row));
    }
    std::cout << out.dump() << "\n";
    return kExitOk;
  }
  std::vector<std::string> header{"SERVICE", "WORKERS", "QUEUED", "IN_FLIGHT", "STRATEGY", "DISPATCHED", "REPLIED", "FAILED"};
  if (cluster) header.push_back("BROKERS");
  std::vector<std::vector<std::string>> rows;
  for (const auto& s : services) {
    std::vector<std::string> row{s.name, std::to_string(s.workers), std::to_string(s.queued), std::to_string(s.in_flight),
                                 s.strategy, std::to_string(s.dispatched), std::to_string(s.replied), std::to_string(s.failed)};
    if (cluster) row.push_back(std::to_string(s.brokers.size()));
    rows.push_back(std::move(row));
  }
  std::cout << RenderTable(header, rows);
  return kExitOk;
}

int RunWorkers(const GlobalFlags& global, bool json, bool cluster) {
  Client client(BuildOptions(global));
  const std::vector<WorkerInfo> workers = cluster ? client.ClusterWorkers() : client.Workers();
  if (json) {
    Json out = Json::array();
    for (const auto& w : workers) {
      Json keys = Json::array();
      for (const WorkerKey& key : w.keys) keys.push_back({{"id", key.id}, {"fingerprint", key.fingerprint}});
      Json row = {{"id", w.id},           {"service", w.service}, {"protocol", w.protocol}, {"capacity", w.capacity},
                  {"in_flight", w.in_flight}, {"weight", w.weight}, {"host", w.host},     {"pid", w.pid},
                  {"instance", w.instance}, {"idle_ms", w.idle_ms}, {"stuck", w.stuck},  {"keys", std::move(keys)}};
      if (cluster) row["broker"] = w.broker;
      out.push_back(std::move(row));
    }
    std::cout << out.dump() << "\n";
    return kExitOk;
  }
  std::vector<std::string> header{"SERVICE", "ID",       "PROTOCOL", "CAPACITY", "IN_FLIGHT", "WEIGHT",
                                  "HOST",    "PID",      "INSTANCE", "IDLE_MS",  "STUCK",     "KEYS"};
  if (cluster) header.push_back("BROKER");
  std::vector<std::vector<std::string>> rows;
  for (const auto& w : workers) {
    // KEYS: id:fingerprint pairs, e.g. "1:0123456789abcdef,2:…"; "-" when none announced.
    std::string keys;
    for (const WorkerKey& key : w.keys) keys += (keys.empty() ? "" : ",") + std::to_string(key.id) + ":" + key.fingerprint;
    std::vector<std::string> row{w.service,  w.id,         w.protocol,
                                 std::to_string(w.capacity), std::to_string(w.in_flight),
                                 std::to_string(w.weight),   w.host,
                                 std::to_string(w.pid),      w.instance,
                                 std::to_string(w.idle_ms),  std::to_string(w.stuck),
                                 keys.empty() ? "-" : keys};
    if (cluster) row.push_back(w.broker);
    rows.push_back(std::move(row));
  }
  std::cout << RenderTable(header, rows);
  return kExitOk;
}

int RunStats(const GlobalFlags& global, bool cluster) {
  Client client(BuildOptions(global));
  if (!cluster) {
    std::cout << ToJson(client.Query("stats"), 2) << "\n";
    return kExitOk;
  }
  Value merged;
  int code = kExitOk;
  for (const BrokerAnswer& answer : client.QueryAll("stats")) {
    if (answer.result) {
      merged.Set(answer.broker, *answer.result);
    } else {
      merged.Set(answer.broker, Value::Object({{"error", std::string(ToString(answer.error->code()))},
                                               {"message", std::string(answer.error->what())}}));
      code = kExitUnavailable;
    }
  }
  std::cout << ToJson(merged, 2) << "\n";
  return code;
}

int RunPing(const GlobalFlags& global, bool json) {
  Client client(BuildOptions(global));
  const std::vector<BrokerPing> pings = client.Ping();
  bool all_up = true;
  Json out = Json::array();
  std::vector<std::vector<std::string>> rows;
  for (const BrokerPing& ping : pings) {
    if (ping.round_trip) {
      out.push_back({{"broker", ping.broker}, {"ok", true}, {"rtt_ms", static_cast<double>(ping.round_trip->count()) / 1000.0}});
      rows.push_back({ping.broker, "up", FormatMs(*ping.round_trip)});
    } else {
      all_up = false;
      out.push_back({{"broker", ping.broker}, {"ok", false}, {"error", std::string(ping.error->what())}});
      rows.push_back({ping.broker, "down", "-"});
    }
  }
  std::cout << (json ? out.dump() + "\n" : RenderTable({"BROKER", "STATUS", "RTT_MS"}, rows));
  return all_up ? kExitOk : kExitUnavailable;
}

// ---- keygen --------------------------------------------------------------------------------

// Returns: the default name of a CURVE key: the host name, reduced to [A-Za-z0-9_-].
std::string DefaultCurveName() {
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0) return "courier";
  std::string name;
  for (const char* c = host; *c != '\0' && name.size() < 64; ++c) {
    name += (std::isalnum(static_cast<unsigned char>(*c)) != 0 || *c == '_' || *c == '-') ? *c : '-';
  }
  return name.empty() ? "courier" : name;
}

// courier keygen --curve: a CURVE key pair file (mode 0600). The public key alone goes to
// stdout (for scripts: KEY=$(courier keygen --curve --out w.key)), the rest to stderr.
int RunCurveKeygen(std::string name, std::string out, bool force) {
  if (name.empty()) name = DefaultCurveName();
  const bool valid_name = name.size() <= 64 && std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_' || c == '-';
  });
  if (!valid_name) {
    throw Error(ErrorCode::kConfig, "--name '" + name + "': use 1 to 64 of A-Z a-z 0-9 _ - (it becomes an "
                                    "allow-list key and the sender name in error records)");
  }
  const fs::path path = out.empty() ? Keyring::DefaultPath().parent_path() / (name + ".curve.key") : fs::path(out);
  if (path.has_parent_path() && !fs::exists(path.parent_path())) {
    fs::create_directories(path.parent_path());
    ::chmod(path.parent_path().c_str(), 0700);
  }
  if (fs::exists(path)) {
    if (!force) {
      throw Error(ErrorCode::kIo, path.string() + " already exists; pass --force to replace it (peers that "
                                                  "allow-listed the old public key will then refuse this one)");
    }
    fs::remove(path);
  }
  const CurveKeyPair pair = GenerateCurveKeyPair(name);
  SaveCurveKeyPair(path, pair);
  std::cerr << "wrote CURVE key pair '" << name << "' (mode 0600) to " << path.string() << "\n"
            << "allow-list line for the broker: " << name << " = \"" << pair.public_key << "\"\n";
  std::cout << pair.public_key << "\n";
  return kExitOk;
}

int RunKeygen(const GlobalFlags& global, std::string out, bool force) {
  fs::path path = out;
  if (path.empty()) {
    if (!global.keyring.empty()) {
      path = global.keyring;
    } else if (const char* env = std::getenv("COURIER_KEYRING"); env != nullptr && *env != '\0') {
      path = env;
    } else {
      path = Keyring::DefaultPath();
    }
  }
  if (path.has_parent_path() && !fs::exists(path.parent_path())) {
    fs::create_directories(path.parent_path());
    ::chmod(path.parent_path().c_str(), 0700);
  }
  std::uint32_t id = 0;
  if (force) {
    const Keyring keyring = Keyring::Generate();
    keyring.Save(path);
    id = keyring.active_key_id();
  } else {
    if (fs::exists(path)) {
      throw Error(ErrorCode::kIo, path.string() + " already exists; pass --force to replace it (every peer "
                                                  "sealing with the old key will then fail to authenticate)");
    }
    id = GenerateKeyFile(path);
  }
  std::cout << "wrote a new keyring (active key " << id << ", mode 0600) to " << path.string() << "\n";
  return kExitOk;
}

int Main(int argc, char** argv) {
  CLI::App app{"Send jobs to Courier services and inspect brokers.", "courier"};
  app.require_subcommand(1);
  app.fallthrough();
  GlobalFlags global;
  app.add_option("-b,--broker", global.brokers, "broker endpoint, repeatable (default tcp://127.0.0.1:5555)");
  app.add_option("-k,--keyring", global.keyring, "key file (default ~/.config/courier/keyring.toml, created if missing)");
  app.add_option("-c,--config", global.config, "client.toml with defaults (flags and COURIER_* override it)");
  app.add_option("-d,--deadline", global.deadline, "deadline per job, e.g. 500ms, 5s (default 30s)");
  app.add_option("--failover-timeout", global.failover_timeout, "silence after which a broker counts as down (default 3s)");
  app.add_option("--curve-server-key", global.curve_server_key,
                 "turn CURVE on: the brokers' public key (Z85), or a file holding it");
  app.add_option("--curve-key", global.curve_key, "this client's CURVE key pair file (courier keygen --curve)");
  app.add_flag("-v,--verbose", global.verbose, "log debug messages to stderr");
  command_line::AddLogFormatFlag(app, global.log_format);
  command_line::AddVersionFlag(app, "courier");

  SendFlags send;
  CLI::App* send_cmd = app.add_subcommand("send", "send a job and print the reply as JSON (or many: --count)");
  send_cmd->add_option("service", send.service, "service name")->required();
  send_cmd->add_option("json", send.json, "request as JSON, or - to read it from stdin (default null)");
  send_cmd->add_option("-n,--count", send.count, "jobs to send (prints a summary when > 1)")
      ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1'000'000'000}));
  send_cmd->add_option("-C,--concurrency", send.concurrency, "jobs in flight at once (default 16)")
      ->check(CLI::Range(std::size_t{1}, std::size_t{100'000}));
  send_cmd->add_flag("--json", send.summary_json, "print the summary as one JSON object");
  CLI::Option* send_flag = send_cmd->add_flag("--send", send.fire_and_forget, "fire-and-forget: wait for acceptance only");
  send_cmd->add_flag("--enqueue", send.enqueue, "store the job and print its id; the result is kept (courier job ID)")
      ->excludes(send_flag);
  send_cmd->add_flag("--pretty", send.pretty, "indent the reply");
  send_cmd->add_option("--idempotency-key", send.idempotency_key, "derive the job id from this key (job i of --count: KEY/i)");
  send_cmd->add_option("--max-attempts", send.max_attempts, "deliveries the broker may try (default 3)")
      ->check(CLI::Range(1, 1000));
  send_cmd->add_option("--retries", send.retries, "client retries of retryable errors (default 3)")->check(CLI::Range(0, 100));

  bool services_json = false, services_cluster = false;
  CLI::App* services_cmd = app.add_subcommand("services", "list the services a broker knows");
  services_cmd->add_flag("--json", services_json, "print JSON");
  services_cmd->add_flag("--cluster", services_cluster, "ask every broker and merge");

  bool workers_json = false, workers_cluster = false;
  CLI::App* workers_cmd = app.add_subcommand("workers", "list the workers a broker knows");
  workers_cmd->add_flag("--json", workers_json, "print JSON");
  workers_cmd->add_flag("--cluster", workers_cluster, "ask every broker and merge");

  bool stats_cluster = false;
  CLI::App* stats_cmd = app.add_subcommand("stats", "print a broker's counters as JSON");
  stats_cmd->add_flag("--cluster", stats_cluster, "ask every broker");

  bool ping_json = false;
  CLI::App* ping_cmd = app.add_subcommand("ping", "ping every broker and print round trips");
  ping_cmd->add_flag("--json", ping_json, "print JSON");

  std::string keygen_out;
  bool keygen_force = false;
  bool keygen_curve = false;
  std::string keygen_name;
  CLI::App* keygen_cmd = app.add_subcommand("keygen", "create a payload key file, or a CURVE key pair (--curve); mode 0600");
  keygen_cmd->add_option("-o,--out", keygen_out,
                         "where to write it (default: --keyring, $COURIER_KEYRING or ~/.config/courier/keyring.toml; "
                         "with --curve ~/.config/courier/NAME.curve.key)");
  keygen_cmd->add_flag("--force", keygen_force, "replace an existing file");
  keygen_cmd->add_flag("--curve", keygen_curve, "a CurveZMQ transport key pair (Z85); prints the public key");
  keygen_cmd->add_option("--name", keygen_name, "with --curve: the key's name (allow-list key, sender name; default: host name)");

  // `courier errors` and `courier metrics` query the error sink and the metrics collector.
  const CommandRunner errors = AddErrorsCommand(app, [&global] { return BuildOptions(global); });
  const CommandRunner metrics = AddMetricsCommand(app, [&global] { return BuildOptions(global); });
  // `courier job` and `courier jobs` look up stored jobs.
  const CommandRunner jobs = AddJobsCommands(app, [&global] { return BuildOptions(global); });

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    return command_line::ExitStatus(app, error);
  }

  try {
    if (*send_cmd) return RunSend(global, send);
    if (*services_cmd) return RunServices(global, services_json, services_cluster);
    if (*workers_cmd) return RunWorkers(global, workers_json, workers_cluster);
    if (*stats_cmd) return RunStats(global, stats_cluster);
    if (*ping_cmd) return RunPing(global, ping_json);
    if (*keygen_cmd && keygen_curve) return RunCurveKeygen(keygen_name, keygen_out, keygen_force);
    if (*keygen_cmd) {
      if (!keygen_name.empty()) throw Error(ErrorCode::kConfig, "--name applies to CURVE keys only (add --curve)");
      return RunKeygen(global, keygen_out, keygen_force);
    }
    if (auto status = errors()) return *status;
    if (auto status = metrics()) return *status;
    if (auto status = jobs()) return *status;
  } catch (const Error& error) {
    PrintError(error);
    return ExitCodeFor(error.code());
  } catch (const std::exception& error) {
    std::cerr << "courier: " << error.what() << "\n";
    return kExitJobErrors;
  }
  return kExitUsage;
}

}  // namespace
}  // namespace courier::cli

int main(int argc, char** argv) { return courier::cli::Main(argc, argv); }
