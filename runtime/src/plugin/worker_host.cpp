// The worker host: registration, then the I/O loop that owns every socket (one DEALER
// per broker × service, the PULL the pool answers on, a signalfd and an eventfd), and the
// protocol state of each connection: READY, heartbeats, liveness, reconnect with backoff,
// DISCONNECT, drain.
#include "courier/worker.hpp"

#include <signal.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <map>
#include <random>
#include <set>
#include <span>
#include <stdexcept>
#include <thread>
#include <unordered_map>

#include <spdlog/spdlog.h>
#include <zmq.hpp>

#include "courier/error.hpp"
#include "courier/keyring.hpp"
#include "curve_socket.hpp"
#include "envelope_codec.hpp"
#include "frames.hpp"
#include "job_pool.hpp"
#include "job_runner.hpp"
#include "key_reject_warnings.hpp"
#include "key_source.hpp"
#include "process_pool.hpp"
#include "plugin_loader.hpp"
#include "prefetch_planner.hpp"
#include "protocol.hpp"
#include "reporting/worker_reporting.hpp"
#include "stage_stats.hpp"

namespace courier {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using detail::WorkerCommand;

namespace {

std::string HostName() {
  char name[256] = {};
  if (::gethostname(name, sizeof name - 1) != 0) return "unknown";
  return name;
}

std::string_view CommandName(WorkerCommand command) {
  switch (command) {
    case WorkerCommand::kReady: return "READY";
    case WorkerCommand::kRequest: return "REQUEST";
    case WorkerCommand::kReply: return "REPLY";
    case WorkerCommand::kHeartbeat: return "HEARTBEAT";
    case WorkerCommand::kDisconnect: return "DISCONNECT";
    case WorkerCommand::kError: return "ERROR";
    case WorkerCommand::kCredit: return "CREDIT";
    case WorkerCommand::kReject: return "REJECT";
  }
  return "UNKNOWN";
}

bool LooksLikePath(const std::string& plugin) {
  return plugin.find('/') != std::string::npos || plugin.ends_with(".so");
}

std::optional<spdlog::level::level_enum> LevelFromName(std::string_view name) {
  static constexpr std::pair<std::string_view, spdlog::level::level_enum> kLevels[] = {
      {"trace", spdlog::level::trace}, {"debug", spdlog::level::debug},
      {"info", spdlog::level::info},   {"warn", spdlog::level::warn},
      {"error", spdlog::level::err},   {"critical", spdlog::level::critical},
      {"off", spdlog::level::off}};
  for (const auto& [level_name, level] : kLevels) {
    if (level_name == name) return level;
  }
  return std::nullopt;
}

std::string DescribeKeys(const Keyring& keyring) {
  std::string out;
  for (const std::uint32_t id : keyring.ids()) {
    const std::string fingerprint = keyring.Fingerprint(id);
    char hex[17] = {};
    for (std::size_t i = 0; i < 8; ++i) std::snprintf(hex + 2 * i, 3, "%02x", static_cast<unsigned char>(fingerprint[i]));
    out += (out.empty() ? "" : ", ") + std::string("key ") + std::to_string(id) + " " + hex +
           (id == keyring.active_key_id() ? " (active)" : "");
  }
  return out;
}

// A handler child's reporter: it keeps the records for the host, which reports them.
class CollectingErrorReporter final : public detail::ErrorReporter {
 public:
  void Report(const detail::ErrorRecord& record) noexcept override {
    try {
      records.push_back(record);
    } catch (...) {
      // Out of memory in the child: the record is lost, the job's answer is not.
    }
  }
  std::vector<detail::ErrorRecord> records;
};

// Distinct jobs in a row that did not open with the host's keys (no payload opened in
// between) after which it stops taking a service's jobs: its keyring is likely wrong
// (PROTOCOL.md §7.7). Distinct: one tampered job handed back to the same host on every
// attempt says nothing about the host's keys.
constexpr std::size_t kKeyRejectsBeforeQuarantine = 3;

// At most one warning per service and key id this often about jobs that did not open
// (each counts the jobs since the last): the key id is what tells an operator whose
// keyring differs, but one line per job would drown the log.
constexpr auto kKeyRejectWarningInterval = std::chrono::seconds(10);

}  // namespace

struct WorkerHost::Impl {
  // One DEALER to one broker for one service.
  struct Connection {
    std::size_t service = 0;
    std::string endpoint;
    std::unique_ptr<zmq::socket_t> socket;  // null while waiting to reconnect
    // With CURVE: the socket's handshake failures (the broker refused our keys). libzmq
    // would retry every reconnect_ivl for ever; we close the socket and back off instead.
    std::unique_ptr<zmq::socket_t> monitor;
    std::uint64_t generation = 0;           // bumped on every reset; stale results are dropped
    Clock::time_point last_sent{};
    Clock::time_point last_received{};
    Clock::time_point reconnect_at{};
    milliseconds backoff{};
    std::size_t in_flight = 0;  // jobs taken on this connection since it was made, unanswered
    std::uint32_t credit = 0;   // the capacity the broker was last told (READY, CREDIT)
    std::uint32_t desired = 0;  // the credit PlanCredits decided for it
    std::size_t member = 0;     // its place among its service's connections (CreditPlan)
    bool hungry = false;        // its broker showed it has more work for us (credit sharing)
    Clock::time_point granted_at{};  // when it was given a slot it has not used yet
    bool heard = false;  // the broker spoke since we (re)connected
    std::uint64_t connects = 0;
    std::uint32_t stuck = 0;       // jobs taken on it that are past their deadline and still running
    std::uint32_t stuck_sent = 0;  // the stuck count the broker was last told (CREDIT frame 4)
  };
  // A job handed to the pool, until its result comes back.
  struct InFlight {
    std::size_t connection = 0;
    std::uint64_t generation = 0;
    JobId job_id;
    std::uint64_t deadline_ms = 0;
    Clock::time_point received{};
    bool reported_late = false;
    std::string sender;  // the submitter's transport key name, for the late-job report
    std::uint32_t key_id = 0;  // the payload's key id, named when it does not open here
  };

  explicit Impl(WorkerOptions opts) : options(std::move(opts)) {
    if (options.brokers.empty()) throw Error(ErrorCode::kConfig, "the worker needs at least one broker");
    if (options.threads == 0) options.threads = std::max(1u, std::thread::hardware_concurrency());
    if (options.instance.empty()) options.instance = HostName() + ":" + std::to_string(::getpid());
    options.curve = options.curve.Resolved();  // CURVE key pair loaded (and checked) once
    stop_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (stop_fd < 0) throw Error(ErrorCode::kIo, std::string("eventfd: ") + std::strerror(errno));
    if (options.handle_signals) {
      sigset_t set;
      sigemptyset(&set);
      sigaddset(&set, SIGTERM);
      sigaddset(&set, SIGINT);
      sigaddset(&set, SIGHUP);
      pthread_sigmask(SIG_BLOCK, &set, nullptr);
      signal_fd = ::signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
      if (signal_fd < 0) throw Error(ErrorCode::kIo, std::string("signalfd: ") + std::strerror(errno));
    }
  }

  ~Impl() {
    // Normally Shutdown() released all of this; here after Run() threw part-way.
    connections.clear();
    processes.reset();
    pool.reset();  // joins the threads, whose PUSH sockets close before the PULL
    results.reset();
    context.reset();
    if (stop_fd >= 0) ::close(stop_fd);
    if (signal_fd >= 0) ::close(signal_fd);
  }

  // --- registration -----------------------------------------------------------------

  std::filesystem::path ConfigDir() const { return options.config_file.parent_path(); }

  detail::ServiceRuntime* Find(std::string_view name) {
    for (auto& service : services) {
      if (service->name == name) return service.get();
    }
    return nullptr;
  }

