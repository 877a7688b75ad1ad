// jobs_command.hpp — `courier job` and `courier jobs`: look up stored jobs (enqueued with
// `courier send --enqueue`) and their kept results (PROTOCOL.md §6.5, §9.1). Usage:
// ops/cli/CLI.md, "courier job", "courier jobs".
//
//   courier job ID [--wait 5] [--json]
//   courier jobs [--service S] [--state STATE] [--limit N] [--json]
//
// Both ask every configured broker (the job lives in the broker that accepted it).
// `courier job` exits 0 for a done job, 1 for a failed or dead one, 4 when no broker holds
// it (not_found), 5 while it is still queued or running after the wait, 3 if no broker
// answered.
//
// Wiring (ops/cli/main.cpp), before app.parse():
//   auto jobs = AddJobsCommands(app, [&global] { return BuildOptions(global); });
// and after it, beside the other subcommands:
//   if (auto status = jobs()) return *status;
#pragma once

#include <functional>
#include <optional>

#include <CLI/CLI.hpp>

#include "courier/client.hpp"
#include "errors_command.hpp"

namespace courier::cli {

// Adds the `job` and `jobs` subcommands to `app`; see AddErrorsCommand for the contract.
CommandRunner AddJobsCommands(CLI::App& app, std::function<ClientOptions()> client_options);

}  // namespace courier::cli
