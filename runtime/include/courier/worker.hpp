// courier/worker.hpp — the worker host: serves plugin services to one or more brokers.
//
// `courier-worker` is this class behind a command line. Use it directly for a custom worker
// main with services linked in, registered explicitly and typed:
//
//   int main() {
//     courier::WorkerOptions options;                 // defaults: tcp://127.0.0.1:5555, ...
//     options.brokers = {"tcp://10.0.0.5:5555", "tcp://10.0.0.6:5555"};
//     courier::WorkerHost host(std::move(options));
//     host.Register<EchoService>();                   // settings from [services.echo], if any
//     host.Register<ResizeService>(courier::ConfigSection::Parse("max_side = 4096", "inline"));
//     return host.Run();                              // until SIGTERM/SIGINT, then drains
//   }
//
// What Run() does: one I/O thread (the caller's) owns every ZeroMQ socket: one DEALER per
// (broker, service), speaking the CRW01 worker protocol (schemas/PROTOCOL.md): READY and
// CREDIT sharing each service's capacity among the brokers (ServiceSettings::capacity),
// heartbeats, reconnection with exponential backoff and jitter
// when a broker goes silent or says DISCONNECT. Jobs run on a fixed thread pool through
// key → open → parse → verify → handle → convert → reply_verify → seal, and go back to the I/O thread over
// inproc to be sent. Each stage is timed per service (StageSnapshot()).
//
// Signals (when WorkerOptions::handle_signals, the default): SIGTERM and SIGINT drain —
// new jobs are rejected back to the broker (REJECT shutting_down, so another worker gets
// them), jobs in flight finish within grace_period (what is left then is handed back the
// same way and cancelled), then DISCONNECT and Run() returns 0.
// SIGHUP re-reads WorkerOptions::config_file and applies the log level and each service's
// capacity (sent to the brokers as CREDIT) without dropping a job; other changes need a
// restart and are logged as such.
//
// Thread-safety: a WorkerHost belongs to the thread that constructs it: construct,
// register, Run and destroy it there. With handle_signals the constructor blocks SIGTERM,
// SIGINT and SIGHUP in that thread (threads started later inherit the mask), so construct
// the host before starting other threads. Stop() and StageSnapshot() are safe from any
// thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "courier/config.hpp"
#include "courier/curve.hpp"
#include "courier/log.hpp"
#include "courier/plugin.hpp"
#include "courier/reporting.hpp"