  // `plugin_file`: the shared object the service comes from (empty for Register<T>).
  void AddService(const CourierServiceV1& descriptor, const ConfigSection& config, std::string origin,
                  const std::filesystem::path& plugin_file = {}) {
    std::string name(descriptor.name, descriptor.name_size);
    if (const detail::ServiceRuntime* existing = Find(name)) {
      throw Error(ErrorCode::kConfig, "service " + name + " is registered twice (" + existing->origin +
                                          " and " + origin + ")");
    }
    auto service = std::make_unique<detail::ServiceRuntime>();
    service->name = name;
    service->origin = std::move(origin);
    service->settings = ServiceSettings::Read(config);
    service->idempotent = descriptor.idempotent != 0;
    try {
      service->instance.reset(descriptor.create(&config));
    } catch (const Error& e) {
      throw Error(ErrorCode::kConfig, "service " + name + ": " + e.what());
    } catch (const std::exception& e) {
      throw Error(ErrorCode::kConfig, "service " + name + " failed to start: " + e.what());
    }
    config.RejectUnknownKeys();  // even if the service forgot to

    // Schema: configured file > NAME.toml in a schema dir > beside the plugin > embedded >
    // none. Never the working directory: what a host checks must not depend on where it
    // was started.
    if (!service->settings.schema.empty()) {
      std::filesystem::path file(service->settings.schema);
      if (file.is_relative() && !ConfigDir().empty()) file = ConfigDir() / file;
      std::error_code ignored;
      if (!std::filesystem::is_regular_file(file, ignored)) {
        throw Error(ErrorCode::kConfig, "service " + name + ": schema file " + file.string() +
                                            " (services." + name + ".schema) does not exist; the service "
                                            "would run unchecked, so the host refuses to start");
      }
      service->schema = detail::PayloadSchema::LoadFile(file);
      service->schema_origin = file.string();
    } else {
      std::vector<std::filesystem::path> candidates;
      for (const auto& dir : options.schema_dirs) candidates.push_back(dir / (name + ".toml"));
      if (!plugin_file.empty()) {
        // Beside the .so, or in the share/ of the prefix it is installed in (lib/courier).
        const std::filesystem::path dir = plugin_file.parent_path();
        candidates.push_back(dir / (name + ".toml"));
        candidates.push_back(dir / "../../share/courier/schemas/services" / (name + ".toml"));
      }
      for (const auto& file : candidates) {
        std::error_code ignored;
        if (std::filesystem::is_regular_file(file, ignored)) {
          service->schema = detail::PayloadSchema::LoadFile(file);
          service->schema_origin = std::filesystem::weakly_canonical(file, ignored).string();
          if (service->schema_origin.empty()) service->schema_origin = file.string();
          break;
        }
      }
      if (!service->schema && descriptor.schema != nullptr) {
        service->schema = detail::PayloadSchema::Parse(std::string_view(descriptor.schema, descriptor.schema_size),
                                                       name + " (embedded schema)");
        service->schema_origin = "embedded";
      }
    }
    if (service->schema && !service->schema->service().empty() && service->schema->service() != name) {
      throw Error(ErrorCode::kConfig, "schema " + service->schema_origin + " describes service \"" +
                                          service->schema->service() + "\", not \"" + name + "\"");
    }
    if (!service->schema) service->schema_origin = "none";
    service->verify_replies = service->schema && service->schema->has_reply() &&
                              service->settings.verify_replies.value_or(options.verify_replies);
    if (!service->idempotent) {
      service->cache = std::make_unique<detail::ReplyCache<detail::DuplicateWaiter>>(
          service->settings.dedup_window, service->settings.dedup_entries);
    }
    service->capacity = EffectiveCapacity(service->settings);
    service->stats_index = stats.AddService(name);
    spdlog::info("service {} ({}): capacity {}, weight {}, {}, schema {}{}{}", name, service->origin,
                 CapacityText(service->settings), service->settings.weight,
                 service->idempotent ? "idempotent" : "not idempotent (duplicates suppressed)",
                 service->schema_origin, service->verify_replies ? " (replies verified)" : "",
                 service->settings.allow_unsealed ? ", accepts unsealed payloads" : "");
    services.push_back(std::move(service));
  }

  std::uint32_t EffectiveCapacity(const ServiceSettings& settings) const {
    if (settings.capacity != 0) return settings.capacity;
    return std::min<std::uint32_t>(options.threads, detail::kMaxCapacity);
  }

  std::string CapacityText(const ServiceSettings& settings) const {
    if (settings.capacity != 0) return std::to_string(settings.capacity);
    return "auto (" + std::to_string(EffectiveCapacity(settings)) + " threads, plus jobs held ready)";
  }

  // A service without a set capacity sizes its own (threads plus jobs held ready).
  std::optional<detail::PrefetchPlanner> MakePrefetch(const ServiceSettings& settings) const {
    if (settings.capacity != 0) return std::nullopt;
    return detail::PrefetchPlanner(std::min<std::uint32_t>(options.threads, detail::kMaxCapacity));
  }

  void NoteHeld(std::size_t service, bool finished, Clock::time_point now) {
    if (prefetch[service]) prefetch[service]->OnHeldChange(held[service], finished, now);
  }

  // Offers a service's brokers its planned capacity when the plan changes.
  void PlanPrefetch(Clock::time_point now) {
    for (std::size_t i = 0; i < services.size(); ++i) {
      if (!prefetch[i]) continue;
      const std::uint32_t planned = prefetch[i]->Plan(now);
      if (planned == services[i]->capacity.load()) continue;
      spdlog::debug("service {}: capacity {} -> {} (service time {} us)", services[i]->name,
                    services[i]->capacity.load(), planned, prefetch[i]->service_time().count() / 1000);
      services[i]->capacity = planned;
      credit_changed = true;
    }
  }

  std::filesystem::path ResolvePlugin(const std::string& plugin, const std::filesystem::path& base) const {
    if (LooksLikePath(plugin)) {
      std::filesystem::path path(plugin);
      if (path.is_relative() && !base.empty()) path = base / path;
      return path;
    }
    if (options.plugin_dir.empty()) {
      throw Error(ErrorCode::kConfig, "plugin \"" + plugin +
                                          "\" is a bare name but no plugin_dir is set; give a path to the .so");
    }
    return options.plugin_dir / ("lib" + plugin + ".so");
  }

  std::vector<std::string> LoadPlugin(const std::filesystem::path& given, const std::vector<std::string>& only) {
    std::error_code ignored;
    std::filesystem::path path = std::filesystem::weakly_canonical(given, ignored);
    if (path.empty()) path = given;
    const CourierPluginV1& table = detail::LoadPluginFile(path);
    std::vector<std::string> registered;
    std::vector<std::string> provided;
    for (std::uint32_t i = 0; i < table.service_count; ++i) {
      const CourierServiceV1& descriptor = table.services[i];
      std::string name(descriptor.name, descriptor.name_size);
      provided.push_back(name);
      if (!only.empty() && std::find(only.begin(), only.end(), name) == only.end()) continue;
      if (const detail::ServiceRuntime* existing = Find(name); existing && existing->origin == path.string()) {
        continue;  // already loaded from this very file (config and --plugin both name it)
      }
      AddService(descriptor, options.services.Section(name), path.string(), path);
      registered.push_back(std::move(name));
    }
    for (const std::string& wanted : only) {
      if (std::find(provided.begin(), provided.end(), wanted) == provided.end()) {
        std::string list;
        for (const auto& name : provided) list += (list.empty() ? "" : ", ") + name;
        throw Error(ErrorCode::kConfig, "services." + wanted + ": plugin " + path.string() +
                                            " provides no service \"" + wanted + "\" (it provides: " + list + ")");
      }
    }
    return registered;
  }

  void LoadConfiguredPlugins() {
    for (const std::string& name : options.services.Keys()) {
      const ConfigSection section = options.services.Section(name);
      if (!section.Has("plugin")) continue;
      const std::string plugin = section.GetString("plugin", "");
      LoadPlugin(ResolvePlugin(plugin, ConfigDir()), {name});
    }
  }

  // --- handler child processes (isolation = "process") ------------------------------------

  std::size_t MaxChildFrame() const { return 2 * options.max_message_bytes + (1 << 20); }

  // Runs in a handler child (forked by the zygote, one thread): its own stage journal and
  // reporter, whose contents go back to the host with each job's outputs.
  void ServeChild(int link) {
    detail::StageStats child_stats;
    for (const auto& service : services) child_stats.AddService(service->name);
    std::vector<detail::StageSample> journal;
    child_stats.SetJournal(&journal);
    CollectingErrorReporter collected;
    const detail::JobRunner child_runner(*keys, child_stats, collected, options.max_message_bytes);
    detail::ServeChild(link, MaxChildFrame(), [&](detail::JobInput& job) {
      detail::ChildDone done;
      done.seq = job.seq;
      done.outputs = child_runner.Run(*services[job.service], job);
      done.samples.swap(journal);
      done.records.swap(collected.records);
      journal.clear();
      collected.records.clear();
      return done;
    });
  }

  // --- the I/O loop -------------------------------------------------------------------

