// courier-broker: binds one ROUTER socket and runs the routing core (broker.hpp) on it.
// One thread owns every socket: the ROUTER, the ZAP handler's REP (with CURVE) and the PAIR
// that receives the ROUTER's socket-monitor events (a closed connection → the core probes
// the workers that hold jobs, so a dead worker is noticed in milliseconds, not at expiry).
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <sys/signalfd.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>
#include <zmq.hpp>

#include <chrono>
#include <cstring>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>
#include <unordered_set>

#include "broker.hpp"
#include "broker_config.hpp"
#include "client_backlog.hpp"
#include "command_line.hpp"
#include "courier/curve.hpp"
#include "courier/error.hpp"
#include "job_store.hpp"
#include "metrics_http.hpp"
#include "prometheus/http_address.hpp"
#include "zap.hpp"

namespace courier::broker {
namespace {

// Sends on the ROUTER. ROUTER_MANDATORY turns "no such peer" into EHOSTUNREACH instead of a
// silent drop; a full pipe is EAGAIN (non-blocking send). Both become SendResult values.
// A client past max_client_bytes (ClientBacklog) has its connection shut down here.
class SocketOutbox final : public Outbox {
 public:
  SocketOutbox(zmq::socket_t& socket, ClientBacklog& backlog) : socket_(socket), backlog_(backlog) {}

  SendResult Send(std::span<zmq::message_t> frames) override {
    // Counted before libzmq takes (and empties) the frames.
    const int slow = backlog_.OnSent(frames);
    if (slow >= 0) dropped_.emplace_back(frames[0].to_string_view());
    const SendResult result = SendAll(frames);
    if (slow >= 0) ::shutdown(slow, SHUT_RDWR);  // libzmq then frees what waits for it, as for a peer that left
    return result;
  }

  // Returns and forgets: the clients whose connections were shut down since the last call.
  std::vector<std::string> TakeDroppedClients() { return std::exchange(dropped_, {}); }

 private:
  SendResult SendAll(std::span<zmq::message_t> frames) {
    try {
      for (std::size_t i = 0; i < frames.size(); ++i) {
        const auto flags = i + 1 < frames.size() ? zmq::send_flags::sndmore | zmq::send_flags::dontwait
                                                 : zmq::send_flags::dontwait;
        if (!socket_.send(frames[i], flags)) return SendResult::kFull;
      }
      return SendResult::kSent;
    } catch (const zmq::error_t& error) {
      if (error.num() == EHOSTUNREACH) return SendResult::kUnreachable;
      throw;
    }
  }

  zmq::socket_t& socket_;
  ClientBacklog& backlog_;
  std::vector<std::string> dropped_;
};

constexpr std::size_t kMaxMessageSlack = 64 * 1024;
constexpr const char* kMonitorEndpoint = "inproc://courier-broker.monitor";

// TCP connections accepted and still open, counted from the socket monitor: ZeroMQ has no
// connection limit for a ROUTER's TCP peers (ZMQ_MAX_SOCKETS counts sockets), and a process
// out of file descriptors makes libzmq's listener fail accept() in a loop. A connection past
// max_connections is shut down as soon as it is accepted (libzmq then closes it as a peer
// that left); accept failures are logged at most once a second.
class ConnectionGuard {
 public:
  explicit ConnectionGuard(std::size_t max) : max_(max) {}

  void OnAccepted(int fd) {
    if (open_.size() >= max_) {
      ::shutdown(fd, SHUT_RDWR);
      ++refused_;
      ++refused_since_log_;
      LogAtMostOncePerSecond();
      return;
    }
    open_.insert(fd);
  }
  void OnClosed(int fd) { open_.erase(fd); }
  void OnAcceptFailed(int error) {
    ++accept_failures_since_log_;
    last_accept_error_ = error;
    LogAtMostOncePerSecond();
  }
  // Forgets descriptors that are no longer sockets (a close whose event was lost), once a
  // second: O(open connections).
  void Sweep() {
    const auto now = std::chrono::steady_clock::now();
    if (now < next_sweep_) return;
    next_sweep_ = now + std::chrono::seconds(1);
    std::erase_if(open_, [](int fd) {
      int type = 0;
      socklen_t length = sizeof type;
      return ::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &length) != 0;
    });
    LogAtMostOncePerSecond();
  }
  std::size_t open() const { return open_.size(); }
  std::uint64_t refused() const { return refused_; }

