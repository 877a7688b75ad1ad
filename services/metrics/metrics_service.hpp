// metrics_service.hpp — the courier.metrics service: adds up the stage timings every
// process reports and serves them over HTTP and as a Courier query.
//
//   courier::WorkerHost host(options);
//   host.Register<courier::metrics::MetricsService>(courier::ConfigSection::Parse(R"(
//     allow_unsealed = true         # processes report unsealed by default
//     http = "127.0.0.1:9464"       # GET /metrics (Prometheus), GET /metrics.json
//   )", "metrics"));
//
// Requests (MessagePack maps, sealed or unsealed):
//   a metrics report (PROTOCOL.md §10.2: {"process", ..., "stages": [...]}) → {"added": bool}
//   {"op": "stats"}        → the table (exposition.hpp, StatsValue)
//   {"op": "prometheus"}   → {"text": the /metrics page}
// Anything else is answered ERROR invalid_payload.
// Every report is checked before it touches a figure (detail::CheckMetricsReport,
// report_codec.hpp): a report with a bad process, host, instance or pid is refused (ERROR
// invalid_payload, courier_metrics_rejected_reports_total); implausible stage entries
// (names, counts above 10^6/s of the interval, samples above 1 h, sums and histograms that
// contradict count, min and max) are dropped one by one and the rest added
// (courier_metrics_rejected_stages_total); the reply then says {"added", "rejected_stages",
// "problem"}. Garbage is logged at most once a second.
//
// Settings ([services."courier.metrics"] keys besides the host's own):
//   http = "127.0.0.1:9464"   HOST:PORT to serve HTTP on; "" turns HTTP off; port 0 picks one
//   max_series = 2000         (service, process, stage) series held at most (1..1000000)
//   http_max_connections = 256  HTTP connections served at once (2..100000), one thread
//                             each, started on demand and kept; more wait in order
//   dashboard = false         the web dashboard (dashboard_server.hpp, its other keys there)
//   http_timeout = "2s"       read and write timeout per socket operation, and the
//                             keep-alive idle timeout (100ms..10min); at most 100 requests
//                             per keep-alive connection, request bodies at most 64 KiB
//
// The HTTP server (cpp-httplib) starts in the constructor and stops in the destructor;
// only GET /metrics and GET /metrics.json exist (others: 404). A client that opens a
// connection and never finishes its request holds one thread for http_timeout (longer if
// it trickles bytes, see the README's Limitations); as long as fewer than
// http_max_connections are held, /metrics is answered at once.
// Thread-safety: Handle runs concurrently on the host's pool; the table serialises.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <thread>

#include "courier/config.hpp"
#include "courier/plugin.hpp"
#include "courier/value.hpp"
#include "stage_table.hpp"

namespace httplib {
class Server;
}

namespace courier::metrics {

class Dashboard;

class MetricsService {
 public:
  static constexpr std::string_view kName = "courier.metrics";
  static constexpr std::size_t kDefaultHttpMaxConnections = 256;
  static constexpr std::chrono::milliseconds kDefaultHttpTimeout{2000};

  // Throws: Error(kConfig) for a bad setting or an HTTP address that cannot be bound.
  explicit MetricsService(const ConfigSection& config);
  ~MetricsService();
  MetricsService(const MetricsService&) = delete;
  MetricsService& operator=(const MetricsService&) = delete;

  Value Handle(const Value& request, const JobContext& job);

  StageTable& table() { return *table_; }
  // Returns: "HOST:PORT" the HTTP server listens on, or "" when HTTP is off.
  const std::string& http_address() const { return http_address_; }
  // Returns: "HOST:PORT" the dashboard is served on, or "" when it is off.
  const std::string& dashboard_address() const { return dashboard_address_; }

 private:
  std::unique_ptr<StageTable> table_;
  detail::ReportLogGate log_gate_;
  std::unique_ptr<httplib::Server> server_;
  std::thread server_thread_;
  std::string http_address_;
  std::unique_ptr<Dashboard> dashboard_;  // destroyed before the table, after the server stopped
  std::string dashboard_address_;
};

}  // namespace courier::metrics