namespace courier {

// Where a service's handlers run (`isolation`).
//   kThread:  on the host's thread pool (the default): the cheapest hand-off, but a handler
//             that crashes takes the host down with every job it holds, and one that hangs
//             keeps its thread.
//   kProcess: in supervised child processes (a prefork pool): a crash, abort, exit() or
//             runaway allocation costs the one job that child ran (answered worker_crashed,
//             recorded in the error sink with the signal and its last log lines); the child
//             is replaced. A job still running kill_after past its deadline has its child
//             killed and replaced. Each child holds its own copy of the service instance,
//             made once when the host starts (state a handler keeps is per child). The
//             children are forked from a process the host forks when Run() starts, so
//             call Run() before the process starts threads of its own.
enum class Isolation : std::uint8_t { kThread, kProcess };

// Returns: Isolation for "thread" or "process". Throws: Error(kConfig) for anything else.
Isolation ParseIsolation(std::string_view name);
// Returns: "thread" or "process".
std::string_view ToString(Isolation isolation) noexcept;

// The host's settings for one service, read from its [services.NAME] table. The table
// also holds the service's own keys; the host reads only these and hands the table on.
struct ServiceSettings {
  // The shared object that provides the service: a path ("./libecho.so", relative to the
  // config file), or a bare name ("echo") looked up as libNAME.so in
  // WorkerOptions::plugin_dir. Empty for services registered in code or via --plugin.
  std::string plugin;
  // Jobs of the service this host holds at once, in total over all its brokers (never
  // more, however many brokers it serves). Default 0 = the host's thread count. Range
  // 0..100000. The host shares it out as credit (PROTOCOL.md §7.2), re-sent as CREDIT as
  // jobs start and end: free slots go in turn to the brokers that have shown they have
  // more work (they used all their credit, or sent a job the host had to reject), and to
  // every live broker when none has (and at least every 100 ms, to find new work), so
  // each broker with a queue gets a fair share, no slot idles while a broker has work
  // (beyond a 50 ms grant a broker leaves unused), and a dead broker's share goes to the
  // others. Brokers racing for a slot can still send more: the jobs beyond the capacity
  // are rejected (REJECT busy: the broker requeues them at the front of its queue without
  // counting an attempt, after the lowered credit, so it does not send them back at once).
  std::uint32_t capacity = 0;
  // Relative share of jobs among the service's workers (broker strategy). Default 1.
  std::uint32_t weight = 1;
  // Accept jobs whose payload is not sealed (key id 0), and answer them unsealed.
  // Default false: such jobs get unauthenticated.
  bool allow_unsealed = false;
  // Payload schema file (schemas/SCHEMA.md), relative to the config file; a file named here
  // but missing stops the host (Error(kConfig)). Default: the first NAME.toml found in
  // WorkerOptions::schema_dirs, then beside the plugin's .so (DIR/NAME.toml, then
  // DIR/../../share/courier/schemas/services/NAME.toml for a plugin in PREFIX/lib/courier),
  // else the schema the plugin embeds, else none (logged as "schema none").
  std::string schema;
  // Duplicate suppression for non-idempotent services: how long and how many job ids
  // are remembered. Defaults 5 minutes and 10,000.
  std::chrono::milliseconds dedup_window{std::chrono::minutes(5)};
  std::size_t dedup_entries = 10000;
  // `isolation = "thread" | "process"`. Default: the host's (WorkerOptions::isolation).
  std::optional<Isolation> isolation;
  // `verify_replies = true | false`: check each reply against the schema's [reply] before
  // sealing it. Default: the host's (WorkerOptions::verify_replies).
  std::optional<bool> verify_replies;

