#include <zmq.h>

#include "courier/config.hpp"
#include "courier/error.hpp"
#include "courier/worker.hpp"
#include "frames.hpp"

namespace courier {
namespace {

using std::chrono::milliseconds;

std::filesystem::path Resolve(const std::filesystem::path& base, const std::string& path) {
  const std::filesystem::path p(path);
  if (p.empty() || p.is_absolute() || base.empty()) return p;
  return base / p;
}

}  // namespace

Isolation ParseIsolation(std::string_view name) {
  if (name == "thread") return Isolation::kThread;
  if (name == "process") return Isolation::kProcess;
  throw Error(ErrorCode::kConfig, "isolation must be \"thread\" or \"process\", not \"" + std::string(name) + "\"");
}

std::string_view ToString(Isolation isolation) noexcept {
  return isolation == Isolation::kProcess ? "process" : "thread";
}

ServiceSettings ServiceSettings::Read(const ConfigSection& section) {
  ServiceSettings settings;
  settings.plugin = section.GetString("plugin", "");
  settings.capacity = static_cast<std::uint32_t>(
      section.GetInt("capacity", 0, 0, detail::kMaxCapacity));
  settings.weight = static_cast<std::uint32_t>(section.GetInt("weight", 1, 1, detail::kMaxWeight));
  settings.allow_unsealed = section.GetBool("allow_unsealed", false);
  settings.schema = section.GetString("schema", "");
  settings.dedup_window = section.GetDuration("dedup_window", settings.dedup_window,
                                              std::chrono::seconds(1), std::chrono::hours(24));
  settings.dedup_entries = static_cast<std::size_t>(
      section.GetInt("dedup_entries", static_cast<std::int64_t>(settings.dedup_entries), 1, 10'000'000));
  if (section.Has("verify_replies")) settings.verify_replies = section.GetBool("verify_replies", true);
  if (section.Has("isolation")) settings.isolation = ParseIsolation(section.GetEnum("isolation", "thread", {"thread", "process"}));
  return settings;
}

WorkerOptions WorkerOptions::FromConfig(const ConfigSection& root, const std::filesystem::path& file) {
  WorkerOptions options;
  const std::filesystem::path base = file.parent_path();
  options.config_file = file;
  options.brokers = root.GetStringArray("brokers", options.brokers);
  if (options.brokers.empty()) {
    throw Error(ErrorCode::kConfig, root.Describe("brokers", "list at least one broker endpoint"));
  }
  for (const std::string& endpoint : options.brokers) {
    if (endpoint.find("://") == std::string::npos) {
      throw Error(ErrorCode::kConfig,
                  root.Describe("brokers", "\"" + endpoint + "\" is not a ZeroMQ endpoint (tcp://HOST:PORT)"));
    }
  }
  if (const auto keyring = root.GetOptionalString("keyring")) options.keyring = Resolve(base, *keyring);
  options.threads = static_cast<unsigned>(root.GetInt("threads", 0, 0, 1024));
  options.heartbeat_interval = root.GetDuration("heartbeat_interval", options.heartbeat_interval,
                                                milliseconds(10), std::chrono::minutes(5));
  options.heartbeat_liveness = static_cast<std::uint32_t>(
      root.GetInt("heartbeat_liveness", options.heartbeat_liveness, 1, 100));
  options.reconnect_initial = root.GetDuration("reconnect_initial", options.reconnect_initial,
                                               milliseconds(1), std::chrono::minutes(1));
  options.reconnect_max = root.GetDuration("reconnect_max", options.reconnect_max,
                                           milliseconds(1), std::chrono::minutes(10));
  if (options.reconnect_max < options.reconnect_initial) {
    throw Error(ErrorCode::kConfig, root.Describe("reconnect_max", "must not be below reconnect_initial"));
  }
  options.grace_period = root.GetDuration("grace_period", options.grace_period, milliseconds(0),
                                          std::chrono::hours(1));
  options.isolation = ParseIsolation(root.GetEnum("isolation", "thread", {"thread", "process"}));
  options.max_memory = root.GetBytes("max_memory", 0, 0, std::uint64_t{1} << 50);
  if (options.max_memory != 0 && options.max_memory < (std::uint64_t{16} << 20)) {
    throw Error(ErrorCode::kConfig, root.Describe("max_memory", "at least 16MiB (a child needs room to start), or 0 for no limit"));
  }
  options.max_jobs_per_child = static_cast<std::uint64_t>(root.GetInt("max_jobs_per_child", 0, 0, INT64_MAX));
  options.kill_after = root.GetDuration("kill_after", options.kill_after, milliseconds(0), std::chrono::hours(24));
  if (root.Has("schema_dirs")) {
    options.schema_dirs.clear();
    for (const std::string& dir : root.GetStringArray("schema_dirs", {})) {
      options.schema_dirs.push_back(Resolve(base, dir));
    }
  }
  options.verify_replies = root.GetBool("verify_replies", options.verify_replies);
  if (const auto dir = root.GetOptionalString("plugin_dir")) options.plugin_dir = Resolve(base, *dir);
  options.instance = root.GetString("instance", "");
  options.report_errors = root.GetBool("report", options.report_errors);
  options.report_metrics = options.report_errors;
  if (options.instance.size() > 255) {
    throw Error(ErrorCode::kConfig, root.Describe("instance", "at most 255 bytes"));
  }
  options.max_message_bytes = static_cast<std::size_t>(
      root.GetInt("max_message_bytes", static_cast<std::int64_t>(options.max_message_bytes), 1024,
                  std::int64_t{1} << 30));
  options.log = ReadLogOptions(root.Section("log"), "worker");
  options.curve = CurveOptions::FromConfig(root.Section("security"));
  options.services = root.Section("services");
  root.RejectUnknownKeys();
  return options;
}

}  // namespace courier
