// courier-error-sink — the courier.errors service: stores error reports and dead letters
// in SQLite and answers `courier errors` queries.
//
//   courier-error-sink                                   # local broker, ~/.local/state/courier/errors.db
//   courier-error-sink --broker tcp://10.0.0.5:5555 --broker tcp://10.0.0.6:5555 --db /var/lib/courier/errors.db
//   courier-error-sink --config /etc/courier/error-sink.toml
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
#include "error_sink_service.hpp"

namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

// A TOML basic string holding `text`.
std::string TomlString(std::string_view text) {
  std::string out = "\"";
  for (const char c : text) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
          char escaped[8];
          std::snprintf(escaped, sizeof escaped, "\\u%04x", static_cast<unsigned>(static_cast<unsigned char>(c)));
          out += escaped;
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

struct Settings {
  std::vector<std::string> brokers{"tcp://127.0.0.1:5555"};
  std::string db;  // "" = ErrorStore::DefaultPath()
  milliseconds max_age{std::chrono::hours(24 * 30)};
  std::int64_t max_reports = 1'000'000;
  std::string synchronous = "full";
  milliseconds replay_wait{10000};
  unsigned threads = 2;
  std::chrono::milliseconds heartbeat_interval{2500};  // must match the brokers'
  std::string keyring;
  std::string instance;
  courier::CurveOptions curve;  // [security]: CURVE to the brokers (courier/curve.hpp)
  courier::LogOptions log{.level = "info", .format = "text", .name = "error-sink"};
};

// Reads error-sink.toml (every key optional; see services/error-sink/README.md).
Settings ReadFile(const fs::path& file) {
  const courier::ConfigSection root = courier::ConfigSection::LoadFile(file);
  Settings settings;
  settings.brokers = root.GetStringArray("brokers", settings.brokers);
  settings.db = root.GetString("db", "");
  if (!settings.db.empty() && fs::path(settings.db).is_relative()) settings.db = (file.parent_path() / settings.db).string();
  settings.max_age = root.GetDuration("max_age", settings.max_age, milliseconds(1000),
                                      milliseconds(std::chrono::hours(24 * 365 * 10)));
  settings.max_reports = root.GetInt("max_reports", settings.max_reports, 1, 1'000'000'000);
  settings.synchronous = root.GetEnum("synchronous", settings.synchronous, {"full", "normal"});
  settings.replay_wait = root.GetDuration("replay_wait", settings.replay_wait, milliseconds(1), milliseconds(600000));
  settings.threads = static_cast<unsigned>(root.GetInt("threads", settings.threads, 1, 64));
  settings.heartbeat_interval = root.GetDuration("heartbeat_interval", settings.heartbeat_interval,
                                                 std::chrono::milliseconds(100), std::chrono::milliseconds(60000));
  settings.keyring = root.GetString("keyring", "");
  settings.instance = root.GetString("instance", "");
  settings.log = courier::ReadLogOptions(root.Section("log"), "error-sink");
  settings.curve = courier::CurveOptions::FromConfig(root.Section("security"));
  root.RejectUnknownKeys();
  return settings;
}

std::string ServiceTable(const Settings& settings) {
  std::ostringstream toml;
  toml << "allow_unsealed = true\n";
  toml << "capacity = " << settings.threads << "\n";
  if (!settings.db.empty()) toml << "db = " << TomlString(settings.db) << "\n";
  toml << "max_age = " << settings.max_age.count() << "\n";
  toml << "max_reports = " << settings.max_reports << "\n";
  toml << "synchronous = " << TomlString(settings.synchronous) << "\n";
  toml << "replay_wait = " << settings.replay_wait.count() << "\n";
  toml << "brokers = [";
  for (std::size_t i = 0; i < settings.brokers.size(); ++i) {
    toml << (i == 0 ? "" : ", ") << TomlString(settings.brokers[i]);
  }
  toml << "]\n";
  if (settings.curve.enabled()) {
    // Replays submit through the brokers as a client, with the sink's own CURVE key.
    toml << "curve_server_key = " << TomlString(settings.curve.server_public_key) << "\n";
    toml << "curve_key_file = " << TomlString(settings.curve.key_file.string()) << "\n";
  }
  return toml.str();
}

}  // namespace

int main(int argc, char** argv) {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  CLI::App app{"courier-error-sink: the courier.errors service (error reports and dead letters in SQLite)"};
  app.set_version_flag("--version", std::string("courier-error-sink ") + COURIER_VERSION_STRING);
  std::optional<std::string> config;
  std::vector<std::string> brokers;
  std::optional<std::string> db;
  std::optional<std::string> keyring;
  std::optional<unsigned> threads;
  std::optional<std::string> log_level;
  std::optional<std::string> curve_server_key;
  std::optional<std::string> curve_key;
  app.add_option("--config,-c", config, "error-sink.toml: brokers, db, max_age, max_reports, replay_wait, [log]")
      ->check(CLI::ExistingFile);
  app.add_option("--broker,-b", brokers, "broker endpoint (repeatable; default tcp://127.0.0.1:5555)");
  app.add_option("--db", db, "SQLite database (default $XDG_STATE_HOME/courier/errors.db or ~/.local/state/courier/errors.db)");
  app.add_option("--keyring,-k", keyring, "payload keyring for sealed queries (default ~/.config/courier/keyring.toml)");
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
    if (db) settings.db = fs::absolute(*db).string();
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
    options.report_errors = false;  // a failure of the sink must never feed back into it
    courier::WorkerHost host(options);
    host.Register<courier::sink::ErrorSinkService>(
        courier::ConfigSection::Parse(ServiceTable(settings), "courier-error-sink settings"));
    status = host.Run();
    if (status != 0) {
      spdlog::default_logger()->flush();
      std::fflush(nullptr);
      std::_Exit(status);
    }
  } catch (const std::exception& e) {
    std::cerr << "courier-error-sink: " << e.what() << std::endl;
    return 2;
  }
  return status;
}