  // Reads the host's keys (above) from a [services.NAME] table; other keys are the
  // plugin's. Throws: Error(kConfig).
  static ServiceSettings Read(const ConfigSection& section);
};

struct WorkerOptions {
  // Brokers to serve (`brokers = [...]`). Default: tcp://127.0.0.1:5555.
  std::vector<std::string> brokers = {"tcp://127.0.0.1:5555"};
  // Payload keyring (`keyring = "..."`). Default empty: Keyring::DefaultPath(), created
  // with a fresh key if missing. A path given explicitly must exist.
  std::filesystem::path keyring;
  // Handler threads (`threads`). Default 0 = std::thread::hardware_concurrency().
  unsigned threads = 0;
  // `heartbeat_interval`, default 2500 ms; a broker silent for heartbeat_liveness (default
  // 3) intervals is dead and its connection is remade.
  std::chrono::milliseconds heartbeat_interval{2500};
  std::uint32_t heartbeat_liveness = 3;
  // Reconnect backoff (`reconnect_initial`, `reconnect_max`): 250 ms doubling to 8 s,
  // each delay with ±50% jitter.
  std::chrono::milliseconds reconnect_initial{250};
  std::chrono::milliseconds reconnect_max{8000};
  // How long a drain waits for jobs in flight (`grace_period`). Default 10 s. Jobs still
  // running then are handed back to their brokers (REJECT shutting_down) and cancelled.
  std::chrono::milliseconds grace_period{10000};
  // Where handlers run, for services that do not say (`isolation`). Default kThread.
  Isolation isolation = Isolation::kThread;
  // With process isolation: the most data (heap) memory one child may map
  // (`max_memory`, bytes or "512MiB"); an allocation beyond it fails in the handler.
  // Default 0: no limit.
  std::uint64_t max_memory = 0;
  // With process isolation: jobs a child runs before it is replaced by a fresh one
  // (`max_jobs_per_child`). Default 0: never.
  std::uint64_t max_jobs_per_child = 0;
  // With process isolation: how long past its deadline a job may run before its child is
  // killed and replaced (`kill_after`). Default 5 s.
  std::chrono::milliseconds kill_after{5000};
  // Where payload schemas NAME.toml are looked up first (`schema_dirs`, relative to the
  // config file), first match wins. Default: none (courier-worker adds --schema-dir flags
  // and then PREFIX/share/courier/schemas/services, relative to its binary). Never the
  // working directory.
  std::vector<std::filesystem::path> schema_dirs;
  // Check every reply against its service's [reply] schema before sealing it
  // (`verify_replies`; a service's own key wins). A reply that does not conform never
  // reaches the client: it gets ERROR invalid_reply naming the first offending field, and
  // the error sink a record (stage reply_verify). Services whose schema has no [reply]
  // are not affected. Default true.
  bool verify_replies = true;
  // Where bare plugin names resolve (`plugin_dir`). Default empty: names must be paths.
  std::filesystem::path plugin_dir;
  // CurveZMQ on every broker socket, the reporters' included (the `[security]` table:
  // curve, server_key or server_key_file, key_file; see courier/curve.hpp). Default off.
  // The key pair is loaded when the WorkerHost is constructed (Error(kConfig) if missing,
  // malformed or readable by others); SIGHUP does not reload it.
  CurveOptions curve;
  // Free text shown by the broker for this host (`instance`). Default "HOST:PID".
  std::string instance;
  // Largest request or reply payload, in bytes (`max_message_bytes`). Default 16 MiB.
  std::size_t max_message_bytes = 16 * 1024 * 1024;
  // Send failed jobs to courier.errors (report_errors) and stage timings to
  // courier.metrics (report_metrics) through the brokers (`report = true` sets both).
  // Default true; the error sink itself turns report_errors off so a failure of its own
  // never feeds back into it (its timings, error_handle among them, still go out).
  bool report_errors = true;
  bool report_metrics = true;
  // Install SIGTERM/SIGINT/SIGHUP handling (signalfd). Default true.
  bool handle_signals = true;
  // The file SIGHUP re-reads. Default empty: SIGHUP only logs that there is nothing to read.
  std::filesystem::path config_file;
  // Applied after every read of config_file, so command-line flags win over the file.
  std::function<void(WorkerOptions&)> overrides;
  // The [log] table.
  LogOptions log{.level = "info", .format = "text", .name = "worker"};
  // The [services] table: one [services.NAME] per service (ServiceSettings + plugin keys).
  ConfigSection services = ConfigSection::Empty();

