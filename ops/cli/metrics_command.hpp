// metrics_command.hpp — `courier metrics`: the stage-latency table of the metrics
// collector (courier.metrics). Usage: ops/cli/CLI.md, "courier metrics".
//
//   courier metrics [--window 10s|1m|5m|all] [--service S] [--process P] [--by stage|group] [--json]
//
// One row per (service, process, stage), ordered by service, then process as a job meets
// them (client, broker, worker), then stage in pipeline order (PROTOCOL.md §10.2); with
// --by group, under the design's groups of stages (wire/stages.hpp), each service's group
// closed by the sum of its stages' means.
//
// Wiring (ops/cli/main.cpp), before app.parse():
//   auto metrics = AddMetricsCommand(app, [&global] { return BuildOptions(global); });
// and after it:
//   if (auto status = metrics()) return *status;
#pragma once

#include <functional>
#include <optional>

#include <CLI/CLI.hpp>

#include "courier/client.hpp"

namespace courier::cli {

using CommandRunner = std::function<std::optional<int>()>;

// Adds the `metrics` subcommand to `app`; see AddErrorsCommand for the contract.
CommandRunner AddMetricsCommand(CLI::App& app, std::function<ClientOptions()> client_options);

}  // namespace courier::cli