  int Run() {
    if (services.empty()) {
      throw Error(ErrorCode::kConfig,
                  "no services to serve: pass --plugin PATH.so, or list [services.NAME] tables with "
                  "plugin = \"PATH.so\" in the config file");
    }
    for (const std::string& name : options.services.Keys()) {
      if (Find(name) == nullptr) {
        throw Error(ErrorCode::kConfig,
                    "services." + name + ": no plugin provides this service (add plugin = \"PATH.so\" "
                    "to the table, pass --plugin, or fix the name)");
      }
    }
    const std::filesystem::path key_file = options.keyring.empty() ? Keyring::DefaultPath() : options.keyring;
    // Not timed as "key": an idle host reports nothing (a job's key stage includes a reload).
    if (options.keyring.empty()) (void)Keyring::LoadOrCreate(key_file);  // creates it on first use
    keys = detail::KeySource::FromFile(key_file);
    spdlog::info("payload keys from {}: {}", key_file.string(), DescribeKeys(*keys->Current()));
    // The zygote of the handler processes is forked now, while this process has one thread.
    std::unique_ptr<detail::Zygote> zygote;
    for (const auto& service : services) {
      service->isolation = service->settings.isolation.value_or(options.isolation);
    }
    if (std::any_of(services.begin(), services.end(),
                    [](const auto& service) { return service->isolation == Isolation::kProcess; })) {
      zygote = std::make_unique<detail::Zygote>([this](int link) { ServeChild(link); }, options.max_memory);
    }
    const ReporterOptions reporting = detail::WorkerReporterOptions(options.brokers, options.instance, options.curve);
    if (options.report_errors) {
      ReporterOptions errors = reporting;
      // error_send, recorded on the reporter's thread (its own stats shard) per accepted report.
      errors.delivered = [this, index = ServiceIndex()](std::string_view service, std::chrono::nanoseconds waited) {
        const auto found = index.find(service);
        if (found != index.end()) stats.Record(found->second, Stage::kErrorSend, waited);
      };
      reporter = std::make_unique<detail::SinkErrorReporter>(std::move(errors));
    }
    if (options.report_metrics) {
      metrics = std::make_unique<MetricsReporter>(reporting, [this] {
        std::vector<StageTotals> totals = detail::ToStageTotals(stats.Snapshot());
        for (const StageSnapshotFn& source : stage_sources) {
          std::vector<StageTotals> more = source();
          totals.insert(totals.end(), std::make_move_iterator(more.begin()), std::make_move_iterator(more.end()));
        }
        return totals;
      });
    }
    runner = std::make_unique<detail::JobRunner>(*keys, stats, *reporter, options.max_message_bytes);

    context = std::make_unique<zmq::context_t>(0);  // inproc only: no I/O threads
    results = std::make_unique<zmq::socket_t>(*context, zmq::socket_type::pull);
    results->set(zmq::sockopt::linger, 0);
    results->set(zmq::sockopt::rcvhwm, 0);
    const std::string results_endpoint = "inproc://courier-worker-results-" + std::to_string(reinterpret_cast<std::uintptr_t>(this));
    results->bind(results_endpoint);
    pool = std::make_unique<detail::JobPool>(*context, results_endpoint, options.threads,
                                             [this](detail::JobInput& job) {
                                               return runner->Run(*services[job.service], job);
                                             });
    if (zygote) {
      detail::ProcessPoolOptions pool_options;
      pool_options.children = options.threads;
      pool_options.max_jobs_per_child = options.max_jobs_per_child;
      pool_options.kill_after = options.kill_after;
      pool_options.max_frame_bytes = MaxChildFrame();
      for (const auto& service : services) {
        if (service->idempotent) {
          pool_options.dedup.emplace_back();
        } else {
          pool_options.dedup.push_back(
              detail::DedupWindow{service->settings.dedup_window, service->settings.dedup_entries});
        }
      }
      processes = std::make_unique<detail::ProcessPool>(
          std::move(zygote), pool_options, stats, *reporter,
          [this](detail::JobOutput&& output) { HandleOutput(std::move(output)); });
    }
    key_rejects.assign(services.size(), {});
    quarantined.assign(services.size(), false);

    const Clock::time_point now = Clock::now();
    held.assign(services.size(), 0);
    prefetch.clear();
    for (const auto& service : services) prefetch.push_back(MakePrefetch(service->settings));
    plans.assign(services.size(), CreditPlan{});
    for (const std::string& endpoint : options.brokers) {
      for (std::size_t s = 0; s < services.size(); ++s) {
        Connection connection;
        connection.service = s;
        connection.member = plans[s].members.size();
        plans[s].members.push_back(connections.size());
        connection.endpoint = endpoint;
        connection.backoff = options.reconnect_initial;
        connections.push_back(std::move(connection));
      }
    }
    for (Connection& connection : connections) {
      try {
        Connect(connection, now);
      } catch (const zmq::error_t& e) {
        throw Error(ErrorCode::kConfig, "broker " + connection.endpoint + ": " + e.what());
      }
    }
    std::string names;
    for (const auto& service : services) names += (names.empty() ? "" : ", ") + service->name;
    std::string brokers;
    for (const auto& endpoint : options.brokers) brokers += (brokers.empty() ? "" : ", ") + endpoint;
    std::string isolation;
    for (const auto& service : services) {
      isolation += (isolation.empty() ? "" : ", ") + service->name + " " + std::string(ToString(service->isolation));
    }
    spdlog::info("courier-worker {} serving [{}] to [{}] with {} handler slots (isolation: {}; instance {}, heartbeat {} ms)",
                 COURIER_VERSION_STRING, names, brokers, options.threads, isolation, options.instance,
                 options.heartbeat_interval.count());

    Loop();
    return Shutdown();
  }

  void Loop() {
    std::vector<zmq::pollitem_t> items;
    std::vector<std::size_t> item_connection;  // items[i] → connection index (fixed items first)
    while (true) {
      const Clock::time_point now = Clock::now();
      if (draining && (in_flight.empty() || now >= drain_deadline)) return;

      if (sockets_changed) {
        items.clear();
        item_connection.clear();
        items.push_back({nullptr, stop_fd, ZMQ_POLLIN, 0});
        items.push_back({nullptr, signal_fd, static_cast<short>(signal_fd >= 0 ? ZMQ_POLLIN : 0), 0});
        items.push_back({results->handle(), 0, ZMQ_POLLIN, 0});
        for (std::size_t i = 0; i < connections.size(); ++i) {
          if (!connections[i].socket) continue;
          items.push_back({connections[i].socket->handle(), 0, ZMQ_POLLIN, 0});
          item_connection.push_back(i);
        }
        monitor_items = items.size();
        monitor_connection.clear();
        for (std::size_t i = 0; i < connections.size(); ++i) {
          if (!connections[i].monitor) continue;
          items.push_back({connections[i].monitor->handle(), 0, ZMQ_POLLIN, 0});
          monitor_connection.push_back(i);
        }
        base_items = items.size();
        sockets_changed = false;
      }
      milliseconds timeout = NextTimeout(now);
      // The handler processes' descriptors, listed anew each round (their set changes).
      items.resize(base_items);
      if (processes) {
        processes->AppendPollItems(items);
        timeout = std::min(timeout, processes->NextTimer());
      }
      zmq::poll(items.data(), items.size(), timeout);
      if (processes) processes->OnPoll(items.data() + base_items);

      if (items[0].revents & ZMQ_POLLIN) {
        std::uint64_t count = 0;
        while (::read(stop_fd, &count, sizeof count) > 0) {
        }
        BeginDrain("stop requested");
      }
      if (items[1].revents & ZMQ_POLLIN) ReadSignals();
      if (items[2].revents & ZMQ_POLLIN) DrainResults();
      // Brokers are read from a start that moves every round: when several race for the
      // last free slot of a service (credit sharing), none wins by its place in the list.
      const std::size_t brokers_ready = monitor_items - 3;
      for (std::size_t n = 0; n < brokers_ready; ++n) {
        const std::size_t i = 3 + (first_read + n) % brokers_ready;
        if ((items[i].revents & ZMQ_POLLIN) == 0) continue;
        const std::size_t index = item_connection[i - 3];
        ReadBroker(index);
      }
      ++first_read;
      for (std::size_t i = monitor_items; i < base_items; ++i) {
        if (items[i].revents & ZMQ_POLLIN) ReadMonitor(monitor_connection[i - monitor_items]);
      }
      Tick(Clock::now());
      CheckQuarantine(Clock::now());
      for (const auto& line : key_reject_warnings.Due(Clock::now())) WarnKeyRejects(line);
      TickCredits(Clock::now());
      PlanPrefetch(Clock::now());
      if (credit_changed) SyncCredits(Clock::now());
    }
  }

