// courier-metrics — the courier.metrics service: adds up the stage timings every Courier
// process reports, and serves them as Prometheus text, JSON and `courier metrics`.
//
//   courier-metrics                                        # local broker, http://127.0.0.1:9464/metrics
//   courier-metrics --broker tcp://10.0.0.5:5555 --http 0.0.0.0:9464
//   courier-metrics --config /etc/courier/metrics.toml
//
// Flags win over the file; the file over the defaults. Exit status: 0 after a clean drain
// (SIGTERM/SIGINT), 1 if jobs were abandoned, 2 for a configuration error.
#include <signal.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <optional>
#include <sstream>

#include <spdlog/spdlog.h>

#include "courier/config.hpp"
#include "courier/curve.hpp"
#include "courier/error.hpp"
#include "courier/log.hpp"
#include "courier/version.hpp"
#include "courier/worker.hpp"
#include "metrics_service.hpp"

namespace {

namespace fs = std::filesystem;

std::string TomlString(std::string_view text) {
  std::string out = "\"";
  for (const char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      char escaped[8];
      std::snprintf(escaped, sizeof escaped, "\\u%04x", static_cast<unsigned>(static_cast<unsigned char>(c)));
      out += escaped;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

struct Settings {
  std::vector<std::string> brokers{"tcp://127.0.0.1:5555"};
  std::string http = "127.0.0.1:9464";
  std::int64_t max_series = 2000;
  unsigned threads = 2;
  std::chrono::milliseconds heartbeat_interval{2500};  // must match the brokers'
  std::string keyring;
  std::string instance;
  courier::CurveOptions curve;  // [security]: CURVE to the brokers (courier/curve.hpp)
  courier::LogOptions log{.level = "info", .format = "text", .name = "metrics"};
};

// Reads metrics.toml (every key optional; see services/metrics/README.md).
Settings ReadFile(const fs::path& file) {
  const courier::ConfigSection root = courier::ConfigSection::LoadFile(file);
  Settings settings;
  settings.brokers = root.GetStringArray("brokers", settings.brokers);
  settings.http = root.GetString("http", settings.http);
  settings.max_series = root.GetInt("max_series", settings.max_series, 1, 1'000'000);
  settings.threads = static_cast<unsigned>(root.GetInt("threads", settings.threads, 1, 64));
  settings.heartbeat_interval = root.GetDuration("heartbeat_interval", settings.heartbeat_interval,
                                                 std::chrono::milliseconds(100), std::chrono::milliseconds(60000));
  settings.keyring = root.GetString("keyring", "");
  settings.instance = root.GetString("instance", "");
  settings.log = courier::ReadLogOptions(root.Section("log"), "metrics");
  settings.curve = courier::CurveOptions::FromConfig(root.Section("security"));
  root.RejectUnknownKeys();
  return settings;
}

}  // namespace

int main(int argc, char** argv) {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  CLI::App app{"courier-metrics: the courier.metrics service (stage latencies, /metrics, /metrics.json)"};
  app.set_version_flag("--version", std::string("courier-metrics ") + COURIER_VERSION_STRING);
  std::optional<std::string> config;
  std::vector<std::string> brokers;
  std::optional<std::string> http;
  std::optional<std::string> keyring;
  std::optional<unsigned> threads;
  std::optional<std::string> log_level;
  std::optional<std::string> curve_server_key;
  std::optional<std::string> curve_key;
  app.add_option("--config,-c", config, "metrics.toml: brokers, http, max_series, threads, [log]")
      ->check(CLI::ExistingFile);
  app.add_option("--broker,-b", brokers, "broker endpoint (repeatable; default tcp://127.0.0.1:5555)");
  app.add_option("--http", http, "HOST:PORT for GET /metrics and /metrics.json (default 127.0.0.1:9464; --http= turns it off)")
      ->expected(0, 1);  // so that "--http=" means "off" instead of taking the next argument
  app.add_option("--keyring,-k", keyring, "payload keyring for sealed reports (default ~/.config/courier/keyring.toml)");
  app.add_option("--threads,-t", threads, "handler threads (default 2)")->check(CLI::Range(1u, 64u));
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error, critical, off")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));
  app.add_option("--curve-server-key", curve_server_key,
                 "turn CURVE on: the brokers' public key (Z85), or a file holding it");
  app.add_option("--curve-key", curve_key, "this service's CURVE key pair file (courier keygen --curve; mode 0600)");
  CLI11_PARSE(app, argc, argv);

  int status = 0;
  try {
    Settings settings;
    if (config) settings = ReadFile(fs::absolute(*config));
    if (!brokers.empty()) settings.brokers = brokers;
    if (http) settings.http = *http;
    if (keyring) settings.keyring = *keyring;
    if (threads) settings.threads = *threads;
    if (log_level) settings.log.level = *log_level;
    if (curve_server_key) settings.curve.server_public_key = courier::ResolveCurvePublicKey(*curve_server_key);
    if (curve_key) {
      settings.curve.key_file = fs::absolute(*curve_key);
      settings.curve.keys.reset();
    }
    courier::ConfigureLogging(settings.log);

    courier::WorkerOptions options;
    options.brokers = settings.brokers;
    options.threads = settings.threads;
    options.heartbeat_interval = settings.heartbeat_interval;
    if (!settings.keyring.empty()) options.keyring = settings.keyring;
    if (!settings.instance.empty()) options.instance = settings.instance;
    options.log = settings.log;
    options.curve = settings.curve;
    options.schema_dirs.clear();
    std::ostringstream table;
    table << "allow_unsealed = true\n"
          << "capacity = " << settings.threads << "\n"
          << "http = " << TomlString(settings.http) << "\n"
          << "max_series = " << settings.max_series << "\n";
    courier::WorkerHost host(options);
    host.Register<courier::metrics::MetricsService>(
        courier::ConfigSection::Parse(table.str(), "courier-metrics settings"));
    status = host.Run();
    if (status != 0) {
      spdlog::default_logger()->flush();
      std::fflush(nullptr);
      std::_Exit(status);
    }
  } catch (const std::exception& e) {
    std::cerr << "courier-metrics: " << e.what() << std::endl;
    return 2;
  }
  return status;
}
