// builtin_service.hpp — what the executables that run a WorkerHost share. courier-error-sink
// and courier-metrics are each one built-in service, configured from the same keys
// (brokers, threads, keyring, [log], [security], ...) and flags plus a few of their own;
// courier-worker shares the signal set-up and the way the host is run.
#pragma once

#include <CLI/CLI.hpp>
#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "courier/config.hpp"
#include "courier/curve.hpp"
#include "courier/log.hpp"
#include "courier/worker.hpp"

namespace courier::builtin {

// The settings every built-in service has (the file's keys; flags override them).
struct CommonSettings {
  std::vector<std::string> brokers{"tcp://127.0.0.1:5555"};
  unsigned threads = 2;
  std::chrono::milliseconds heartbeat_interval{2500};  // must match the brokers'
  std::string keyring;                                 // "" = the default keyring
  std::string instance;
  CurveOptions curve;  // [security]: CURVE to the brokers
  LogOptions log;
};

// Reads the common keys of `root`; the caller reads its own and then RejectUnknownKeys.
CommonSettings ReadCommon(const ConfigSection& root, std::string_view log_name);

// The common flags, as parsed (unset when not given).
struct CommonFlags {
  std::vector<std::string> brokers;
  std::optional<std::string> keyring;
  std::optional<unsigned> threads;
  std::optional<std::string> log_level;
  std::optional<std::string> log_format;
  std::optional<std::string> curve_server_key;
  std::optional<std::string> curve_key;
};

// Adds --broker, --keyring, --threads, --log-level, --log-format, --curve-server-key and
// --curve-key.
// `keyring_use` says what the service needs the keyring for.
void AddCommonFlags(CLI::App& app, CommonFlags& flags, std::string_view keyring_use);
// Flags win over the file. Throws: Error(kConfig) for an unreadable CURVE key.
void ApplyCommonFlags(const CommonFlags& flags, CommonSettings& settings);

// Worker-host options for a built-in service: no plugin or schema directories.
WorkerOptions HostOptions(const CommonSettings& settings);

// SIGTERM, SIGINT and SIGHUP are left to the WorkerHost (it waits for them): blocked here
// before any thread starts, so every thread inherits the mask.
void BlockShutdownSignals();

// Runs `host`. Returns: its status. Handler threads left inside a handler at the end of the
// grace period (which cannot be joined) make it leave the process at once with that
// status, without running destructors, after flushing logs.
int RunHost(WorkerHost& host);

// `text` as a TOML basic string, quotes included.
std::string TomlString(std::string_view text);

}  // namespace courier::builtin
