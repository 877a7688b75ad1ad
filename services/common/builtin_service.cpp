#include "builtin_service.hpp"

#include <pthread.h>
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include <spdlog/spdlog.h>

#include "command_line.hpp"

namespace courier::builtin {

CommonSettings ReadCommon(const ConfigSection& root, std::string_view log_name) {
  CommonSettings settings;
  settings.brokers = root.GetStringArray("brokers", settings.brokers);
  settings.threads = static_cast<unsigned>(root.GetInt("threads", settings.threads, 1, 64));
  settings.heartbeat_interval = root.GetDuration("heartbeat_interval", settings.heartbeat_interval,
                                                 std::chrono::milliseconds(100), std::chrono::milliseconds(60000));
  settings.keyring = root.GetString("keyring", "");
  settings.instance = root.GetString("instance", "");
  settings.log = ReadLogOptions(root.Section("log"), std::string(log_name));
  settings.curve = CurveOptions::FromConfig(root.Section("security"));
  return settings;
}

void AddCommonFlags(CLI::App& app, CommonFlags& flags, std::string_view keyring_use) {
  app.add_option("--broker,-b", flags.brokers, "broker endpoint (repeatable; default tcp://127.0.0.1:5555)");
  app.add_option("--keyring,-k", flags.keyring,
                 "payload keyring for " + std::string(keyring_use) + " (default ~/.config/courier/keyring.toml)");
  app.add_option("--threads,-t", flags.threads, "handler threads (default 2)")->check(CLI::Range(1u, 64u));
  app.add_option("--log-level", flags.log_level, "trace, debug, info, warn, error, critical, off")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));
  command_line::AddLogFormatFlag(app, flags.log_format);
  app.add_option("--curve-server-key", flags.curve_server_key,
                 "turn CURVE on: the brokers' public key (Z85), or a file holding it");
  app.add_option("--curve-key", flags.curve_key, "this service's CURVE key pair file (courier keygen --curve; mode 0600)");
}

void ApplyCommonFlags(const CommonFlags& flags, CommonSettings& settings) {
  if (!flags.brokers.empty()) settings.brokers = flags.brokers;
  if (flags.keyring) settings.keyring = *flags.keyring;
  if (flags.threads) settings.threads = *flags.threads;
  if (flags.log_level) settings.log.level = *flags.log_level;
  if (flags.log_format) settings.log.format = *flags.log_format;
  if (flags.curve_server_key) settings.curve.server_public_key = ResolveCurvePublicKey(*flags.curve_server_key);
  if (flags.curve_key) {
    settings.curve.key_file = std::filesystem::absolute(*flags.curve_key);
    settings.curve.keys.reset();
  }
}

WorkerOptions HostOptions(const CommonSettings& settings) {
  WorkerOptions options;
  options.brokers = settings.brokers;
  options.threads = settings.threads;
  options.heartbeat_interval = settings.heartbeat_interval;
  if (!settings.keyring.empty()) options.keyring = settings.keyring;
  if (!settings.instance.empty()) options.instance = settings.instance;
  options.log = settings.log;
  options.curve = settings.curve;
  options.schema_dirs.clear();
  return options;
}

void BlockShutdownSignals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
}

int RunHost(WorkerHost& host) {
  const int status = host.Run();
  if (status != 0 || host.left_threads_running()) {
    spdlog::default_logger()->flush();
    std::fflush(nullptr);
    std::_Exit(status);
  }
  return status;
}

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

}  // namespace courier::builtin
