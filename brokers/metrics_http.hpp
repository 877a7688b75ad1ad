// metrics_http.hpp — the HTTP side of `courier-broker --http HOST:PORT`: GET /metrics and
// GET /healthz on a cpp-httplib server with threads of its own.
//
//   MetricsHttp http("127.0.0.1:0");             // binds (port 0: any free port) and serves
//   http.Publish(std::make_shared<const BrokerMetrics>(broker.MetricsSnapshot(now)));  // loop thread
//
// The broker loop owns every socket and all broker state and is single-threaded; this
// server only ever reads the last snapshot the loop published (a shared_ptr to an immutable
// value, swapped under a mutex), so no request can touch or slow the loop.
//   /metrics  the snapshot rendered (broker_metrics.hpp), text format 0.0.4; 503 before the
//             loop has published anything
//   /healthz  200 "ok" while the last snapshot is younger than `stale_after` (the loop is
//             alive and turning); 503 with its age otherwise (the loop is stuck, or stopped)
// Anything else is 404. Bodies of requests are refused past 4 KiB; read and write time out
// after 5 s; at most 4 requests are served at once. Serve it on loopback or a trusted
// network: it has no authentication (the figures name services, nothing else).
// Thread-safety: Publish from one thread (the loop); the destructor stops and joins the
// server's threads.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "broker_metrics.hpp"

namespace httplib {
class Server;
}

namespace courier::broker {

// What /healthz answers for a snapshot taken at `taken` (none yet: nullopt), asked at `now`.
struct HealthAnswer {
  int status = 503;
  std::string body;
};
HealthAnswer Health(std::optional<SteadyTime> taken, SteadyTime now, std::chrono::milliseconds stale_after);

class MetricsHttp {
 public:
  static constexpr std::chrono::milliseconds kDefaultStaleAfter{3000};
  // How often the loop should publish (main.cpp): well inside kDefaultStaleAfter.
  static constexpr std::chrono::milliseconds kPublishEvery{250};

  // Binds `address` (HOST:PORT) and starts serving. Throws: Error(kConfig) if the address is
  // malformed or cannot be bound.
  explicit MetricsHttp(const std::string& address, std::chrono::milliseconds stale_after = kDefaultStaleAfter);
  ~MetricsHttp();
  MetricsHttp(const MetricsHttp&) = delete;
  MetricsHttp& operator=(const MetricsHttp&) = delete;

  // Replaces the snapshot the handlers serve.
  void Publish(std::shared_ptr<const BrokerMetrics> metrics);
  // Returns: HOST:PORT it listens on (the port bound, when 0 was asked).
  const std::string& address() const { return address_; }

 private:
  std::shared_ptr<const BrokerMetrics> Latest() const;

  const std::chrono::milliseconds stale_after_;
  std::string address_;
  mutable std::mutex mutex_;
  std::shared_ptr<const BrokerMetrics> latest_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
};

}  // namespace courier::broker
