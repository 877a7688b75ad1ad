// ClientOptions: reading client.toml, the COURIER_* environment, and validation.
#include <charconv>
#include <cstdlib>
#include <filesystem>

#include "courier/client.hpp"
#include "courier/config.hpp"
#include "courier/error.hpp"

namespace courier {
namespace {

using std::chrono::milliseconds;

constexpr milliseconds kMaxDuration = std::chrono::hours(24);

[[noreturn]] void Invalid(const std::string& what) {
  throw Error(ErrorCode::kConfig, "client options: " + what);
}

std::string Trim(std::string_view text) {
  const auto begin = text.find_first_not_of(" \t\r\n");
  if (begin == std::string_view::npos) return {};
  const auto end = text.find_last_not_of(" \t\r\n");
  return std::string(text.substr(begin, end - begin + 1));
}

}  // namespace

std::string_view ToString(OverflowPolicy policy) noexcept {
  return policy == OverflowPolicy::kBlock ? "block" : "fail_fast";
}

std::string_view ToString(BrokerHealth health) noexcept {
  switch (health) {
    case BrokerHealth::kConnecting: return "connecting";
    case BrokerHealth::kUp: return "up";
    case BrokerHealth::kDown: return "down";
  }
  return "unknown";
}

ClientOptions ClientOptions::FromConfig(const ConfigSection& section) {
  ClientOptions options;
  options.brokers = section.GetStringArray("brokers", options.brokers);
  if (options.brokers.empty()) {
    throw Error(ErrorCode::kConfig, section.Describe("brokers", "must name at least one endpoint"));
  }
  for (const auto& endpoint : options.brokers) {
    if (endpoint.empty()) throw Error(ErrorCode::kConfig, section.Describe("brokers", "empty endpoint"));
  }
  if (auto keyring = section.GetOptionalString("keyring")) {
    // Relative to the file it is written in, like every path in Courier's TOML files.
    std::filesystem::path path(*keyring);
    if (path.is_relative() && std::filesystem::is_regular_file(section.source())) {
      path = std::filesystem::path(section.source()).parent_path() / path;
    }
    options.keyring_path = path;
  }
  options.deadline = section.GetDuration("deadline", options.deadline, milliseconds(1), kMaxDuration);
  options.max_attempts = static_cast<std::uint32_t>(section.GetInt("max_attempts", options.max_attempts, 1, 1000));
  options.max_in_flight = static_cast<std::size_t>(
      section.GetInt("max_in_flight", static_cast<std::int64_t>(options.max_in_flight), 1, 10'000'000));
  options.overflow = section.GetEnum("overflow", "block", {"block", "fail_fast"}) == "block"
                         ? OverflowPolicy::kBlock
                         : OverflowPolicy::kFailFast;
  options.failover_timeout =
      section.GetDuration("failover_timeout", options.failover_timeout, milliseconds(10), kMaxDuration);
  options.heartbeat_interval =
      section.GetDuration("heartbeat_interval", options.heartbeat_interval, milliseconds(5), kMaxDuration);
  options.report = section.GetBool("report", options.report);
  if (options.heartbeat_interval >= options.failover_timeout) {
    throw Error(ErrorCode::kConfig,
                section.Describe("heartbeat_interval", "must be shorter than failover_timeout"));
  }
  const ConfigSection retry = section.Section("retry");
  options.retry.max_retries = static_cast<std::uint32_t>(retry.GetInt("max_retries", options.retry.max_retries, 0, 100));
  options.retry.initial_backoff =
      retry.GetDuration("initial_backoff", options.retry.initial_backoff, milliseconds(0), kMaxDuration);
  options.retry.max_backoff = retry.GetDuration("max_backoff", options.retry.max_backoff, milliseconds(0), kMaxDuration);
  if (options.retry.max_backoff < options.retry.initial_backoff) {
    throw Error(ErrorCode::kConfig, retry.Describe("max_backoff", "must be at least initial_backoff"));
  }
  options.retry.multiplier = retry.GetDouble("multiplier", options.retry.multiplier, 1.0, 100.0);
  options.retry.jitter = retry.GetDouble("jitter", options.retry.jitter, 0.0, 1.0);
  retry.RejectUnknownKeys();
  options.curve = CurveOptions::FromConfig(section.Section("security"));
  section.RejectUnknownKeys();
  return options;
}

ClientOptions& ClientOptions::ApplyEnvironment() {
  return ApplyEnvironment([](std::string_view name) -> std::optional<std::string> {
    const char* value = std::getenv(std::string(name).c_str());
    if (value == nullptr) return std::nullopt;
    return std::string(value);
  });
}

ClientOptions& ClientOptions::ApplyEnvironment(
    const std::function<std::optional<std::string>(std::string_view name)>& lookup) {
  if (const auto value = lookup("COURIER_BROKERS"); value && !Trim(*value).empty()) {
    std::vector<std::string> endpoints;
    std::string_view rest = *value;
    while (true) {
      const auto comma = rest.find(',');
      std::string endpoint = Trim(rest.substr(0, comma));
      if (!endpoint.empty()) endpoints.push_back(std::move(endpoint));
      if (comma == std::string_view::npos) break;
      rest.remove_prefix(comma + 1);
    }
    brokers = std::move(endpoints);
  }
  if (const auto value = lookup("COURIER_KEYRING"); value && !Trim(*value).empty()) {
    keyring_path = Trim(*value);
  }
  if (const auto value = lookup("COURIER_DEADLINE_MS"); value && !Trim(*value).empty()) {
    const std::string text = Trim(*value);
    std::int64_t ms = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), ms);
    if (ec != std::errc{} || end != text.data() + text.size() || ms < 1 || ms > kMaxDuration.count()) {
      throw Error(ErrorCode::kConfig, "COURIER_DEADLINE_MS: expected milliseconds in [1, " +
                                          std::to_string(kMaxDuration.count()) + "], got \"" + text + "\"");
    }
    deadline = milliseconds(ms);
  }
  if (const auto value = lookup("COURIER_CURVE_SERVER_KEY"); value && !Trim(*value).empty()) {
    curve.server_public_key = ResolveCurvePublicKey(Trim(*value));
  }
  if (const auto value = lookup("COURIER_CURVE_KEY"); value && !Trim(*value).empty()) {
    curve.key_file = Trim(*value);
    curve.keys.reset();
  }
  return *this;
}

