// dashboard_server.hpp — the web dashboard of courier-metrics: pages, their JSON and the
// static files, served on the collector's HTTP server or on an address of its own.
//
//   Dashboard dashboard(ReadDashboardOptions(config), table);
//   dashboard.Mount(metrics_server, "127.0.0.1");     // beside /metrics, or:
//   dashboard.Listen();                              // options.http = "HOST:PORT"
//
// Routes (services/metrics/README.md, "Dashboard"):
//   GET  /                       overview (brokers, services), rendered here, live by script
//   GET  /service?name=S         a service: charts (by script), workers, stages
//   GET  /errors[?service=&code=&since=&id=]   groups, latest reports, one report
//   GET  /jobs[?id=|?state=&service=&list=1]   stored jobs
//   GET  /static/...             files of the dashboard directory (no build step)
//   GET  /api/overview, /api/service?name=S, /api/errors?view=groups|reports&..., /api/error?id=N[&reveal=1],
//        /api/jobs?state=&service=, /api/job?id=X[&reveal=1]           JSON
//   POST /api/replay {"id": N} | {"fingerprint": F}   replay (token, same origin)
//   GET|POST /login              the token form, when a token file is in force
// Access is DashboardAccess's (dashboard_access.hpp): open on loopback, a token beyond it;
// replays and reveals need the page's token header and the same origin.
// A sampler thread takes, once a second, the history for the charts and the brokers' state
// (ClusterView::Poll); pages and /api/overview answer from what it holds.
// Thread-safety: handlers run on the HTTP server's threads; every member they use is
// thread-safe. Destroy the Dashboard only after the servers it is mounted on have stopped.
#pragma once

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "courier/client.hpp"
#include "courier/config.hpp"
#include "dashboard_access.hpp"
#include "dashboard_cluster.hpp"
#include "dashboard_history.hpp"
#include "stage_table.hpp"

namespace httplib {
class Server;
}

namespace courier::metrics {

struct DashboardOptions {
  bool enabled = false;                 // dashboard = false (courier-metrics turns it on)
  std::string http;                     // dashboard_http: "" = on the collector's HTTP address
  std::filesystem::path dir;            // dashboard_dir: "" = DefaultDashboardDir()
  std::filesystem::path token_file;     // dashboard_token_file: required beyond loopback
  ClientOptions client;                 // brokers, keyring, dashboard_curve_*: how it asks the cluster
  std::chrono::milliseconds interval{1000};  // dashboard_interval: sampling period (100ms..60s)
};

// Reads the dashboard's keys of the courier.metrics section (each optional):
//   dashboard = false                 on: routes, a sampler thread and a client (courier-metrics
//                                     sets it unless --no-dashboard)
//   dashboard_http = ""               HOST:PORT of its own; "" = beside /metrics
//   dashboard_dir = ""                static files; "" = DefaultDashboardDir()
//   dashboard_token_file = ""         the token (mode 0600); required when not on loopback
//   dashboard_interval = "1s"
//   brokers = ["tcp://127.0.0.1:5555"], keyring = ""   the cluster to ask, the key to seal with
//   dashboard_curve_server_key = "", dashboard_curve_key_file = ""   CURVE for those questions
//                                     (the error sink's queries need an operator key)
// Throws: Error(kConfig) naming the key.
DashboardOptions ReadDashboardOptions(const ConfigSection& config);

// Returns: the keys above as TOML lines, for courier-metrics to add to the service's table:
// the dashboard asks the brokers the collector serves, seals with its keyring, and with
// CURVE uses `curve_key_file` (an operator's key pair; without one it asks nobody and
// says so: the collector's own key is a worker's).
std::string DashboardTable(bool enabled, const std::string& http, const std::string& dir, const std::string& token_file,
                           const std::string& curve_key_file, const std::vector<std::string>& brokers,
                           const std::string& keyring, const CurveOptions& curve);

// Returns: ../share/courier/dashboard beside the running executable's directory: the
// install's DATADIR, and in the build tree build/share/courier/dashboard, where the build
// copies the files.
std::filesystem::path DefaultDashboardDir();

class Dashboard {
 public:
  // Starts the sampler. Throws: Error(kConfig) for a bad address, token file or directory.
  Dashboard(DashboardOptions options, const StageTable& table);
  ~Dashboard();
  Dashboard(const Dashboard&) = delete;
  Dashboard& operator=(const Dashboard&) = delete;

  // Adds the routes to `server`, which listens on `bind_host`. Call once, before it serves.
  void Mount(httplib::Server& server, const std::string& bind_host);
  // Listens on options.http with a server of its own (stopped by the destructor).
  // Returns: "HOST:PORT" it listens on. Throws: Error(kConfig) if it cannot.
  std::string Listen();

  // Takes one sample now (tests; the sampler does it every interval).
  void SampleNow();

  const std::filesystem::path& dir() const { return dir_; }
  ClusterView& cluster() { return *cluster_; }
  StageHistory& history() { return history_; }

 private:
  void Run();

  const DashboardOptions options_;
  const StageTable& table_;
  std::filesystem::path dir_;
  StageHistory history_;
  std::unique_ptr<ClusterView> cluster_;
  std::unique_ptr<DashboardAccess> access_;
  std::unique_ptr<httplib::Server> own_server_;
  std::thread own_thread_;

  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread sampler_;
};

}  // namespace courier::metrics