  // Returns: the options in the root table of worker.toml `file` (which becomes
  // config_file); keys not listed above are rejected. Relative paths in the file are
  // resolved against its directory. Throws: Error(kConfig).
  static WorkerOptions FromConfig(const ConfigSection& root, const std::filesystem::path& file = {});
};

// The stages the worker host times (PROTOCOL.md §10.2): those every sealed job goes
// through, in order (kKey and kOpen only for sealed jobs; kReplyVerify only when the
// service's schema has a [reply] and verify_replies is on), then those of the error path:
// kErrorCapture (a failure until its error report is built) and kErrorSend (the report
// handed to the reporter until a broker accepted it for courier.errors).
enum class Stage : std::uint8_t {
  kKey, kOpen, kParse, kVerify, kHandle, kConvert, kReplyVerify, kSeal, kSend, kErrorCapture, kErrorSend
};
inline constexpr std::size_t kStageCount = 11;
// Returns: "key", "open", "parse", ... "reply_verify", ... "error_send".
std::string_view ToString(Stage stage) noexcept;

// Cumulative timings of one stage of one service since the host started.
struct StageSummary {
  std::string service;
  Stage stage = Stage::kOpen;
  std::uint64_t count = 0;   // jobs that completed the stage
  std::uint64_t errors = 0;  // jobs that failed in it
  std::chrono::nanoseconds sum{0};
  std::chrono::nanoseconds min{0};
  std::chrono::nanoseconds max{0};
  // Log-bucket histogram of durations in ns: bucket i counts values v with
  // BucketIndex(v) == i, where BucketIndex(v) = v for v < 4, else with e = floor(log2 v),
  // 4 * (e - 1) + ((v >> (e - 2)) & 3): four buckets per power of two.
  std::vector<std::uint64_t> buckets;
};

class WorkerHost {
 public:
  // Throws: Error(kConfig) for invalid options (no broker, a bad endpoint...).
  explicit WorkerHost(WorkerOptions options);
  ~WorkerHost();
  WorkerHost(const WorkerHost&) = delete;
  WorkerHost& operator=(const WorkerHost&) = delete;

  // Registers service S with its settings and config from options.services[S::kName]
  // (an empty table if absent). Throws: Error(kConfig) from the settings or S's
  // constructor, or if a service of that name is already registered.
  template <Service S>
  S& Register() {
    return Register<S>(options_services().Section(S::kName));
  }
  // Registers service S configured by `config` (ServiceSettings keys + S's own keys).
  // Returns: the instance the host serves, owned by the host (valid until it is destroyed).
  template <Service S>
  S& Register(const ConfigSection& config) {
    static constexpr CourierServiceV1 kDescriptor = detail::DescribeService<S>();
    AddService(kDescriptor, config, "registered in code");
    return static_cast<detail::ServiceModel<S>&>(Instance(S::kName)).service();
  }

  // Loads the plugin at `path` (dlopen) and registers its services, or only those named
  // in `only`. Each is configured from options.services[NAME].
  // Returns: the names registered. Throws: Error(kConfig) if the file is not a Courier
  // plugin, was built for another plugin ABI (naming the file and both versions), or a
  // service fails to construct.
  std::vector<std::string> LoadPlugin(const std::filesystem::path& path,
                                      const std::vector<std::string>& only = {});
  // Loads the plugin of every [services.NAME] that names one (`plugin = ...`).
  void LoadConfiguredPlugins();

  // Returns: the names of the registered services, in registration order.
  std::vector<std::string> services() const;

  // Serves until Stop() or a termination signal, then drains (see above).
  // Returns: 0. Jobs still running when the grace period ends are handed back to their
  // brokers (REJECT shutting_down: another worker runs them) and cancelled: handler
  // processes are killed; handler threads cannot be, so left_threads_running() tells the
  // caller to leave the process promptly (std::_Exit) instead of destroying the host.
  // Throws: Error(kConfig) if nothing is registered, a [services.NAME] table names no
  // registered service, or the keyring cannot be loaded.
  int Run();
  // Returns: whether Run() returned with handler threads still inside a handler.
  bool left_threads_running() const noexcept;

  // Starts the drain, as SIGTERM does. Thread-safe; async-signal-safe.
  void Stop() noexcept;

  // Returns: the cumulative stage timings of every service. Thread-safe.
  std::vector<StageSummary> StageSnapshot() const;

  // Adds cumulative timings of stages the host cannot see to what it reports to
  // courier.metrics: a service registered in code that times work of its own (the error
  // sink's error_handle). `source` runs on the metrics reporter's thread, once a second;
  // it must be thread-safe. Call before Run().
  void AddStageSource(StageSnapshotFn source);

 private:
  const ConfigSection& options_services() const;
  detail::ServiceInstance& Instance(std::string_view name);
  void AddService(const CourierServiceV1& descriptor, const ConfigSection& config,
                  std::string origin);

  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace courier