  milliseconds NextTimeout(Clock::time_point now) const {
    Clock::time_point next = now + milliseconds(1000);
    const auto liveness = options.heartbeat_interval * options.heartbeat_liveness;
    for (const Connection& connection : connections) {
      if (connection.socket) {
        next = std::min(next, connection.last_sent + options.heartbeat_interval);
        next = std::min(next, connection.last_received + liveness);
      } else {
        next = std::min(next, connection.reconnect_at);
      }
    }
    if (!in_flight.empty()) next = std::min(next, now + milliseconds(100));  // deadline watchdog
    if (std::any_of(quarantined.begin(), quarantined.end(), [](bool q) { return q; })) {
      next = std::min(next, std::max(now, next_key_check));
    }
    if (draining) next = std::min(next, drain_deadline);
    next = NextCreditTimer(next);
    const auto wait = std::chrono::duration_cast<milliseconds>(next - now) + milliseconds(1);
    return std::clamp(wait, milliseconds(0), milliseconds(1000));
  }

  // Timers: heartbeats, dead brokers, reconnects, late handlers.
  void Tick(Clock::time_point now) {
    const auto liveness = options.heartbeat_interval * options.heartbeat_liveness;
    for (Connection& connection : connections) {
      if (connection.socket) {
        if (now - connection.last_received >= liveness) {
          Reset(connection, now,
                "silent for " + std::to_string(std::chrono::duration_cast<milliseconds>(now - connection.last_received).count()) + " ms");
        } else if (now - connection.last_sent >= options.heartbeat_interval) {
          Send(connection, WorkerCommand::kHeartbeat, {}, now);
        }
      } else if (now >= connection.reconnect_at && !draining) {
        Connect(connection, now);
      }
    }
    if (!in_flight.empty() && now >= next_watchdog) {
      next_watchdog = now + milliseconds(100);
      const std::uint64_t now_ms = NowUnixMs();
      for (auto& [seq, job] : in_flight) {
        if (job.reported_late || now_ms <= job.deadline_ms) continue;
        job.reported_late = true;
        Connection& holder = connections[job.connection];
        if (holder.generation == job.generation) {
          ++holder.stuck;  // told to the broker with the next CREDIT
          credit_changed = true;
        }
        const detail::ServiceRuntime& service = *services[connections[job.connection].service];
        const auto running = std::chrono::duration_cast<milliseconds>(now - job.received).count();
        spdlog::warn("job {} of service {} is still in progress {} ms past its deadline ({} ms since it "
                     "arrived): its handler may hang",
                     job.job_id.Hex(), service.name, now_ms - job.deadline_ms, running);
        detail::ErrorRecord record;
        record.job_id = job.job_id;
        record.service = service.name;
        record.broker = connections[job.connection].endpoint;
        record.sender = job.sender;
        record.stage = Stage::kHandle;
        record.code = ErrorCode::kDeadlineExceeded;
        record.message = "still running " + std::to_string(now_ms - job.deadline_ms) + " ms past the deadline";
        record.at_ms = now_ms;
        reporter->Report(record);
      }
    }
  }

  void Connect(Connection& connection, Clock::time_point now) {
    const detail::ServiceRuntime& service = *services[connection.service];
    auto socket = std::make_unique<zmq::socket_t>(network_context, zmq::socket_type::dealer);
    const int hwm = static_cast<int>(std::min<std::uint64_t>(2ull * detail::kMaxCapacity + 64,
                                                             2ull * service.capacity.load() + 64));
    socket->set(zmq::sockopt::linger, 0);
    // Never a high-water mark on what we send: a REPLY or REJECT dropped here would leave
    // the broker believing we hold the job until it expires us. What we send is bounded
    // anyway: one answer per job taken, and CREDIT/HEARTBEAT only while the broker is live.
    socket->set(zmq::sockopt::sndhwm, 0);
    socket->set(zmq::sockopt::rcvhwm, hwm);
    socket->set(zmq::sockopt::maxmsgsize, static_cast<int64_t>(options.max_message_bytes + 4096));
    socket->set(zmq::sockopt::reconnect_ivl, 100);
    detail::ApplyCurve(*socket, options.curve);
    if (options.curve.enabled()) {
      const std::string monitor_endpoint = "inproc://courier-worker-monitor-" +
                                           std::to_string(reinterpret_cast<std::uintptr_t>(this)) + "-" +
                                           std::to_string(&connection - connections.data()) + "-" +
                                           std::to_string(connection.connects);
      if (zmq_socket_monitor(socket->handle(), monitor_endpoint.c_str(),
                             ZMQ_EVENT_HANDSHAKE_FAILED_AUTH | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                                 ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) == 0) {
        connection.monitor = std::make_unique<zmq::socket_t>(network_context, zmq::socket_type::pair);
        connection.monitor->set(zmq::sockopt::linger, 0);
        connection.monitor->connect(monitor_endpoint);
      }
    }
    socket->connect(connection.endpoint);
    connection.socket = std::move(socket);
    connection.last_received = now;
    connection.heard = false;
    ++connection.connects;
    sockets_changed = true;

    // The service's capacity is shared with its other brokers (PlanCredits). READY needs
    // at least 1, so with no slot free it is followed by CREDIT 0; a job the broker sends
    // before it reads that is rejected (HandleRequest).
    PlanCredits(connection.service, now);
    credit_changed = true;  // the others' shares too, at the end of the round
    const std::uint32_t credit = connection.desired;
    detail::ReadyInfo info;
    info.capacity = std::max<std::uint32_t>(1, credit);
    info.weight = service.settings.weight;
    info.host = HostName().substr(0, 255);
    info.pid = static_cast<std::uint64_t>(::getpid());
    info.instance = options.instance;
    const std::shared_ptr<const Keyring> keyring = keys->Current();
    for (const std::uint32_t id : keyring->ids()) {
      if (info.keys.size() == detail::kMaxReadyKeys) break;
      info.keys.push_back(detail::KeyFingerprint{id, keyring->Fingerprint(id)});
    }
    Send(connection, WorkerCommand::kReady, {service.name, detail::EncodeReadyInfo(info)}, now);
    connection.credit = info.capacity;
    if (credit != info.capacity) SyncCredit(connection, now);
    spdlog::info("sent READY for service {} to broker {} (capacity {} of {})", service.name, connection.endpoint,
                 credit, service.capacity.load());
  }

  // --- credit: one capacity, several brokers (PROTOCOL.md §7.2) ---------------------------
  //
  // A service's capacity N bounds the jobs of that service this host holds in total, over
  // all its brokers (held[service]: taken and not yet ended, including jobs still running
  // for a connection that has been reset). Brokers share nothing, and the host cannot see
  // their queues, so it shares its free slots (N - held) by what each broker shows:
  // - A broker is "hungry" when it has shown it has more work: it used all the credit it
  //   had, or sent a job the host had to reject. Free slots go to the hungry brokers in
  //   turn, one at a time (their credit is what they hold plus their grant; the others'
  //   is what they hold), so each broker with a queue gets a fair share and none waits
  //   behind another's queue. A grant unused for kGrantTimeout means the broker ran out
  //   of work: it stops being hungry.
  // - With no broker hungry, and at least every kOpenInterval while some are (so a broker
  //   whose queue has just filled is found), the free slots are offered to every live
  //   broker at once: no slot waits while any broker has work.
  // - Slots beyond the grants are offered to every live broker as well.
  // Credits are re-sent as CREDIT whenever they change, before the answer that frees a
  // slot (so the broker that held it does not take it back out of turn). Brokers that
  // race for the same slot can still send more than N jobs in total; the host rejects the
  // extra ones (HandleRequest), so never more than N are held, nor run, at once. A dead
  // broker's share goes to the others by itself: it has no connection to offer to.
  static constexpr milliseconds kGrantTimeout{50};
  static constexpr milliseconds kOpenInterval{100};

  struct CreditPlan {
    std::vector<std::size_t> members;  // the service's connections (indexes)
    std::size_t turn = 0;              // the member whose turn comes next
    bool open = true;                  // free slots offered to every live broker
    Clock::time_point next_open{};     // while some are hungry: when to offer to all again
  };

