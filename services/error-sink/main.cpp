// courier-error-sink — the courier.errors service: stores error reports and dead letters
// in SQLite and answers `courier errors` queries.
//
//   courier-error-sink                                   # local broker, ~/.local/state/courier/errors.db
//   courier-error-sink --broker tcp://10.0.0.5:5555 --broker tcp://10.0.0.6:5555 --db /var/lib/courier/errors.db
//   courier-error-sink --config /etc/courier/error-sink.toml
//
// Flags win over the file; the file over the defaults. Exit status: 0 after a clean drain
// (SIGTERM/SIGINT), 1 if jobs were abandoned, 2 for a bad flag or a configuration error.
#include <CLI/CLI.hpp>
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
#include "error_sink_service.hpp"

namespace {

namespace fs = std::filesystem;
using courier::builtin::TomlString;
using std::chrono::milliseconds;

struct Settings {
  courier::builtin::CommonSettings common;
  std::string db;  // "" = ErrorStore::DefaultPath()
  milliseconds max_age{std::chrono::hours(24 * 30)};
  std::int64_t max_reports = 1'000'000;
  std::string synchronous = "full";
  milliseconds replay_wait{10000};
};

Settings Defaults() {
  Settings settings;
  settings.common.log = courier::LogOptions{.level = "info", .format = "text", .name = "error-sink"};
  return settings;
}

// Reads error-sink.toml (every key optional; see services/error-sink/README.md).
Settings ReadFile(const fs::path& file) {
  const courier::ConfigSection root = courier::ConfigSection::LoadFile(file);
  Settings settings = Defaults();
  settings.common = courier::builtin::ReadCommon(root, "error-sink");
  settings.db = root.GetString("db", "");
  if (!settings.db.empty() && fs::path(settings.db).is_relative()) settings.db = (file.parent_path() / settings.db).string();
  settings.max_age = root.GetDuration("max_age", settings.max_age, milliseconds(1000),
                                      milliseconds(std::chrono::hours(24 * 365 * 10)));
  settings.max_reports = root.GetInt("max_reports", settings.max_reports, 1, 1'000'000'000);
  settings.synchronous = root.GetEnum("synchronous", settings.synchronous, {"full", "normal"});
  settings.replay_wait = root.GetDuration("replay_wait", settings.replay_wait, milliseconds(1), milliseconds(600000));
  root.RejectUnknownKeys();
  return settings;
}

std::string ServiceTable(const Settings& settings) {
  const courier::builtin::CommonSettings& common = settings.common;
  std::ostringstream toml;
  toml << "allow_unsealed = true\n";
  toml << "capacity = " << common.threads << "\n";
  if (!settings.db.empty()) toml << "db = " << TomlString(settings.db) << "\n";
  toml << "max_age = " << settings.max_age.count() << "\n";
  toml << "max_reports = " << settings.max_reports << "\n";
  toml << "synchronous = " << TomlString(settings.synchronous) << "\n";
  toml << "replay_wait = " << settings.replay_wait.count() << "\n";
  toml << "brokers = [";
  for (std::size_t i = 0; i < common.brokers.size(); ++i) {
    toml << (i == 0 ? "" : ", ") << TomlString(common.brokers[i]);
  }
  toml << "]\n";
  if (common.curve.enabled()) {
    // Replays submit through the brokers as a client, with the sink's own CURVE key.
    toml << "curve_server_key = " << TomlString(common.curve.server_public_key) << "\n";
    toml << "curve_key_file = " << TomlString(common.curve.key_file.string()) << "\n";
  }
  return toml.str();
}

}  // namespace

int main(int argc, char** argv) {
  courier::builtin::BlockShutdownSignals();

  CLI::App app{"courier-error-sink: the courier.errors service (error reports and dead letters in SQLite)"};
  courier::command_line::AddVersionFlag(app, "courier-error-sink");
  std::optional<std::string> config;
  std::optional<std::string> db;
  courier::builtin::CommonFlags flags;
  app.add_option("--config,-c", config, "error-sink.toml: brokers, db, max_age, max_reports, replay_wait, [log]")
      ->check(CLI::ExistingFile);
  app.add_option("--db", db, "SQLite database (default $XDG_STATE_HOME/courier/errors.db or ~/.local/state/courier/errors.db)");
  courier::builtin::AddCommonFlags(app, flags, "sealed queries");
  if (const auto status = courier::command_line::Parse(app, argc, argv)) return *status;

  try {
    Settings settings = config ? ReadFile(fs::absolute(*config)) : Defaults();
    courier::builtin::ApplyCommonFlags(flags, settings.common);
    if (db) settings.db = fs::absolute(*db).string();
    courier::ConfigureLogging(settings.common.log);

    courier::WorkerOptions options = courier::builtin::HostOptions(settings.common);
    options.report_errors = false;  // a failure of the sink must never feed back into it
    courier::WorkerHost host(options);
    courier::sink::ErrorSinkService& sink = host.Register<courier::sink::ErrorSinkService>(
        courier::ConfigSection::Parse(ServiceTable(settings), "courier-error-sink settings"));
    host.AddStageSource([&sink] { return sink.StageTimings(); });  // error_handle
    return courier::builtin::RunHost(host);
  } catch (const std::exception& e) {
    std::cerr << "courier-error-sink: " << e.what() << std::endl;
    return 2;
  }
}
