// errors_command.hpp — `courier errors`: list, show and replay what the error sink
// (courier.errors) stored. Usage: ops/cli/CLI.md, "courier errors".
//
//   courier errors list [--service S] [--since 1h] [--code C] [--limit N] [--groups] [--json]
//   courier errors show ID [--json]
//   courier errors replay ID [--wait 10s] [--fresh] [--json]
//
// Wiring (ops/cli/main.cpp), before app.parse():
//   auto errors = AddErrorsCommand(app, [&global] { return BuildOptions(global); });
// and after it, beside the other subcommands (inside the try that maps courier::Error to
// exit codes):
//   if (auto status = errors()) return *status;
#pragma once

#include <functional>
#include <optional>

#include <CLI/CLI.hpp>

#include "courier/client.hpp"

namespace courier::cli {

// Called after parsing. Returns: std::nullopt if the command was not chosen, else its exit
// code. Throws: courier::Error (the caller maps it to an exit code).
using CommandRunner = std::function<std::optional<int>()>;

// Adds the `errors` subcommand (with list, show, replay) to `app`. `client_options` is
// called once, after parsing, for the brokers, keyring and deadline to use.
CommandRunner AddErrorsCommand(CLI::App& app, std::function<ClientOptions()> client_options);

}  // namespace courier::cli