  // Whether the broker of `connection` takes part in the sharing: connected and heard
  // within two heartbeat intervals. A silent one keeps the credit it has (telling it more
  // would only fill its queue) and gets no share until it speaks again (HandleBroker).
  bool Live(const Connection& connection, Clock::time_point now) const {
    return connection.socket && now - connection.last_received <= 2 * options.heartbeat_interval;
  }

  // Decides the credit of every connection of `service` (Connection::desired).
  void PlanCredits(std::size_t service, Clock::time_point now) {
    CreditPlan& plan = plans[service];
    const std::uint32_t capacity = services[service]->capacity.load();
    std::uint32_t free = held[service] >= capacity ? 0 : capacity - held[service];
    bool any_hungry = false;
    for (const std::size_t index : plan.members) {
      Connection& connection = connections[index];
      if (!connection.socket || draining || quarantined[service]) {
        connection.desired = 0;
      } else if (!Live(connection, now)) {
        connection.desired = connection.credit;
      } else {
        connection.desired = static_cast<std::uint32_t>(connection.in_flight);
        any_hungry = any_hungry || connection.hungry;
      }
    }
    if (draining || quarantined[service]) return;
    plan.open = !any_hungry || now >= plan.next_open;
    const std::size_t count = plan.members.size();
    for (std::size_t step = 0; step < count; ++step) {
      Connection& connection = connections[plan.members[(plan.turn + step) % count]];
      if (plan.open || !connection.hungry || free == 0 || !Live(connection, now)) {
        connection.granted_at = {};
        continue;
      }
      ++connection.desired;
      --free;
      if (connection.granted_at == Clock::time_point{}) connection.granted_at = now;
    }
    for (const std::size_t index : plan.members) {
      Connection& connection = connections[index];
      if (!Live(connection, now)) continue;
      connection.desired = static_cast<std::uint32_t>(std::min<std::uint64_t>(capacity, std::uint64_t{connection.desired} + free));
    }
  }

  // Tells the broker its connection's planned credit if it changed. Returns: false if the
  // CREDIT could not be queued (tried again on the next round).
  bool SyncCredit(Connection& connection, Clock::time_point now) {
    const bool stuck_changed = connection.stuck != connection.stuck_sent;
    if (!connection.socket || (connection.desired == connection.credit && !stuck_changed) || !Live(connection, now)) {
      return true;
    }
    // Frame 4, the stuck slots, only once there is something to say (PROTOCOL.md §7.2).
    const bool with_stuck = connection.stuck != 0 || connection.stuck_sent != 0;
    const bool sent = with_stuck ? Send(connection, WorkerCommand::kCredit,
                                        {detail::EncodeCredit(connection.desired), detail::EncodeCredit(connection.stuck)}, now)
                                 : Send(connection, WorkerCommand::kCredit, {detail::EncodeCredit(connection.desired)}, now);
    if (!sent) return false;
    if (stuck_changed && connection.stuck > connection.stuck_sent) {
      spdlog::warn("broker {} ({}): {} of this host's slots are stuck in handlers past their deadline",
                   connection.endpoint, services[connection.service]->name, connection.stuck);
    }
    connection.credit = connection.desired;
    connection.stuck_sent = connection.stuck;
    return true;
  }

  void SyncServiceCredits(std::size_t service, Clock::time_point now) {
    PlanCredits(service, now);
    const std::vector<std::size_t>& members = plans[service].members;
    // From a moving start: no broker hears of a free slot first every time.
    ++first_credit;
    for (std::size_t step = 0; step < members.size(); ++step) {
      if (!SyncCredit(connections[members[(first_credit + step) % members.size()]], now)) credit_changed = true;
    }
  }

  void SyncCredits(Clock::time_point now) {
    credit_changed = false;
    for (std::size_t service = 0; service < services.size(); ++service) SyncServiceCredits(service, now);
  }

  // Timers of the sharing: unused grants, and the next offer to every broker.
  void TickCredits(Clock::time_point now) {
    for (Connection& connection : connections) {
      if (connection.granted_at != Clock::time_point{} && now - connection.granted_at >= kGrantTimeout) {
        connection.granted_at = {};
        connection.hungry = false;  // its broker had nothing to send: the slot goes to others
        credit_changed = true;
      }
    }
    for (const CreditPlan& plan : plans) {
      if (!plan.open && now >= plan.next_open) credit_changed = true;
    }
  }

  Clock::time_point NextCreditTimer(Clock::time_point next) const {
    for (const Connection& connection : connections) {
      if (connection.granted_at != Clock::time_point{}) next = std::min(next, connection.granted_at + kGrantTimeout);
    }
    for (const CreditPlan& plan : plans) {
      if (!plan.open) next = std::min(next, plan.next_open);
    }
    return next;
  }

  // Drops the connection (the broker requeues what it gave us) and schedules a new one.
  void Reset(Connection& connection, Clock::time_point now, const std::string& why) {
    if (connection.socket) {
      connection.socket->set(zmq::sockopt::linger, 0);
      if (connection.monitor) zmq_socket_monitor(connection.socket->handle(), nullptr, 0);
      connection.socket.reset();
      sockets_changed = true;
    }
    connection.monitor.reset();
    ++connection.generation;
    connection.in_flight = 0;  // the jobs still running keep their slots (held) until they end
    connection.credit = 0;
    connection.desired = 0;
    connection.stuck = 0;
    connection.stuck_sent = 0;
    connection.hungry = false;
    connection.granted_at = {};
    credit_changed = true;
    std::uniform_real_distribution<double> jitter(0.5, 1.5);
    const auto delay = milliseconds(static_cast<std::int64_t>(static_cast<double>(connection.backoff.count()) * jitter(random)));
    connection.reconnect_at = now + delay;
    spdlog::warn("broker {} ({}): {}; reconnecting in {} ms", connection.endpoint,
                 services[connection.service]->name, why, delay.count());
    connection.backoff = std::min(connection.backoff * 2, options.reconnect_max);
  }

  // SendFrames with `bodies` copied (control messages: READY, CREDIT, ERROR, REJECT, ...).
  bool Send(Connection& connection, WorkerCommand command, std::initializer_list<std::string_view> bodies,
            Clock::time_point now) {
    std::array<zmq::message_t, 2> frames;  // no command carries more than two bodies
    if (bodies.size() > frames.size()) throw std::logic_error("worker command with more than two bodies");
    std::size_t count = 0;
    for (std::string_view body : bodies) frames[count++] = zmq::message_t(body.data(), body.size());
    return SendFrames(connection, command, std::span(frames.data(), count), now);
  }

  // Send, with `bodies` sent as they are (moved from, not copied).
  bool SendFrames(Connection& connection, WorkerCommand command, std::span<zmq::message_t> bodies,
                  Clock::time_point now) {
    if (!connection.socket) return false;
    try {
      const auto byte = static_cast<std::uint8_t>(command);
      zmq::socket_t& socket = *connection.socket;
      if (!socket.send(zmq::message_t(), zmq::send_flags::sndmore | zmq::send_flags::dontwait)) {
        return Dropped(connection, command);
      }
      socket.send(zmq::buffer(detail::kCourierWorker), zmq::send_flags::sndmore);
      socket.send(zmq::buffer(&byte, 1), bodies.empty() ? zmq::send_flags::none : zmq::send_flags::sndmore);
      for (std::size_t i = 0; i < bodies.size(); ++i) {
        socket.send(bodies[i], i + 1 == bodies.size() ? zmq::send_flags::none : zmq::send_flags::sndmore);
      }
      connection.last_sent = now;
      return true;
    } catch (const zmq::error_t& e) {
      spdlog::error("broker {}: cannot send {}: {}", connection.endpoint, CommandName(command), e.what());
      return false;
    }
  }

  bool Dropped(const Connection& connection, WorkerCommand command) {
    if (send_limiter.Allow()) {
      spdlog::error("broker {}: outgoing queue full, {} dropped ({} more since the last report)",
                    connection.endpoint, CommandName(command), send_limiter.TakeSuppressed());
    }
    return false;
  }

  // A handshake the broker refused (CURVE keys not admitted, or a protocol mismatch):
  // close the socket and reconnect after the backoff, which doubles while it goes on.
  void ReadMonitor(std::size_t index) {
    Connection& connection = connections[index];
    if (!connection.monitor) return;
    bool refused = false;
    std::uint32_t event = 0;
    while (true) {
      zmq::message_t frame;
      if (!connection.monitor->recv(frame, zmq::recv_flags::dontwait)) break;
      if (frame.size() >= 6) {
        std::uint16_t id = 0;
        std::memcpy(&id, frame.data(), sizeof id);
        event = id;
        refused = true;
      }
      while (frame.more()) {
        zmq::message_t rest;
        if (!connection.monitor->recv(rest, zmq::recv_flags::dontwait)) break;
        frame = std::move(rest);
      }
    }
    if (!refused || !connection.socket) return;
    const char* what = event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH ? "refused our CURVE key" : "failed the handshake";
    Reset(connection, Clock::now(), std::string("the broker ") + what);
  }

