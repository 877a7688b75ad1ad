#include "broker_config.hpp"

#include <string>

#include "courier/error.hpp"
#include "prometheus/http_address.hpp"

namespace courier::broker {
namespace {

Strategy ParseStrategy(std::string_view name) {
  if (name == "round_robin") return Strategy::kRoundRobin;
  if (name == "random") return Strategy::kRandom;
  if (name == "weighted") return Strategy::kWeighted;
  return Strategy::kLeastLoaded;
}

ServicePolicy ReadPolicy(const ConfigSection& section, const ServicePolicy& fallback) {
  ServicePolicy policy;
  policy.queue_limit = static_cast<std::size_t>(
      section.GetInt("queue_limit", static_cast<std::int64_t>(fallback.queue_limit), 1, 100'000'000));
  policy.strategy = ParseStrategy(section.GetEnum(
      "strategy", ToString(fallback.strategy), {"least_loaded", "round_robin", "random", "weighted"}));
  policy.max_queued_bytes = static_cast<std::size_t>(section.GetInt(
      "max_queued_bytes", static_cast<std::int64_t>(fallback.max_queued_bytes), 1 << 20, 1LL << 40));
  policy.max_crashes = static_cast<std::uint32_t>(section.GetInt("max_crashes", fallback.max_crashes, 1, 100));
  const std::string durability =
      section.GetEnum("durability", ToString(fallback.durability), {"fsync", "write", "memory"});
  policy.durability = durability == "memory" ? Durability::kMemory
                      : durability == "write" ? Durability::kWrite
                                              : Durability::kFsync;
  policy.result_ttl = section.GetDuration("result_ttl", fallback.result_ttl, std::chrono::milliseconds(1000),
                                          std::chrono::milliseconds(30LL * 24 * 3600 * 1000));
  section.RejectUnknownKeys();
  return policy;
}

}  // namespace

std::string_view ToString(Strategy strategy) {
  switch (strategy) {
    case Strategy::kRoundRobin: return "round_robin";
    case Strategy::kRandom: return "random";
    case Strategy::kWeighted: return "weighted";
    case Strategy::kLeastLoaded: break;
  }
  return "least_loaded";
}

BrokerConfig BrokerConfig::Read(const ConfigSection& section, const std::filesystem::path& file) {
  using std::chrono::milliseconds;
  BrokerConfig config;
  config.bind = section.GetStringArray("bind", config.bind);
  config.http = section.GetString("http", "");
  if (!config.http.empty()) {
    try {
      prometheus::ParseHttpAddress(config.http);
    } catch (const Error& error) {
      throw Error(ErrorCode::kConfig, section.Describe("http", error.what()));
    }
  }
  if (config.bind.empty()) throw Error(ErrorCode::kConfig, section.Describe("bind", "needs at least one endpoint"));
  config.heartbeat_interval = section.GetDuration("heartbeat_interval", config.heartbeat_interval,
                                                  milliseconds(10), milliseconds(60000));
  config.heartbeat_liveness = static_cast<std::uint32_t>(
      section.GetInt("heartbeat_liveness", config.heartbeat_liveness, 1, 100));
  config.max_message_bytes = static_cast<std::size_t>(section.GetInt(
      "max_message_bytes", static_cast<std::int64_t>(config.max_message_bytes), 1024, 1LL << 30));
  config.mdp_deadline = section.GetDuration("mdp_deadline", config.mdp_deadline, milliseconds(1),
                                            milliseconds(24LL * 3600 * 1000));
  config.max_attempts = static_cast<std::uint32_t>(section.GetInt("max_attempts", config.max_attempts, 1, 100));
  config.dead_letter_buffer = static_cast<std::size_t>(section.GetInt(
      "dead_letter_buffer", static_cast<std::int64_t>(config.dead_letter_buffer), 0, 10'000'000));
  config.socket_hwm = static_cast<int>(section.GetInt("socket_hwm", config.socket_hwm, 1000, 10'000'000));
  config.send_hwm = static_cast<int>(section.GetInt("send_hwm", config.send_hwm, 100, 10'000'000));
  config.max_client_bytes = static_cast<std::size_t>(section.GetInt(
      "max_client_bytes", static_cast<std::int64_t>(config.max_client_bytes), 0, 1LL << 40));
  config.drain_timeout = section.GetDuration("drain_timeout", config.drain_timeout, milliseconds(0),
                                             milliseconds(600000));
  config.max_total_queued_bytes = static_cast<std::size_t>(section.GetInt(
      "max_total_queued_bytes", static_cast<std::int64_t>(config.max_total_queued_bytes), 1 << 20, 1LL << 42));
  config.max_deadline = section.GetDuration("max_deadline", config.max_deadline, milliseconds(1000),
                                            milliseconds(30LL * 24 * 3600 * 1000));
  config.max_connections = static_cast<std::size_t>(section.GetInt(
      "max_connections", static_cast<std::int64_t>(config.max_connections), 1, 1'000'000));
  config.service_grace = section.GetDuration("service_grace", config.service_grace, milliseconds(100),
                                             milliseconds(3600000));
  config.unknown_service_grace = section.GetDuration("unknown_service_grace", config.UnknownServiceGrace(),
                                                     milliseconds(100), milliseconds(3600000));
  config.new_services_per_peer = static_cast<std::uint32_t>(
      section.GetInt("new_services_per_peer", config.new_services_per_peer, 1, 10000));
  config.new_services_window = section.GetDuration("new_services_window", config.new_services_window,
                                                   milliseconds(100), milliseconds(3600000));
  config.data_dir = section.GetString("data_dir", "");
  if (!config.data_dir.empty() && !config.data_dir.is_absolute() && !file.empty()) {
    config.data_dir = file.parent_path() / config.data_dir;
  }
  config.store_max_bytes = static_cast<std::uint64_t>(section.GetInt(
      "store_max_bytes", static_cast<std::int64_t>(config.store_max_bytes), 64 * 1024, 1LL << 50));
  config.defaults = ReadPolicy(section.Section("defaults"), config.defaults);
  const ConfigSection services = section.Section("services");
  for (const auto& name : services.Keys()) {
    config.services.emplace(name, ReadPolicy(services.Section(name), config.defaults));
  }
  services.RejectUnknownKeys();
  config.log = ReadLogOptions(section.Section("log"), "broker");
  const ConfigSection security = section.Section("security");
  const auto resolve = [&](const std::string& path) {
    if (path.empty() || std::filesystem::path(path).is_absolute() || file.empty()) return path;
    return (file.parent_path() / path).string();
  };
  config.security.curve = security.GetBool("curve", false);
  config.security.key_file = resolve(security.GetString("key_file", ""));
  config.security.clients_file = resolve(security.GetString("clients", ""));
  config.security.workers_file = resolve(security.GetString("workers", ""));
  security.RejectUnknownKeys();
  if (config.security.curve && config.security.key_file.empty()) {
    throw Error(ErrorCode::kConfig, security.Describe("key_file", "is required when curve = true"));
  }
  section.RejectUnknownKeys();
  return config;
}

ServicePolicy BrokerConfig::PolicyFor(std::string_view service) const {
  const auto found = services.find(service);
  if (found != services.end()) return found->second;
  ServicePolicy policy = defaults;
  // Stage timings are throw-away: a lost report only widens the next one's interval.
  if (service == kMetricsServiceName) policy.durability = Durability::kMemory;
  return policy;
}

}  // namespace courier::broker
