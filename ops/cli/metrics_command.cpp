#include "metrics_command.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <optional>
#include <span>
#include <string_view>

#include "cli_support.hpp"
#include "courier/error.hpp"
#include "courier/value.hpp"
#include "wire/stages.hpp"

namespace courier::cli {
namespace {

struct MetricsFlags {
  std::string window = "1m";
  std::string service;
  std::string process;
  std::string by = "stage";
  bool json = false;
};

struct Row {
  int group = 0;  // position of the design's group (wire::StageGroup; unknown stages after)
  std::string service;
  std::string process;
  std::string stage;
  std::optional<double> mean_ns;
  std::vector<std::string> cells;  // every column but GROUP, in table order
};

// Returns: whether `a` belongs above `b` in a table by stage: the collector's own order
// (service, then process client → broker → worker, then stage in pipeline order; unknown
// ones last, by name), so the table does not depend on the order a collector of another
// version sent.
bool RowBefore(const Row& a, const Row& b) {
  if (a.service != b.service) return a.service < b.service;
  const int process_a = wire::ProcessOrder(a.process);
  const int process_b = wire::ProcessOrder(b.process);
  if (process_a != process_b) return process_a < process_b;
  if (a.process != b.process) return a.process < b.process;
  const int stage_a = wire::StageOrder(a.process, a.stage);
  const int stage_b = wire::StageOrder(b.process, b.stage);
  if (stage_a != stage_b) return stage_a < stage_b;
  return a.stage < b.stage;
}

// In a table by group: the design's order of groups first, then as RowBefore.
bool GroupRowBefore(const Row& a, const Row& b) {
  if (a.group != b.group) return a.group < b.group;
  return RowBefore(a, b);
}

std::string GroupLabel(int group) {
  if (group >= static_cast<int>(wire::kStageGroups)) return "other";
  std::string name(wire::ToString(static_cast<wire::StageGroup>(group)));
  std::replace(name.begin(), name.end(), '_', ' ');
  return name;
}

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

std::optional<double> Number(const Value& window, std::string_view key) {
  const Value* field = window.Find(key);
  return field != nullptr && field->IsNumber() ? std::optional(field->AsDouble()) : std::nullopt;
}

std::string Optional(std::optional<double> ns) { return ns ? FormatNs(*ns) : "-"; }

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
  std::vector<Row> rows;
  std::vector<std::string> header = {"SERVICE", "PROCESS", "STAGE", "COUNT", "RATE/S", "MEAN",
                                     "P50",     "P90",     "P99",   "MAX",   "ERR%"};
  for (const Value& stage : stats.At("stages").AsArray()) {
    const std::string& service = stage.At("service").AsString();
    // A collector older than the "process" key merged every process's rows: shown as "-".
    const Value* process_field = stage.Find("process");
    const std::string process = process_field != nullptr && process_field->IsString() ? process_field->AsString() : "";
    if (!flags.service.empty() && service != flags.service) continue;
    if (!flags.process.empty() && process != flags.process) continue;
    const Value* window = stage.At("windows").Find(flags.window);
    if (window == nullptr) continue;
    const std::uint64_t count = window->At("count").AsUint();
    const std::uint64_t errors = window->At("errors").AsUint();
    if (count + errors == 0) continue;
    const std::string& stage_name = stage.At("stage").AsString();
    const std::optional<wire::StageGroup> group = wire::GroupOf(process, stage_name);
    const std::optional<double> mean = Number(*window, "mean_ns");
    const std::optional<double> max =
        count > 0 ? std::optional(static_cast<double>(window->At("max_ns").AsUint())) : std::nullopt;
    // A collector of another version may send p90 above max (an estimate not clamped to
    // the window's range): never shown so.
    std::array<std::optional<double>, 3> quantiles{Number(*window, "p50_ns"), Number(*window, "p90_ns"),
                                                   Number(*window, "p99_ns")};
    OrderQuantiles(quantiles, max);
    rows.push_back({group ? static_cast<int>(*group) : static_cast<int>(wire::kStageGroups), service, process,
                    stage_name, mean,
                    {service, process.empty() ? "-" : process, stage_name, std::to_string(count),
                     Fixed(window->At("rate").AsDouble(), 1), Optional(mean), Optional(quantiles[0]),
                     Optional(quantiles[1]), Optional(quantiles[2]), Optional(max),
                     Fixed(window->At("error_ratio").AsDouble() * 100.0, 2)}});
  }
  std::vector<std::vector<std::string>> cells;
  cells.reserve(rows.size());
  if (flags.by == "group") {
    // Each group's stages with their means and percentiles, then (when a service has more
    // than one stage in the group) the sum of their means: the time a job spends in it.
    std::stable_sort(rows.begin(), rows.end(), GroupRowBefore);
    header.insert(header.begin(), "GROUP");
    for (std::size_t i = 0; i < rows.size();) {
      std::size_t end = i;
      double sum = 0;
      while (end < rows.size() && rows[end].group == rows[i].group && rows[end].service == rows[i].service) {
        sum += rows[end].mean_ns.value_or(0);
        ++end;
      }
      for (std::size_t j = i; j < end; ++j) {
        rows[j].cells.insert(rows[j].cells.begin(), j == i ? GroupLabel(rows[j].group) : "");
        cells.push_back(std::move(rows[j].cells));
      }
      if (end - i > 1 && rows[i].group < static_cast<int>(wire::kStageGroups)) {
        cells.push_back({"", rows[i].service, "", "(sum of means)", "", "", FormatNs(sum), "", "", "", "", ""});
      }
      i = end;
    }
  } else {
    std::stable_sort(rows.begin(), rows.end(), RowBefore);
    for (Row& row : rows) cells.push_back(std::move(row.cells));
  }
  std::cout << RenderTable(header, cells);
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
  metrics->add_option("--process,-p", flags->process, "only this reporting process: client, broker or worker");
  metrics->add_option("--by", flags->by,
                      "stage (default: one row per service, process and stage) or group (the stages under "
                      "the design's groups: request, response, error, crypto, load balancing)")
      ->check(CLI::IsMember({"stage", "group"}));
  metrics->add_flag("--json", flags->json, "print the collector's whole table as JSON (every window)");
  return [=]() -> std::optional<int> {
    if (!metrics->parsed()) return std::nullopt;
    return RunMetrics(client_options(), *flags);
  };
}

}  // namespace courier::cli