  void ReadBroker(std::size_t index) {
    for (int budget = 0; budget < 256; ++budget) {
      Connection& connection = connections[index];
      if (!connection.socket) return;
      std::vector<zmq::message_t>& frames = inbound_frames;  // reused: no allocation per message
      frames.clear();
      try {
        zmq::message_t frame;
        if (!connection.socket->recv(frame, zmq::recv_flags::dontwait)) return;
        frames.push_back(std::move(frame));
        while (frames.back().more()) {
          zmq::message_t next;
          (void)connection.socket->recv(next, zmq::recv_flags::none);
          frames.push_back(std::move(next));
        }
      } catch (const zmq::error_t& e) {
        spdlog::error("broker {}: receive failed: {}", connection.endpoint, e.what());
        return;
      }
      HandleBroker(index, frames);
    }
  }

  void Malformed(const Connection& connection, const std::string& why) {
    ++malformed;
    if (malformed_limiter.Allow()) {
      spdlog::warn("broker {}: ignoring a malformed message: {} ({} more suppressed)", connection.endpoint, why,
                   malformed_limiter.TakeSuppressed());
    }
  }

  void HandleBroker(std::size_t index, std::vector<zmq::message_t>& frames) {
    Connection& connection = connections[index];
    const Clock::time_point now = Clock::now();
    if (frames.size() < 3 || frames[0].size() != 0 || frames[1].to_string_view() != detail::kCourierWorker ||
        frames[2].size() != 1) {
      Malformed(connection, "expected [empty][CRW01][command]...");
      return;
    }
    if (!Live(connection, now)) credit_changed = true;  // it was left out of the sharing while silent
    connection.last_received = now;
    const auto command = static_cast<WorkerCommand>(*static_cast<const std::uint8_t*>(frames[2].data()));
    if (!connection.heard && command != WorkerCommand::kDisconnect) {
      // Accepted: the broker answered with something other than DISCONNECT.
      connection.heard = true;
      connection.backoff = options.reconnect_initial;
    }
    switch (command) {
      case WorkerCommand::kRequest:
        if (frames.size() < 5) {
          Malformed(connection, "REQUEST without envelope and payload");
          return;
        }
        // Frame 5, when present: the submitter's transport key name (PROTOCOL.md §7.1).
        HandleRequest(index, frames[3].to_string_view(), frames[4],
                      frames.size() > 5 ? frames[5].to_string_view() : std::string_view(), now);
        return;
      case WorkerCommand::kHeartbeat:
        return;
      case WorkerCommand::kDisconnect:
        // Back off (doubling) before READY again: a broker that keeps refusing us must not
        // get a handshake storm. A broker that merely forgot us gets the first, short delay.
        Reset(connection, now, "broker sent DISCONNECT");
        return;
      default:
        Malformed(connection, "unexpected command " + std::to_string(static_cast<int>(command)));
        return;
    }
  }

  void SendError(Connection& connection, const JobId& job_id, ErrorCode code, const std::string& message,
                 Clock::time_point now) {
    Send(connection, WorkerCommand::kError, {detail::EncodeErrorBody(job_id, code, message)}, now);
  }

  void HandleRequest(std::size_t index, std::string_view envelope_bytes, zmq::message_t& payload,
                     std::string_view sender, Clock::time_point now) {
    Connection& connection = connections[index];
    detail::ServiceRuntime& service = *services[connection.service];
    detail::EnvelopeView envelope;
    try {
      envelope = detail::DecodeEnvelope(envelope_bytes);
    } catch (const Error& e) {
      detail::ErrorRecord record;
      record.service = service.name;
      record.broker = connection.endpoint;
      record.code = ErrorCode::kBadRequest;
      record.message = e.what();
      record.at_ms = NowUnixMs();
      reporter->Report(record);
      stats.RecordError(service.stats_index, Stage::kOpen);
      SendError(connection, JobId{}, ErrorCode::kBadRequest, e.what(), now);
      return;
    }
    if (draining) {
      Send(connection, WorkerCommand::kReject, {detail::EncodeReject(envelope.job_id, ErrorCode::kShuttingDown)}, now);
      spdlog::debug("rejected job {} of {}: draining", envelope.job_id.Hex(), service.name);
      return;
    }
    if (envelope.service != service.name) {
      SendError(connection, envelope.job_id, ErrorCode::kNoSuchService,
                "this connection serves \"" + service.name + "\", not \"" + std::string(envelope.service) + "\"",
                now);
      return;
    }
    if (envelope.mode == ReplyMode::kReply) {
      SendError(connection, envelope.job_id, ErrorCode::kBadRequest, "a REQUEST cannot carry a reply envelope", now);
      return;
    }
    if (held[connection.service] >= service.capacity.load()) {
      // Every slot of the service is taken, by jobs from other brokers: this broker sent
      // before it read our lower credit. It has work, so it gets a turn when a slot frees.
      // Its credit is lowered first, so the job it puts back at the front of its queue
      // (no attempt counted) is not sent straight back to us.
      connection.hungry = true;
      SyncServiceCredits(connection.service, now);
      Send(connection, WorkerCommand::kReject, {detail::EncodeReject(envelope.job_id, ErrorCode::kBusy)}, now);
      ++capacity_rejects;
      spdlog::debug("rejected job {} of {} from {}: all {} slots taken", envelope.job_id.Hex(), service.name,
                    connection.endpoint, service.capacity.load());
      return;
    }
    if (spdlog::should_log(spdlog::level::debug)) {  // Hex() allocates: only when it is logged
      spdlog::debug("received job {} for {} from {} (attempt {})", envelope.job_id.Hex(), service.name,
                    connection.endpoint, envelope.attempt);
    }
    const std::uint64_t seq = ++next_seq;
    InFlight job;
    job.connection = index;
    job.generation = connection.generation;
    job.job_id = envelope.job_id;
    job.deadline_ms = envelope.deadline_ms;
    job.received = now;
    job.sender = std::string(sender);
    job.key_id = envelope.key_id;
    in_flight.emplace(seq, std::move(job));
    ++connection.in_flight;
    ++held[connection.service];
    NoteHeld(connection.service, false, now);
    credit_changed = true;
    CreditPlan& plan = plans[connection.service];
    if (plan.open) plan.next_open = now + kOpenInterval;  // the open offer found a taker
    connection.granted_at = {};
    plan.turn = connection.member + 1;  // served now: the others come first next time
    if (connection.in_flight >= connection.credit) connection.hungry = true;  // it used all it was given

    detail::JobInput input;
    input.seq = seq;
    input.service = connection.service;
    input.broker = connection.endpoint;
    input.sender = std::string(sender);
    input.envelope_bytes = std::string(envelope_bytes);
    input.payload_frame = std::make_shared<const zmq::message_t>(std::move(payload));  // not copied
    input.envelope = envelope.ToEnvelope();
    if (service.isolation == Isolation::kProcess) {
      processes->Submit(std::move(input));
    } else {
      pool->Submit(std::move(input));
    }
  }

  // An output of a handler process, handled as the pool threads' are.
  void HandleOutput(detail::JobOutput&& output) {
    std::vector<zmq::message_t>& frames = output_frames;
    frames.clear();
    frames.emplace_back(&output.seq, sizeof output.seq);
    const auto command = static_cast<std::uint8_t>(output.command);
    frames.emplace_back(&command, 1);
    frames.emplace_back(output.body1.data(), output.body1.size());
    if (output.command == WorkerCommand::kReply) frames.emplace_back(output.body2.data(), output.body2.size());
    HandleResult(frames);
  }

  void DrainResults() {
    while (true) {
      std::vector<zmq::message_t>& frames = result_frames;  // reused: no allocation per result
      frames.clear();
      zmq::message_t first;
      if (!results->recv(first, zmq::recv_flags::dontwait)) return;
      frames.push_back(std::move(first));
      while (frames.back().more()) {
        zmq::message_t next;
        (void)results->recv(next, zmq::recv_flags::none);
        frames.push_back(std::move(next));
      }
      HandleResult(frames);
    }
  }