 private:
  void LogAtMostOncePerSecond() {
    const auto now = std::chrono::steady_clock::now();
    if (now < next_log_ || (refused_since_log_ == 0 && accept_failures_since_log_ == 0)) return;
    next_log_ = now + std::chrono::seconds(1);
    if (refused_since_log_ > 0) {
      spdlog::warn("closed {} new connection(s): {} open, max_connections {}", refused_since_log_, open_.size(),
                   max_);
    }
    if (accept_failures_since_log_ > 0) {
      spdlog::error("accept() failed {} time(s): {} (file descriptor limit? {} connections open)",
                    accept_failures_since_log_, std::strerror(last_accept_error_), open_.size());
    }
    refused_since_log_ = 0;
    accept_failures_since_log_ = 0;
  }

  std::size_t max_;
  std::unordered_set<int> open_;
  std::uint64_t refused_ = 0;
  std::uint64_t refused_since_log_ = 0;
  std::uint64_t accept_failures_since_log_ = 0;
  int last_accept_error_ = 0;
  std::chrono::steady_clock::time_point next_log_{};
  std::chrono::steady_clock::time_point next_sweep_{};
};

// Returns: max_connections, lowered to what the file-descriptor limit leaves room for
// (after raising the soft limit to the hard one), so accept() never meets EMFILE.
std::size_t EffectiveMaxConnections(std::size_t configured) {
  constexpr rlim_t kReservedFds = 64;  // the context, its pipes, the monitor, logs, the store
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return configured;
  if (limit.rlim_cur < limit.rlim_max) {
    rlimit raised = limit;
    raised.rlim_cur = limit.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) limit = raised;
  }
  if (limit.rlim_cur == RLIM_INFINITY) return configured;
  const rlim_t room = limit.rlim_cur > 2 * kReservedFds ? limit.rlim_cur - kReservedFds : limit.rlim_cur / 2;
  if (room < configured) {
    spdlog::warn("max_connections {} lowered to {}: the file-descriptor limit is {}", configured, room,
                 limit.rlim_cur);
    return static_cast<std::size_t>(room);
  }
  return configured;
}

// Reads every pending monitor event. Returns: whether one of them was a closed connection.
bool DrainMonitor(zmq::socket_t& monitor, ConnectionGuard& guard, ClientBacklog& backlog) {
  bool closed = false;
  for (int batch = 0; batch < 1024; ++batch) {
    zmq::message_t event;
    if (!monitor.recv(event, zmq::recv_flags::dontwait)) break;
    // Frame 1: uint16 event id + uint32 value (the fd, or errno for ACCEPT_FAILED); frame 2:
    // the endpoint.
    if (event.size() >= sizeof(std::uint16_t) + sizeof(std::uint32_t)) {
      std::uint16_t id = 0;
      std::uint32_t value = 0;
      std::memcpy(&id, event.data(), sizeof id);
      std::memcpy(&value, static_cast<const char*>(event.data()) + sizeof id, sizeof value);
      if (id == ZMQ_EVENT_DISCONNECTED || id == ZMQ_EVENT_CLOSED) {
        closed = true;
        guard.OnClosed(static_cast<int>(value));
        backlog.OnClosed(static_cast<int>(value));
      } else if (id == ZMQ_EVENT_ACCEPTED) {
        guard.OnAccepted(static_cast<int>(value));
      } else if (id == ZMQ_EVENT_ACCEPT_FAILED) {
        guard.OnAcceptFailed(static_cast<int>(value));
      }
    }
    while (event.more()) {
      zmq::message_t part;
      if (!monitor.recv(part, zmq::recv_flags::dontwait)) break;
      event = std::move(part);
    }
  }
  return closed;
}

