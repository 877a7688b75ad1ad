// courier-worker — serve Courier services from plugins.
//
//   courier-worker --plugin ./libecho.so                       # defaults: local broker, own keyring
//   courier-worker --plugin echo --broker tcp://10.0.0.5:5555 --broker tcp://10.0.0.6:5555
//   courier-worker --config /etc/courier/worker.toml           # everything else
//   courier-worker --plugin echo --curve-server-key broker.pub --curve-key worker.key  # CURVE
//
// Flags win over the file (also when SIGHUP re-reads it). Exit status: 0 after a drain
// (jobs still running at the end of the grace period are handed back to their brokers),
// 2 for a bad flag or a configuration error (--version prints the version and exits 0).
#if __has_include(<malloc.h>)
#include <malloc.h>
#endif
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <optional>

#include <spdlog/spdlog.h>

#include "builtin_service.hpp"
#include "command_line.hpp"
#include "courier/config.hpp"
#include "courier/curve.hpp"
#include "courier/error.hpp"
#include "courier/log.hpp"
#include "courier/worker.hpp"

namespace {

namespace fs = std::filesystem;

fs::path ExecutableDir() {
  std::error_code error;
  const fs::path self = fs::read_symlink("/proc/self/exe", error);
  return error ? fs::path(".") : self.parent_path();
}

struct Flags {
  std::optional<std::string> config;
  std::vector<std::string> plugins;
  std::vector<std::string> schema_dirs;
  std::vector<std::string> brokers;
  std::optional<std::string> keyring;
  std::optional<unsigned> threads;
  std::optional<std::string> log_level;
  std::optional<std::string> log_format;
  std::optional<std::string> instance;
  std::optional<std::string> curve_server_key;
  std::optional<std::string> curve_key;
  std::optional<std::string> isolation;
};

void ApplyFlags(const Flags& flags, courier::WorkerOptions& options) {
  // Schema folders: the flags' before the file's, the shipped ones (relative to this
  // binary: PREFIX/share/courier/schemas/services, or the build tree's copy) last.
  std::vector<fs::path> schema_dirs;
  for (const std::string& dir : flags.schema_dirs) schema_dirs.push_back(fs::absolute(dir));
  schema_dirs.insert(schema_dirs.end(), options.schema_dirs.begin(), options.schema_dirs.end());
  schema_dirs.push_back((ExecutableDir() / COURIER_SCHEMA_RELDIR).lexically_normal());
  options.schema_dirs = std::move(schema_dirs);
  if (!flags.brokers.empty()) options.brokers = flags.brokers;
  if (flags.keyring) options.keyring = *flags.keyring;
  if (flags.threads) options.threads = *flags.threads;
  if (flags.log_level) options.log.level = *flags.log_level;
  if (flags.log_format) options.log.format = *flags.log_format;
  if (flags.instance) options.instance = *flags.instance;
  if (flags.isolation) options.isolation = courier::ParseIsolation(*flags.isolation);
  if (flags.curve_server_key) options.curve.server_public_key = courier::ResolveCurvePublicKey(*flags.curve_server_key);
  if (flags.curve_key) {
    options.curve.key_file = *flags.curve_key;
    options.curve.keys.reset();
  }
}

}  // namespace

int main(int argc, char** argv) {
  courier::builtin::BlockShutdownSignals();  // before any thread exists
#ifdef __GLIBC__
  // Every job allocates and frees payload-sized buffers on several threads. glibc returns a
  // heap top over 128 KiB to the kernel at once, so jobs of tens of KiB would fault their
  // pages back in on every allocation: keep up to 8 MiB free per arena, and serve up to
  // 1 MiB from the heaps rather than fresh mappings (ops/bench: -15% CPU at 64 KiB).
  mallopt(M_MMAP_THRESHOLD, 1 << 20);
  mallopt(M_TRIM_THRESHOLD, 8 << 20);
#endif

  CLI::App app{"courier-worker: serves Courier services from plugins to one or more brokers"};
  courier::command_line::AddVersionFlag(app, "courier-worker");
  Flags flags;
  app.add_option("--config,-c", flags.config, "worker.toml: brokers, threads, [log], [services.NAME]")
      ->check(CLI::ExistingFile);
  app.add_option("--plugin,-p", flags.plugins,
                 "a plugin to serve: PATH.so, or NAME for lib/courier/libNAME.so (repeatable)");
  app.add_option("--schema-dir", flags.schema_dirs,
                 "a folder of payload schemas NAME.toml, searched first: before the config's schema_dirs, "
                 "PREFIX/share/courier/schemas/services and the plugin's own folder (repeatable)")
      ->check(CLI::ExistingDirectory);
  app.add_option("--broker,-b", flags.brokers, "broker endpoint (repeatable; default tcp://127.0.0.1:5555)");
  app.add_option("--keyring,-k", flags.keyring, "payload keyring file (default ~/.config/courier/keyring.toml, created if missing)");
  app.add_option("--threads,-t", flags.threads, "handler threads (default: hardware threads)")
      ->check(CLI::Range(1u, 1024u));
  app.add_option("--log-level", flags.log_level, "trace, debug, info, warn, error, critical, off")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));
  courier::command_line::AddLogFormatFlag(app, flags.log_format);
  app.add_option("--isolation", flags.isolation,
                 "where handlers run: thread (the host's threads) or process (supervised child processes: a "
                 "crash costs one job); services may override it in the config")
      ->check(CLI::IsMember({"thread", "process"}));
  app.add_option("--instance", flags.instance, "a name for this host shown by the broker (default HOST:PID)");
  app.add_option("--curve-server-key", flags.curve_server_key,
                 "turn CURVE on: the brokers' public key (Z85), or a file holding it");
  app.add_option("--curve-key", flags.curve_key, "this worker's CURVE key pair file (courier keygen --curve; mode 0600)");
  if (const auto status = courier::command_line::Parse(app, argc, argv)) return *status;

  int status = 0;
  try {
    courier::WorkerOptions options;
    if (flags.config) {
      const fs::path file = fs::absolute(*flags.config);
      options = courier::WorkerOptions::FromConfig(courier::ConfigSection::LoadFile(file), file);
    }
    // Defaults that depend on where this binary lives: bare plugin names.
    const fs::path exe_dir = ExecutableDir();
    if (options.plugin_dir.empty()) {
      const fs::path installed = exe_dir / COURIER_INSTALL_PLUGIN_RELDIR;
      options.plugin_dir = fs::is_directory(installed) ? installed : exe_dir / COURIER_BUILD_PLUGIN_RELDIR;
    }
    ApplyFlags(flags, options);
    options.overrides = [flags](courier::WorkerOptions& fresh) { ApplyFlags(flags, fresh); };
    courier::ConfigureLogging(options.log);

    courier::WorkerHost host(options);
    host.LoadConfiguredPlugins();
    for (const std::string& plugin : flags.plugins) host.LoadPlugin(plugin);
    status = courier::builtin::RunHost(host);
  } catch (const std::exception& e) {
    std::cerr << "courier-worker: " << e.what() << std::endl;
    return 2;
  }
  return status;
}