  void HandleResult(std::vector<zmq::message_t>& frames) {
    if (frames.size() < 3 || frames[0].size() != sizeof(std::uint64_t) || frames[1].size() != 1) return;
    std::uint64_t seq = 0;
    std::memcpy(&seq, frames[0].data(), sizeof seq);
    const auto command = static_cast<WorkerCommand>(*static_cast<const std::uint8_t*>(frames[1].data()));
    const auto found = in_flight.find(seq);
    if (found == in_flight.end()) return;
    const InFlight job = found->second;
    in_flight.erase(found);
    Connection& connection = connections[job.connection];
    const Clock::time_point now = Clock::now();
    --held[connection.service];  // the slot is free, whether or not the answer can still be sent
    NoteHeld(connection.service, true, now);
    credit_changed = true;
    if (job.reported_late && connection.generation == job.generation && connection.stuck > 0) --connection.stuck;
    CountKeyRejects(connection.service, job.job_id, job.key_id, command, frames[2]);
    if (job.reported_late) {
      spdlog::warn("job {} of service {} finished {} ms after its deadline; answered deadline_exceeded",
                   job.job_id.Hex(), services[connection.service]->name, NowUnixMs() - job.deadline_ms);
    }
    if (connection.generation != job.generation || !connection.socket) {
      spdlog::info("dropping the answer to job {}: the connection to broker {} was reset since it arrived "
                   "(the broker requeues such jobs)",
                   job.job_id.Hex(), connection.endpoint);
      return;
    }
    if (connection.in_flight > 0) --connection.in_flight;
    // Credits first: if the freed slot is another broker's turn, this broker's lower
    // credit must reach it before the answer that frees the slot.
    SyncServiceCredits(connection.service, now);
    const Clock::time_point start = Clock::now();
    bool sent = false;
    // The pool's frames go on as they are (moved, not copied: a payload is not copied again).
    const std::size_t bodies = command == WorkerCommand::kReply && frames.size() >= 4 ? 2 : 1;
    sent = SendFrames(connection, command, std::span<zmq::message_t>(frames.data() + 2, bodies), now);
    const std::size_t stats_index = services[connection.service]->stats_index;
    if (sent) {
      stats.Record(stats_index, Stage::kSend, Clock::now() - start);
    } else {
      stats.RecordError(stats_index, Stage::kSend);
    }
  }

  // A REJECT for the host's own keys, several in a row, means its keyring is wrong: it stops
  // taking the service's jobs (credit 0) until its key file changes (CheckQuarantine).
  void CountKeyRejects(std::size_t service, const JobId& job_id, std::uint32_t key_id, WorkerCommand command,
                       const zmq::message_t& body) {
    ErrorCode code = ErrorCode::kInternal;
    if (command == WorkerCommand::kReject) {
      try {
        code = detail::DecodeReject(body.to_string_view()).code;
      } catch (const Error&) {
        return;
      }
      if (code != ErrorCode::kUnknownKey && code != ErrorCode::kUnauthenticated) return;  // busy, shutting_down
    } else {
      key_rejects[service].clear();  // a payload opened (or failed after opening)
      return;
    }
    if (auto line = key_reject_warnings.Count(services[service]->name, key_id, code, Clock::now())) {
      WarnKeyRejects(*line);
    }
    std::vector<JobId>& failed = key_rejects[service];
    if (std::find(failed.begin(), failed.end(), job_id) == failed.end()) failed.push_back(job_id);
    if (failed.size() < kKeyRejectsBeforeQuarantine || quarantined[service]) return;
    quarantined[service] = true;
    credit_changed = true;
    const std::string why = std::to_string(failed.size()) + " jobs in a row did not open with this host's keys (" +
                            std::string(ToString(code)) + "; key file " + keys->path().string() + ": " +
                            DescribeKeys(*keys->Current()) + ")";
    spdlog::error("service {}: taking no more jobs: {}. Its keyring differs from its clients'; fix the key file "
                  "(the host resumes when it changes)", services[service]->name, why);
    detail::ErrorRecord record;
    record.service = services[service]->name;
    record.stage = Stage::kOpen;
    record.code = code;
    record.message = "worker " + options.instance + " stopped taking jobs: " + why;
    record.at_ms = NowUnixMs();
    reporter->Report(record);
  }

  // "service echo: 37 jobs sealed with key id 1234 could not be opened (unknown_key): this
  // worker's keyring /etc/courier/keyring.toml has ids [5678]; check that every process
  // shares the keyring".
  void WarnKeyRejects(const detail::KeyRejectWarnings::Line& line) {
    const std::shared_ptr<const Keyring> keyring = keys->Current();
    std::string held;
    for (const std::uint32_t id : keyring->ids()) held += (held.empty() ? "" : ", ") + std::to_string(id);
    const std::string jobs = line.jobs == 1 ? "1 job" : std::to_string(line.jobs) + " jobs";
    const std::string sealed =
        line.key_id == 0 ? "sealed with key ids past the " + std::to_string(detail::KeyRejectWarnings::kMaxTracked) +
                               " tracked ones"
                         : "sealed with key id " + std::to_string(line.key_id);
    const std::string why = line.code == ErrorCode::kUnknownKey
                                ? "could not be opened (unknown_key)"
                                : "failed authentication (unauthenticated: this worker holds a different key "
                                  "under that id, or the jobs were altered)";
    spdlog::warn("service {}: {} {} {}: this worker's keyring {} has ids [{}]; check that every process shares the "
                 "keyring (warned at most every {} s per key id, with the count since the last warning)",
                 line.service, jobs, sealed, why, keys->path().string(), held,
                 std::chrono::duration_cast<std::chrono::seconds>(kKeyRejectWarningInterval).count());
  }

  void CheckQuarantine(Clock::time_point now) {
    if (now < next_key_check || std::none_of(quarantined.begin(), quarantined.end(), [](bool q) { return q; })) return;
    next_key_check = now + milliseconds(1000);
    const Clock::time_point reload_start = Clock::now();
    if (!keys->ReloadIfChanged()) return;
    const Clock::duration reload = Clock::now() - reload_start;
    for (std::size_t service = 0; service < services.size(); ++service) {
      if (!quarantined[service]) continue;
      stats.Record(services[service]->stats_index, Stage::kKey, reload);
      quarantined[service] = false;
      key_rejects[service].clear();
      spdlog::info("service {}: key file {} changed ({}); taking jobs again", services[service]->name,
                   keys->path().string(), DescribeKeys(*keys->Current()));
    }
    credit_changed = true;
  }

