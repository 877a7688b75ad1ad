#include "cli_app.hpp"

#include <iostream>

#include <spdlog/spdlog.h>

#include "cli_support.hpp"
#include "courier/config.hpp"
#include "courier/curve.hpp"
#include "courier/log.hpp"

namespace courier::cli {

ClientOptions BuildOptions(const GlobalFlags& flags) {
  ClientOptions options;
  LogOptions log{.level = flags.verbose ? "debug" : "warn", .format = "text", .name = "courier"};
  if (!flags.config.empty()) {
    const ConfigSection root = ConfigSection::LoadFile(flags.config);
    if (root.Has("log")) {
      log = ReadLogOptions(root.Section("log"), "courier");
      if (flags.verbose) log.level = "debug";
    }
    options = ClientOptions::FromConfig(root);
  }
  if (flags.log_format) log.format = *flags.log_format;
  ConfigureLogging(log);
  // One-shot commands do not report: the last report would add up to a second at exit.
  // Load runs (send --count) turn it back on.
  options.report = false;
  options.ApplyEnvironment();
  if (!flags.brokers.empty()) options.brokers = flags.brokers;
  if (!flags.keyring.empty()) options.keyring_path = flags.keyring;
  if (!flags.curve_server_key.empty()) options.curve.server_public_key = ResolveCurvePublicKey(flags.curve_server_key);
  if (!flags.curve_key.empty()) {
    options.curve.key_file = flags.curve_key;
    options.curve.keys.reset();
  }
  try {
    if (!flags.deadline.empty()) options.deadline = ParseDuration(flags.deadline);
    if (!flags.failover_timeout.empty()) {
      options.failover_timeout = ParseDuration(flags.failover_timeout);
      options.heartbeat_interval = std::max(std::chrono::milliseconds(1), options.failover_timeout / 3);
    }
  } catch (const std::invalid_argument& error) {
    throw Error(ErrorCode::kConfig, error.what());
  }
  // With --verbose: where this command goes, after flags, environment and file are applied.
  std::string brokers;
  for (const std::string& broker : options.brokers) brokers += (brokers.empty() ? "" : ", ") + broker;
  spdlog::debug("brokers [{}], keyring {}, deadline {} ms", brokers,
                options.keyring_path.empty() ? "(default)" : options.keyring_path.string(), options.deadline.count());
  return options;
}

void PrintError(const Error& error) {
  std::cerr << "courier: " << ToString(error.code()) << ": " << error.what() << "\n";
}

}  // namespace courier::cli
