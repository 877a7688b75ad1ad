// courier-metrics — the courier.metrics service: adds up the stage timings every Courier
// process reports, and serves them as Prometheus text, JSON and `courier metrics`.
//
//   courier-metrics                                        # local broker, http://127.0.0.1:9464/metrics
//   courier-metrics --broker tcp://10.0.0.5:5555 --http 0.0.0.0:9464
//   courier-metrics --config /etc/courier/metrics.toml
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
  courier::builtin::AddCommonFlags(app, flags, "sealed reports");
  if (const auto status = courier::command_line::Parse(app, argc, argv)) return *status;

  try {
    Settings settings = config ? ReadFile(fs::absolute(*config)) : Defaults();
    courier::builtin::ApplyCommonFlags(flags, settings.common);
    if (http) settings.http = *http;
    courier::ConfigureLogging(settings.common.log);

    std::ostringstream table;
    table << "allow_unsealed = true\n"
          << "capacity = " << settings.common.threads << "\n"
          << "http = " << TomlString(settings.http) << "\n"
          << "max_series = " << settings.max_series << "\n"
          << "http_max_connections = " << settings.http_max_connections << "\n"
          << "http_timeout = \"" << settings.http_timeout.count() << "ms\"\n";
    courier::WorkerHost host(courier::builtin::HostOptions(settings.common));
    host.Register<courier::metrics::MetricsService>(
        courier::ConfigSection::Parse(table.str(), "courier-metrics settings"));
    return courier::builtin::RunHost(host);
  } catch (const std::exception& e) {
    std::cerr << "courier-metrics: " << e.what() << std::endl;
    return 2;
  }
}