// Commits what the core asked to store this turn (one transaction: group commit), tells the
// core how it went (it ACCEPTs or refuses the jobs it held back), then answers the lookups
// that need the store, now that this turn's results are in it.
void CommitTurn(Broker& broker, JobStore& store) {
  broker.FlushDeferredAccepts();
  // Twice at most: the jobs a commit released are dispatched at once, and their dispatch
  // marks are worth writing now rather than a poll timeout later.
  for (int pass = 0; pass < 2; ++pass) {
    std::vector<StoreOp> ops = broker.TakeStoreOps();
    if (ops.empty() && store.pending_retries() == 0) break;
    const CommitResult result = store.Commit(ops);
    broker.OnStoreCommitted(result, Now::Real());
  }
  std::vector<StoreLookup> lookups = broker.TakeLookups();
  if (lookups.empty()) return;
  const std::uint64_t now_ms = NowUnixMs();
  for (const StoreLookup& lookup : lookups) {
    try {
      if (lookup.kind == StoreLookup::Kind::kJobs) {
        broker.AnswerLookup(lookup, store.List(lookup.jobs, now_ms));
      } else {
        broker.AnswerLookup(lookup, store.FindResult(lookup.id, now_ms));
      }
    } catch (const Error& error) {
      spdlog::error("job lookup failed: {}", error.what());
      broker.AnswerLookup(lookup, std::optional<wire::JobRecord>{});
    }
  }
}

int BlockTerminationSignals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  return ::signalfd(-1, &signals, SFD_NONBLOCK | SFD_CLOEXEC);
}

