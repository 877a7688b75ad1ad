// courier-metrics — the courier.metrics service: adds up the stage timings every Courier
// process reports, and serves them as Prometheus text, JSON and `courier metrics`.
//
//   courier-metrics                                        # local broker, http://127.0.0.1:9464/metrics
//   courier-metrics --broker tcp://10.0.0.5:5555 --http 0.0.0.0:9464
//   courier-metrics --config /etc/courier/metrics.toml
//   courier-metrics --dashboard-http 127.0.0.1:9465         # the dashboard on an address of its own
//
// Flags win over the file; the file over the defaults. Exit status: 0 after a clean drain
// (SIGTERM/SIGINT), 1 if jobs were abandoned, 2 for a bad flag or a configuration error.
#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <optional>
#include <sstream>

#include <spdlog/spdlog.h>

#include "builtin_service.hpp"
#include "command_line.hpp"
#include "courier/config.hpp"
#include "courier/curve.hpp"
#include "courier/error.hpp"
#include "courier/log.hpp"
#include "courier/worker.hpp"
#include "dashboard_server.hpp"
#include "metrics_service.hpp"

namespace {

namespace fs = std::filesystem;
using courier::builtin::TomlString;

struct Settings {
  courier::builtin::CommonSettings common;
  std::string http = "127.0.0.1:9464";
  std::int64_t max_series = 2000;
  std::int64_t http_max_connections = static_cast<std::int64_t>(courier::metrics::MetricsService::kDefaultHttpMaxConnections);
  std::chrono::milliseconds http_timeout = courier::metrics::MetricsService::kDefaultHttpTimeout;
  // [dashboard]: enabled, http, dir, token_file, curve_key_file (services/metrics/README.md)
  bool dashboard = true;
  std::string dashboard_http, dashboard_dir, dashboard_token_file, dashboard_curve_key_file;
};

Settings Defaults() {
  Settings settings;
  settings.common.log = courier::LogOptions{.level = "info", .format = "text", .name = "metrics"};
  return settings;
}

// Reads metrics.toml (every key optional; see services/metrics/README.md).
Settings ReadFile(const fs::path& file) {
  const courier::ConfigSection root = courier::ConfigSection::LoadFile(file);
  Settings settings = Defaults();
  settings.common = courier::builtin::ReadCommon(root, "metrics");
  settings.http = root.GetString("http", settings.http);
  settings.max_series = root.GetInt("max_series", settings.max_series, 1, 1'000'000);
  settings.http_max_connections = root.GetInt("http_max_connections", settings.http_max_connections, 2, 100000);
  settings.http_timeout = root.GetDuration("http_timeout", settings.http_timeout, std::chrono::milliseconds(100),
                                           std::chrono::minutes(10));
  if (root.Has("dashboard")) {
    const courier::ConfigSection dashboard = root.Section("dashboard");
    settings.dashboard = dashboard.GetBool("enabled", true);
    settings.dashboard_http = dashboard.GetString("http", "");
    settings.dashboard_dir = dashboard.GetString("dir", "");
    settings.dashboard_token_file = dashboard.GetString("token_file", "");
    settings.dashboard_curve_key_file = dashboard.GetString("curve_key_file", "");
    dashboard.RejectUnknownKeys();
  }
  root.RejectUnknownKeys();
  return settings;
}

}  // namespace

int main(int argc, char** argv) {
  courier::builtin::BlockShutdownSignals();

  CLI::App app{"courier-metrics: the courier.metrics service (stage latencies, /metrics, /metrics.json)"};
  courier::command_line::AddVersionFlag(app, "courier-metrics");
  std::optional<std::string> config;
  std::optional<std::string> http;
  courier::builtin::CommonFlags flags;
  app.add_option("--config,-c", config, "metrics.toml: brokers, http, max_series, threads, [log]")
      ->check(CLI::ExistingFile);
  app.add_option("--http", http, "HOST:PORT for GET /metrics and /metrics.json (default 127.0.0.1:9464; --http= turns it off)")
      ->expected(0, 1);  // so that "--http=" means "off" instead of taking the next argument
  std::optional<std::string> dashboard_http, dashboard_dir, dashboard_token_file, dashboard_curve_key;
  bool no_dashboard = false;
  app.add_option("--dashboard-http", dashboard_http, "HOST:PORT for the web dashboard (default: beside /metrics)");
  app.add_option("--dashboard-dir", dashboard_dir, "the dashboard's files (default ../share/courier/dashboard beside the binary)");
  app.add_option("--dashboard-token-file", dashboard_token_file, "token (mode 0600) the dashboard asks for; required beyond 127.0.0.1");
  app.add_option("--dashboard-curve-key", dashboard_curve_key, "CURVE key pair (an operator's) the dashboard asks the brokers and the error sink with");
  app.add_flag("--no-dashboard", no_dashboard, "serve no dashboard");
  courier::builtin::AddCommonFlags(app, flags, "sealed reports");
  if (const auto status = courier::command_line::Parse(app, argc, argv)) return *status;

  try {
    Settings settings = config ? ReadFile(fs::absolute(*config)) : Defaults();
    courier::builtin::ApplyCommonFlags(flags, settings.common);
    if (http) settings.http = *http;
    if (dashboard_http) settings.dashboard_http = *dashboard_http;
    if (dashboard_dir) settings.dashboard_dir = fs::absolute(*dashboard_dir).string();
    if (dashboard_token_file) settings.dashboard_token_file = fs::absolute(*dashboard_token_file).string();
    if (dashboard_curve_key) settings.dashboard_curve_key_file = fs::absolute(*dashboard_curve_key).string();
    if (no_dashboard) settings.dashboard = false;
    courier::ConfigureLogging(settings.common.log);

    std::ostringstream table;
    table << "allow_unsealed = true\n"
          << "capacity = " << settings.common.threads << "\n"
          << "http = " << TomlString(settings.http) << "\n"
          << "max_series = " << settings.max_series << "\n"
          << "http_max_connections = " << settings.http_max_connections << "\n"
          << "http_timeout = \"" << settings.http_timeout.count() << "ms\"\n"
          << courier::metrics::DashboardTable(settings.dashboard, settings.dashboard_http, settings.dashboard_dir,
                                              settings.dashboard_token_file, settings.dashboard_curve_key_file,
                                              settings.common.brokers, settings.common.keyring, settings.common.curve);
    courier::WorkerHost host(courier::builtin::HostOptions(settings.common));
    host.Register<courier::metrics::MetricsService>(
        courier::ConfigSection::Parse(table.str(), "courier-metrics settings"));
    return courier::builtin::RunHost(host);
  } catch (const std::exception& e) {
    std::cerr << "courier-metrics: " << e.what() << std::endl;
    return 2;
  }
}