void ClientOptions::Validate() const {
  if (brokers.empty()) Invalid("brokers: at least one endpoint is needed");
  for (const auto& endpoint : brokers) {
    if (endpoint.empty()) Invalid("brokers: empty endpoint");
  }
  if (deadline <= milliseconds(0) || deadline > kMaxDuration) Invalid("deadline must be in (0, 24h]");
  if (max_attempts < 1) Invalid("max_attempts must be at least 1");
  if (max_in_flight < 1) Invalid("max_in_flight must be at least 1");
  if (failover_timeout <= milliseconds(0)) Invalid("failover_timeout must be positive");
  if (heartbeat_interval <= milliseconds(0) || heartbeat_interval >= failover_timeout) {
    Invalid("heartbeat_interval must be positive and shorter than failover_timeout");
  }
  if (retry.initial_backoff < milliseconds(0) || retry.max_backoff < retry.initial_backoff) {
    Invalid("retry: need 0 <= initial_backoff <= max_backoff");
  }
  if (!(retry.multiplier >= 1.0)) Invalid("retry.multiplier must be at least 1");
  if (!(retry.jitter >= 0.0 && retry.jitter <= 1.0)) Invalid("retry.jitter must be in [0, 1]");
  if (curve.enabled() && !IsCurveKey(curve.server_public_key)) {
    Invalid("curve.server_public_key must be the broker's 40-character Z85 public key");
  }
  if (curve.enabled() && !curve.keys && curve.key_file.empty()) {
    Invalid("CURVE is on (a server key is set) but there is no key pair: set curve.key_file "
            "([security] key_file, --curve-key or COURIER_CURVE_KEY)");
  }
  if (!curve.enabled() && (curve.keys || !curve.key_file.empty())) {
    Invalid("a CURVE key pair is set but not the broker's public key: set curve.server_public_key "
            "([security] server_key, --curve-server-key or COURIER_CURVE_SERVER_KEY)");
  }
}

}  // namespace courier