int Run(const BrokerConfig& config) {
  const int signal_fd = BlockTerminationSignals();
#ifdef __GLIBC__
  // Job frames over 128 KiB always get their own mapping, returned to the system when the job
  // goes: glibc would otherwise raise this threshold after the first large free and serve
  // later large frames from the heap, which a burst of big jobs then leaves fragmented.
  ::mallopt(M_MMAP_THRESHOLD, 128 * 1024);
#endif
  zmq::context_t context(1);
  zmq::socket_t router(context, zmq::socket_type::router);
  router.set(zmq::sockopt::router_mandatory, 1);
  router.set(zmq::sockopt::linger, 0);
  // Per peer: what may wait for a client that does not read (its later answers are dropped
  // and counted), and for a worker (past it, jobs wait in the queue until it answers).
  router.set(zmq::sockopt::sndhwm, config.send_hwm);
  router.set(zmq::sockopt::rcvhwm, config.socket_hwm);
  // A transport backstop a little above max_message_bytes (per frame): a message just over
  // the limit still reaches OnMessage, which answers too_large; only a frame beyond the
  // slack makes libzmq drop the connection before allocating it.
  router.set(zmq::sockopt::maxmsgsize, static_cast<int64_t>(config.max_message_bytes + kMaxMessageSlack));
  // The ZAP handler must be bound before the ROUTER accepts its first CURVE peer.
  std::optional<ZapHandler> zap;
  zmq::socket_t zap_socket(context, zmq::socket_type::rep);
  if (config.security.curve) {
    const CurveKeyPair keys = LoadCurveKeyPair(config.security.key_file);
    std::map<std::string, std::string> clients;
    std::map<std::string, std::string> workers;
    if (!config.security.clients_file.empty()) clients = LoadCurveAllowList(config.security.clients_file);
    if (!config.security.workers_file.empty()) workers = LoadCurveAllowList(config.security.workers_file);
    zap.emplace(std::move(clients), std::move(workers));
    zap_socket.set(zmq::sockopt::linger, 0);
    zap_socket.bind("inproc://zeromq.zap.01");
    router.set(zmq::sockopt::curve_server, 1);
    router.set(zmq::sockopt::curve_secretkey, keys.secret_key);
    router.set(zmq::sockopt::zap_domain, "courier");
    spdlog::info("CURVE on: server key {} ({})", keys.public_key, keys.name);
  }
  for (const auto& endpoint : config.bind) {
    try {
      router.bind(endpoint);
    } catch (const zmq::error_t& error) {
      spdlog::critical("cannot bind {}: {}", endpoint, error.what());
      return 1;
    }
  }
  // Closed connections, seen by libzmq's I/O thread as they happen (kill -9 included).
  ConnectionGuard connections(EffectiveMaxConnections(config.max_connections));
  if (zmq_socket_monitor(router.handle(), kMonitorEndpoint,
                         ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_CLOSED | ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_ACCEPT_FAILED) !=
      0) {
    throw zmq::error_t();
  }
  zmq::socket_t monitor(context, zmq::socket_type::pair);
  monitor.set(zmq::sockopt::linger, 0);
  // Room for a burst of connection events (accept floods), read every loop turn.
  monitor.set(zmq::sockopt::rcvhwm, 100000);
  monitor.connect(kMonitorEndpoint);
  ClientBacklog backlog(config.max_client_bytes, config.security.curve);
  SocketOutbox outbox(router, backlog);
  Broker broker(config, outbox);
  // Accepted means stored: the jobs of the last run come back before any message is read.
  const std::filesystem::path data_dir = config.data_dir.empty() ? DefaultDataDir(config.bind.front()) : config.data_dir;
  JobStore store(JobStoreOptions{.dir = data_dir, .max_bytes = config.store_max_bytes});
  broker.UseStore();
  {
    const Now now = Now::Real();
    const std::uint64_t max_seq = store.Load([&](StoredJob&& job) { broker.Restore(std::move(job), now); });
    broker.FinishRestore(max_seq, now);
    CommitTurn(broker, store);
  }
  spdlog::info("job store {}", store.path().string());
  // /metrics and /healthz read only what the loop publishes (metrics_http.hpp).
  std::optional<MetricsHttp> http;
  auto next_publish = std::chrono::steady_clock::now();
  auto publish = [&] {
    http->Publish(std::make_shared<const BrokerMetrics>(broker.MetricsSnapshot(Now::Real())));
    next_publish = std::chrono::steady_clock::now() + MetricsHttp::kPublishEvery;
  };
  if (!config.http.empty()) {
    http.emplace(config.http);
    publish();
    spdlog::info("courier-broker serving http://{}/metrics and /healthz", http->address());
  }
  for (const auto& endpoint : config.bind) spdlog::info("courier-broker listening on {}", endpoint);

  zmq::pollitem_t items[] = {{router.handle(), 0, ZMQ_POLLIN, 0},
                             {nullptr, signal_fd, ZMQ_POLLIN, 0},
                             {monitor.handle(), 0, ZMQ_POLLIN, 0},
                             {zap ? zap_socket.handle() : nullptr, 0, zap ? short{ZMQ_POLLIN} : short{0}, 0}};
  std::vector<zmq::message_t> frames;
  frames.reserve(16);
  const auto tick = std::min<std::chrono::milliseconds>(config.heartbeat_interval / 4, std::chrono::milliseconds(100));
  auto next_tick = std::chrono::steady_clock::now();
  auto next_purge = next_tick;
  std::optional<std::chrono::steady_clock::time_point> drain_deadline;
  while (true) {
    const auto due = std::min(next_tick, broker.next_probe());
    const auto wait = std::chrono::ceil<std::chrono::milliseconds>(due - std::chrono::steady_clock::now());
    zmq::poll(items, zap ? 4 : 3, std::max(wait, std::chrono::milliseconds(0)));
    if (zap && (items[3].revents & ZMQ_POLLIN)) {
      std::vector<std::string> request;
      zmq::message_t part;
      do {
        (void)zap_socket.recv(part, zmq::recv_flags::none);
        request.push_back(part.to_string());
      } while (part.more());
      const auto decision = zap->Handle(request);
      if (!decision.admitted) broker.OnRefusedPeer(decision.key, decision.address);
      for (std::size_t i = 0; i < decision.reply.size(); ++i) {
        zap_socket.send(zmq::buffer(decision.reply[i]),
                        i + 1 < decision.reply.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
      }
    }
    if (items[1].revents & ZMQ_POLLIN) {
      signalfd_siginfo info{};
      [[maybe_unused]] const auto ignored = ::read(signal_fd, &info, sizeof info);
      if (!drain_deadline) {
        spdlog::info("signal {} received: draining for at most {} ms", info.ssi_signo, config.drain_timeout.count());
        broker.BeginDrain(Now::Real());
        drain_deadline = std::chrono::steady_clock::now() + config.drain_timeout;
      } else {
        spdlog::info("second signal: stopping now");
        break;
      }
    }
    if (drain_deadline && (broker.Drained() || std::chrono::steady_clock::now() >= *drain_deadline)) {
      spdlog::info("drained: disconnecting workers and stopping");
      break;
    }
    if (items[0].revents & ZMQ_POLLIN) {
      // Drain a bounded batch per wake-up: fewer polls under load, ticks still run on time.
      for (int batch = 0; batch < 1024; ++batch) {
        frames.clear();
        zmq::message_t frame;
        if (!router.recv(frame, zmq::recv_flags::dontwait)) break;
        frames.push_back(std::move(frame));
        while (frames.back().more()) {
          zmq::message_t part;
          (void)router.recv(part, zmq::recv_flags::none);
          frames.push_back(std::move(part));
        }
        // With CURVE the ZAP handler's User-Id names the peer's role (and key name) on
        // every frame.
        PeerRole role = PeerRole::kAny;
        std::string_view user_id;
        if (zap && frames.size() > 1) {
          try {
            user_id = frames[1].gets("User-Id");
            role = RoleFromUserId(user_id);
          } catch (const zmq::error_t&) {
            role = PeerRole::kClient;  // no metadata: grant the least, never the worker role
          }
        }
        if (frames.size() > 2) {
          const std::string_view header = frames[2].to_string_view();
          backlog.OnReceived(frames[0].to_string_view(), zmq_msg_get(frames.back().handle(), ZMQ_SRCFD),
                             header == "CRC01" || header == "MDPC01");
        }
        broker.OnMessage(frames, Now::Real(), role, user_id);
      }
    }
    if ((items[2].revents & ZMQ_POLLIN) && DrainMonitor(monitor, connections, backlog)) {
      // Reading ZMQ_EVENTS makes the ROUTER process its pending commands, the closed pipe's
      // among them if it has arrived, so the probe's send can fail EHOSTUNREACH at once.
      (void)router.get(zmq::sockopt::events);
      broker.OnPeerDisconnected(Now::Real());
    }
    const auto now = std::chrono::steady_clock::now();
    if (now >= next_tick || now >= broker.next_probe()) {
      connections.Sweep();
      broker.SetConnections(connections.open(), connections.refused());
      backlog.Sweep(now);
      if (const std::vector<std::string> dropped = outbox.TakeDroppedClients(); !dropped.empty()) {
        spdlog::warn("shut down {} client connection(s) holding more than {} bytes of unread answers "
                     "(max_client_bytes); their queued calls are dropped",
                     dropped.size(), config.max_client_bytes);
        for (const std::string& client : dropped) broker.OnSlowClientDropped(client, Now::Real());
      }
      broker.OnTick(Now::Real());
      if (now >= next_tick) next_tick = std::chrono::steady_clock::now() + tick;
    }
    CommitTurn(broker, store);
    if (http && now >= next_publish) publish();
    if (now >= next_purge) {
      store.PurgeExpired(NowUnixMs(), 10000);
      next_purge = now + std::chrono::seconds(1);
    }
  }
  broker.DisconnectAll();
  CommitTurn(broker, store);
  zmq_socket_monitor(router.handle(), nullptr, 0);
  ::close(signal_fd);
  return 0;
}

}  // namespace
}  // namespace courier::broker

