// broker_config.hpp — courier-broker's settings, read once at start-up from broker.toml
// (every key optional; the defaults are schemas/PROTOCOL.md's, "Defaults").
//
//   bind = ["tcp://127.0.0.1:5555"]     # endpoints the one ROUTER socket binds
//   heartbeat_interval = "2500ms"        # 100ms..60s
//   heartbeat_liveness = 3               # missed intervals before a worker is purged, 1..100
//   max_message_bytes = 16777216         # a bigger multipart message is dropped and counted
//   mdp_deadline = "30s"                 # deadline given to plain Majordomo requests
//   max_attempts = 3                     # for jobs the broker makes itself (MDP requests)
//   dead_letter_buffer = 10000           # dead letters held while courier.errors is away
//   socket_hwm = 100000                  # ZeroMQ receive high-water mark (per peer)
//   send_hwm = 1000                      # ZeroMQ send high-water mark (per peer): at most this
//                                        # many answers wait for a client that does not read;
//                                        # more are dropped and counted (client_sends_full)
//   max_client_bytes = 67108864         # answers a client's TCP connection has not taken yet;
//                                        # past it the connection is shut down (0: no bound)
//   drain_timeout = "5s"                 # SIGTERM: how long jobs in flight may finish
//   max_total_queued_bytes = 1073741824  # bytes of jobs the whole broker holds
//   max_deadline = "24h"                 # SUBMITs with a later deadline are refused bad_request
//   max_connections = 10000             # TCP peers at once (also capped at RLIMIT_NOFILE - 64);
//                                        # more are closed as they arrive, logged once a second
//   service_grace = "10s"                # a service with no worker and no job is forgotten
//                                        # after this long (100ms..1h)
//   unknown_service_grace = "7500ms"     # calls and sends naming a service no worker has
//                                        # registered are answered no_such_service once the
//                                        # broker is up this long (default 3 heartbeats;
//                                        # enqueued jobs wait for their service regardless)
//   new_services_per_peer = 100          # services one client (connection, or CURVE key) may
//   new_services_window = "10s"          # create per window; more are refused busy
//   data_dir = ""                        # the job store's folder; "" = $XDG_STATE_HOME/courier/
//                                        # broker-<first endpoint> (relative: to this file)
//   store_max_bytes = 8589934592         # past it the store refuses new jobs (busy)
//   http = ""                            # HOST:PORT serving GET /metrics (Prometheus) and
//                                        # /healthz (metrics_http.hpp); "" = off; port 0: any
//   [defaults]                           # apply to every service
//   queue_limit = 100000
//   max_queued_bytes = 268435456         # bytes of jobs one service holds (queued + in flight)
//   strategy = "least_loaded"            # least_loaded | round_robin | random | weighted
//   max_crashes = 2                      # worker deaths a job may cause before it is a poison
//                                        # job (dead-lettered worker_crashed), 1..100
//   durability = "fsync"                 # send/enqueue jobs: fsync | write | memory (PROTOCOL.md
//                                        # §6.5); courier.metrics defaults to memory
//   result_ttl = "1h"                    # how long an enqueued job's outcome is kept (1s..30d)
//   [services.NAME]                      # per-service overrides of [defaults]
//   [log]                                # level, format (see courier/log.hpp)
//   [security]                           # CurveZMQ (off by default)
//   curve = true
//   key_file = "broker.key"              # relative paths: against the config file's folder
//   clients = "clients.allow"            # public keys allowed to submit jobs
//   workers = "workers.allow"            # public keys allowed to register as workers
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "courier/config.hpp"
#include "courier/log.hpp"
#include "store_ops.hpp"

namespace courier::broker {

enum class Strategy { kLeastLoaded, kRoundRobin, kRandom, kWeighted };
std::string_view ToString(Strategy strategy);

struct ServicePolicy {
  std::size_t queue_limit = 100000;
  // Bytes of jobs (envelope + payload + a fixed overhead each) the service may hold, queued
  // or in flight; past it SUBMITs are answered busy. Default 256 MiB.
  std::size_t max_queued_bytes = 256u << 20;
  Strategy strategy = Strategy::kLeastLoaded;
  // Crashes (a worker lost while holding the job, or ERROR worker_crashed) after which a
  // job is dead-lettered as a poison job instead of being handed on. 1..100; default 2.
  std::uint32_t max_crashes = 2;
  // What ACCEPT promises for send and enqueue jobs (PROTOCOL.md §6.5). Default fsync.
  Durability durability = Durability::kFsync;
  // How long an enqueued job's outcome is kept for lookup. Default 1 h.
  std::chrono::milliseconds result_ttl{3600 * 1000};
};

inline constexpr std::string_view kMetricsServiceName = "courier.metrics";

// [security]: CurveZMQ on the broker socket. Off by default (loopback development).
struct SecurityConfig {
  bool curve = false;
  std::string key_file;      // the broker's key pair (courier keygen --curve), mode 0600
  std::string clients_file;  // allow-list of client public keys
  std::string workers_file;  // allow-list of worker public keys
};

struct BrokerConfig {
  static constexpr std::string_view kName = "broker";

  std::vector<std::string> bind{"tcp://127.0.0.1:5555"};
  std::chrono::milliseconds heartbeat_interval{2500};
  std::uint32_t heartbeat_liveness = 3;
  std::size_t max_message_bytes = 16 * 1024 * 1024;
  std::chrono::milliseconds mdp_deadline{30000};
  std::uint32_t max_attempts = 3;
  std::size_t dead_letter_buffer = 10000;
  int socket_hwm = 100000;
  int send_hwm = 1000;
  std::size_t max_client_bytes = std::size_t{64} << 20;
  std::chrono::milliseconds drain_timeout{5000};
  std::size_t max_total_queued_bytes = std::size_t{1} << 30;  // all services together: 1 GiB
  std::chrono::milliseconds max_deadline{24LL * 3600 * 1000};
  std::size_t max_connections = 10000;
  std::chrono::milliseconds service_grace{10000};
  std::chrono::milliseconds unknown_service_grace{0};  // 0: UnknownServiceGrace()'s default
  std::uint32_t new_services_per_peer = 100;
  std::chrono::milliseconds new_services_window{10000};
  std::filesystem::path data_dir;        // empty: DefaultDataDir(bind.front())
  std::uint64_t store_max_bytes = 8ULL << 30;
  std::string http;                      // "" = no /metrics and /healthz (metrics_http.hpp)
  ServicePolicy defaults;
  std::map<std::string, ServicePolicy, std::less<>> services;
  LogOptions log{.name = "broker"};
  SecurityConfig security;

  // Returns: the settings in `section` (the file's root table). Throws: Error(kConfig).
  static BrokerConfig Read(const ConfigSection& section, const std::filesystem::path& file = {});

  // Returns: the service's policy: its [services.NAME] table, else [defaults] (with
  // durability "memory" for courier.metrics).
  ServicePolicy PolicyFor(std::string_view service) const;
  std::chrono::milliseconds expiry() const { return heartbeat_interval * heartbeat_liveness; }
  // Returns: how long after start the broker waits for a service's first worker before it
  // answers no_such_service (services starting up with it get that long to register).
  std::chrono::milliseconds UnknownServiceGrace() const {
    return unknown_service_grace.count() > 0 ? unknown_service_grace : 3 * heartbeat_interval;
  }
};

}  // namespace courier::broker