  void ReadSignals() {
    signalfd_siginfo info{};
    while (::read(signal_fd, &info, sizeof info) == static_cast<ssize_t>(sizeof info)) {
      if (info.ssi_signo == SIGHUP) {
        Reload();
      } else {
        BeginDrain(info.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
      }
    }
  }

  void BeginDrain(const std::string& why) {
    const Clock::time_point now = Clock::now();
    if (draining) {
      spdlog::info("{}: already draining, {} jobs in flight", why, in_flight.size());
      return;
    }
    draining = true;
    drain_deadline = now + options.grace_period;
    spdlog::info("{}: draining: taking no new jobs, waiting up to {} ms for {} in flight", why,
                 options.grace_period.count(), in_flight.size());
    // Credit 0: the broker should stop sending; whatever still arrives is rejected.
    SyncCredits(now);
  }

  void Reload() {
    if (options.config_file.empty()) {
      spdlog::info("SIGHUP: no config file to reload (started without --config)");
      return;
    }
    try {
      const ConfigSection root = ConfigSection::LoadFile(options.config_file);
      WorkerOptions fresh = WorkerOptions::FromConfig(root, options.config_file);
      if (options.overrides) options.overrides(fresh);
      if (fresh.brokers != options.brokers || (fresh.threads != 0 && fresh.threads != options.threads) ||
          fresh.heartbeat_interval != options.heartbeat_interval) {
        spdlog::warn("SIGHUP: brokers, threads and heartbeat changes need a restart; keeping the running values");
      }
      const Clock::time_point now = Clock::now();
      for (std::size_t i = 0; i < services.size(); ++i) {
        detail::ServiceRuntime& service = *services[i];
        const ServiceSettings settings = ServiceSettings::Read(fresh.services.Section(service.name));
        if (settings.capacity == service.settings.capacity) continue;  // an automatic one keeps its plan
        spdlog::info("SIGHUP: service {} capacity {} -> {}", service.name, CapacityText(service.settings),
                     CapacityText(settings));
        service.capacity = EffectiveCapacity(settings);
        service.settings.capacity = settings.capacity;
        prefetch[i] = MakePrefetch(settings);
      }
      SyncCredits(now);  // each broker's share of the new capacities
      // Logged before the new level applies, so the line shows even when it is quieter.
      spdlog::info("SIGHUP: reloaded {} (log level {})", options.config_file.string(), fresh.log.level);
      if (const auto level = LevelFromName(fresh.log.level)) {
        spdlog::set_level(*level);
        options.log.level = fresh.log.level;
      }
    } catch (const std::exception& e) {
      spdlog::error("SIGHUP: cannot reload {}, keeping the running configuration: {}", options.config_file.string(),
                    e.what());
    }
  }

  int Shutdown() {
    const Clock::time_point now = Clock::now();
    // The grace period is over: what still runs goes back to its broker, which gives it to
    // another worker, and its handler is cancelled below.
    for (const auto& [seq, job] : in_flight) {
      Connection& connection = connections[job.connection];
      spdlog::warn("grace period over: handing job {} of service {} back to broker {}", job.job_id.Hex(),
                   services[connection.service]->name, connection.endpoint);
      if (connection.generation == job.generation && connection.socket) {
        Send(connection, WorkerCommand::kReject, {detail::EncodeReject(job.job_id, ErrorCode::kShuttingDown)}, now);
      }
    }
    if (processes) processes->Stop();  // kills the handler processes, whatever they run
    for (Connection& connection : connections) {
      if (connection.socket && connection.monitor) zmq_socket_monitor(connection.socket->handle(), nullptr, 0);
      connection.monitor.reset();  // the context below waits for every socket in it
      if (!connection.socket) continue;
      Send(connection, WorkerCommand::kDisconnect, {}, now);
      connection.socket->set(zmq::sockopt::linger, 1000);  // let the last replies and DISCONNECT out
      connection.socket.reset();
    }
    // Waits (up to the linger) until the last replies and DISCONNECTs are on the wire. The
    // broker sockets have a context of their own for this: the inproc one may have to be
    // abandoned below, with sockets of stuck pool threads still open in it.
    network_context.close();
    std::size_t threads_running = 0;
    for (const auto& [seq, job] : in_flight) {
      threads_running += services[connections[job.connection].service]->isolation == Isolation::kThread ? 1 : 0;
    }
    processes.reset();
    if (threads_running == 0) {
      pool->Stop();
      pool.reset();
      results.reset();
      context.reset();
    } else {
      spdlog::warn("{} handler threads are still running; the process must exit without joining them",
                   threads_running);
      pool->Abandon();
      (void)pool.release();     // its threads still run handlers: leak rather than free under them
      (void)results.release();  // and the context, which cannot terminate with their sockets open
      (void)context.release();
      left_threads_running = true;
    }
    // The last timings go out now (at most a second); the error reporter delivers what it
    // holds when the host is destroyed, after every thread that could report has stopped.
    metrics.reset();
    for (const std::string& line : stats.Describe()) spdlog::info("stage timings: {}", line);
    spdlog::info("worker stopped ({} malformed messages ignored, {} jobs rejected with every slot taken, {} handed "
                 "back at the end of the grace period)", malformed, capacity_rejects, in_flight.size());
    return 0;
  }

  // Returns: service name → stats index, for records that name their service.
  std::map<std::string, std::size_t, std::less<>> ServiceIndex() const {
    std::map<std::string, std::size_t, std::less<>> index;
    for (const auto& service : services) index.emplace(service->name, service->stats_index);
    return index;
  }

  WorkerOptions options;
  std::vector<std::unique_ptr<detail::ServiceRuntime>> services;
  detail::StageStats stats;
  std::vector<StageSnapshotFn> stage_sources;  // AddStageSource: more totals for the metrics reports
  // Where failed jobs are recorded: courier.errors (or the log when report_errors is off).
  std::unique_ptr<detail::ErrorReporter> reporter{std::make_unique<detail::LoggingErrorReporter>()};
  std::unique_ptr<MetricsReporter> metrics;  // stage timings to courier.metrics, once a second
  std::unique_ptr<detail::KeySource> keys;  // the payload keyring, re-read when its file changes
  std::unique_ptr<detail::JobRunner> runner;
  std::unique_ptr<detail::ProcessPool> processes;  // handlers of process-isolated services
  std::vector<std::vector<JobId>> key_rejects;      // per service: distinct jobs REJECTed for keys, in a row
  std::vector<bool> quarantined;                    // per service: taking no jobs until the keys change
  detail::KeyRejectWarnings key_reject_warnings{kKeyRejectWarningInterval};
  Clock::time_point next_key_check{};
  bool left_threads_running = false;  // Shutdown abandoned handler threads that never returned

  int stop_fd = -1;
  int signal_fd = -1;
  zmq::context_t network_context{1};  // the DEALERs to the brokers
  std::unique_ptr<zmq::context_t> context;  // inproc: the pool's PUSHes and the results PULL
  std::unique_ptr<zmq::socket_t> results;
  std::unique_ptr<detail::JobPool> pool;
  std::vector<Connection> connections;
  bool sockets_changed = true;
  std::unordered_map<std::uint64_t, InFlight> in_flight;
  std::size_t monitor_items = 0;                // Loop: where the monitor items start
  std::size_t base_items = 0;                   // Loop: where the handler processes' items start
  std::vector<std::size_t> monitor_connection;  // Loop: monitor item → connection index
  std::vector<zmq::message_t> inbound_frames;  // ReadBroker's, reused
  std::vector<zmq::message_t> result_frames;   // DrainResults', reused
  std::vector<zmq::message_t> output_frames;   // HandleOutput's, reused
  std::vector<std::uint32_t> held;  // per service: jobs taken and not yet ended (≤ capacity)
  std::vector<std::optional<detail::PrefetchPlanner>> prefetch;  // per service: set when capacity is automatic
  bool credit_changed = false;      // held or a capacity changed: SyncCredits at the end of the round
  std::uint64_t capacity_rejects = 0;  // jobs rejected because every slot was taken
  std::vector<CreditPlan> plans;       // per service: how its free slots are shared
  std::size_t first_read = 0;          // rotating start of the broker reads (Loop)
  std::size_t first_credit = 0;        // rotating start of SyncServiceCredits
  std::uint64_t next_seq = 0;
  bool draining = false;
  Clock::time_point drain_deadline{};
  Clock::time_point next_watchdog{};
  std::mt19937_64 random{std::random_device{}()};
  RateLimiter malformed_limiter{10, std::chrono::seconds(10)};
  RateLimiter send_limiter{10, std::chrono::seconds(10)};
  std::uint64_t malformed = 0;
};

WorkerHost::WorkerHost(WorkerOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}

WorkerHost::~WorkerHost() = default;

const ConfigSection& WorkerHost::options_services() const { return impl_->options.services; }

void WorkerHost::AddService(const CourierServiceV1& descriptor, const ConfigSection& config, std::string origin) {
  impl_->AddService(descriptor, config, std::move(origin));
}

std::vector<std::string> WorkerHost::LoadPlugin(const std::filesystem::path& path,
                                                const std::vector<std::string>& only) {
  return impl_->LoadPlugin(impl_->ResolvePlugin(path.string(), {}), only);
}

void WorkerHost::LoadConfiguredPlugins() { impl_->LoadConfiguredPlugins(); }

std::vector<std::string> WorkerHost::services() const {
  std::vector<std::string> names;
  for (const auto& service : impl_->services) names.push_back(service->name);
  return names;
}

int WorkerHost::Run() { return impl_->Run(); }

bool WorkerHost::left_threads_running() const noexcept { return impl_->left_threads_running; }

void WorkerHost::Stop() noexcept {
  const std::uint64_t one = 1;
  [[maybe_unused]] const auto written = ::write(impl_->stop_fd, &one, sizeof one);
}

std::vector<StageSummary> WorkerHost::StageSnapshot() const { return impl_->stats.Snapshot(); }

void WorkerHost::AddStageSource(StageSnapshotFn source) { impl_->stage_sources.push_back(std::move(source)); }

detail::ServiceInstance& WorkerHost::Instance(std::string_view name) {
  detail::ServiceRuntime* service = impl_->Find(name);
  if (service == nullptr || !service->instance) throw Error(ErrorCode::kInternal, "no service " + std::string(name));
  return *service->instance;
}

}  // namespace courier