int main(int argc, char** argv) {
  CLI::App app{"courier-broker: routes Courier and Majordomo jobs between clients and workers"};
  courier::command_line::AddVersionFlag(app, "courier-broker");
  std::string config_file;
  std::vector<std::string> bind;
  std::string log_level;
  app.add_option("-c,--config", config_file, "broker.toml (every key optional; see the README)");
  app.add_option("-b,--bind", bind, "endpoint to bind (repeatable; wins over the file)");
  std::string data_dir;
  app.add_option("--data-dir", data_dir, "the job store's folder (wins over data_dir in the file)");
  std::string http;
  app.add_option("--http", http,
                 "HOST:PORT to serve GET /metrics (Prometheus) and /healthz on; port 0 picks one (wins over http in "
                 "the file)");
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error, critical, off")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));
  std::optional<std::string> log_format;
  courier::command_line::AddLogFormatFlag(app, log_format);
  if (const auto status = courier::command_line::Parse(app, argc, argv)) return *status;
  try {
    const courier::ConfigSection section = config_file.empty()
                                               ? courier::ConfigSection::Empty()
                                               : courier::ConfigSection::LoadFile(config_file);
    auto config = courier::broker::BrokerConfig::Read(section, config_file);
    if (!bind.empty()) config.bind = bind;
    if (!data_dir.empty()) config.data_dir = data_dir;
    if (!http.empty()) {
      try {
        courier::prometheus::ParseHttpAddress(http);
      } catch (const courier::Error& error) {
        throw courier::Error(courier::ErrorCode::kConfig, std::string("--http: ") + error.what());
      }
      config.http = http;
    }
    if (!log_level.empty()) config.log.level = log_level;
    if (log_format) config.log.format = *log_format;
    courier::ConfigureLogging(config.log);
    return courier::broker::Run(config);
  } catch (const courier::Error& error) {
    std::cerr << "courier-broker: " << error.what() << "\n";
    return 2;
  } catch (const std::exception& error) {
    std::cerr << "courier-broker: fatal: " << error.what() << "\n";
    return 1;
  }
}
