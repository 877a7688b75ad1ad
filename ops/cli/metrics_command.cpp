#include "metrics_command.hpp"

#include <cmath>
#include <cstdio>
#include <iostream>

#include "cli_support.hpp"
#include "courier/error.hpp"
#include "courier/value.hpp"

namespace courier::cli {
namespace {

struct MetricsFlags {
  std::string window = "1m";
  std::string service;
  bool json = false;
};

// Returns: a duration in ns as "850ns", "12.3µs", "4.56ms" or "1.23s".
std::string FormatNs(double ns) {
  char buffer[32];
  if (ns < 1e3) {
    std::snprintf(buffer, sizeof buffer, "%.0fns", ns);
  } else if (ns < 1e6) {
    std::snprintf(buffer, sizeof buffer, "%.1fµs", ns / 1e3);
  } else if (ns < 1e9) {
    std::snprintf(buffer, sizeof buffer, "%.2fms", ns / 1e6);
  } else {
    std::snprintf(buffer, sizeof buffer, "%.2fs", ns / 1e9);
  }
  return buffer;
}

std::string Optional(const Value& window, std::string_view key) {
  const Value* field = window.Find(key);
  return field != nullptr && field->IsNumber() ? FormatNs(field->AsDouble()) : "-";
}

std::string Fixed(double value, int decimals) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.*f", decimals, value);
  return buffer;
}

int RunMetrics(const ClientOptions& options, const MetricsFlags& flags) {
  Client client(options);
  // A job for a service nobody serves would wait in the broker's queue until its deadline.
  if (!client.ServiceAvailable("courier.metrics")) {
    throw Error(ErrorCode::kNoSuchService, "no metrics collector is registered with the broker (start courier-metrics)");
  }
  const Value stats = client.Call("courier.metrics", Value::Object({{"op", "stats"}}));
  if (flags.json) {
    std::cout << ToJson(stats, 2) << "\n";
    return kExitOk;
  }
  std::vector<std::vector<std::string>> rows;
  for (const Value& stage : stats.At("stages").AsArray()) {
    if (!flags.service.empty() && stage.At("service").AsString() != flags.service) continue;
    const Value* window = stage.At("windows").Find(flags.window);
    if (window == nullptr) continue;
    const std::uint64_t count = window->At("count").AsUint();
    const std::uint64_t errors = window->At("errors").AsUint();
    if (count + errors == 0) continue;
    rows.push_back({stage.At("service").AsString(), stage.At("stage").AsString(), std::to_string(count),
                    Fixed(window->At("rate").AsDouble(), 1), Optional(*window, "mean_ns"), Optional(*window, "p50_ns"),
                    Optional(*window, "p90_ns"), Optional(*window, "p99_ns"),
                    count > 0 ? FormatNs(static_cast<double>(window->At("max_ns").AsUint())) : "-",
                    Fixed(window->At("error_ratio").AsDouble() * 100.0, 2)});
  }
  std::cout << RenderTable({"SERVICE", "STAGE", "COUNT", "RATE/S", "MEAN", "P50", "P90", "P99", "MAX", "ERR%"}, rows);
  std::cout << "window " << flags.window << "; " << stats.At("reporters").size() << " reporting processes; collector up "
            << stats.At("uptime_ms").AsUint() / 1000 << "s, " << stats.At("reports").AsUint() << " reports\n";
  return kExitOk;
}

}  // namespace

CommandRunner AddMetricsCommand(CLI::App& app, std::function<ClientOptions()> client_options) {
  auto flags = std::make_shared<MetricsFlags>();
  CLI::App* metrics = app.add_subcommand("metrics", "stage latencies per service from the collector (courier.metrics)");
  metrics->add_option("--window,-w", flags->window, "10s, 1m (default), 5m or all (since the collector started)")
      ->check(CLI::IsMember({"10s", "1m", "5m", "all"}));
  metrics->add_option("--service,-s", flags->service, "only this service");
  metrics->add_flag("--json", flags->json, "print the collector's whole table as JSON (every window)");
  return [=]() -> std::optional<int> {
    if (!metrics->parsed()) return std::nullopt;
    return RunMetrics(client_options(), *flags);
  };
}

}  // namespace courier::cli
