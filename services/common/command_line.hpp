// command_line.hpp — the flags every Courier executable shares and how a bad command line
// ends: courier, courier-broker, courier-worker, courier-error-sink, courier-metrics.
//
//   CLI::App app{"courier-broker: ..."};
//   courier::command_line::AddVersionFlag(app, "courier-broker");
//   courier::command_line::AddLogFormatFlag(app, log_format);
//   if (const auto status = courier::command_line::Parse(app, argc, argv)) return *status;
//
// Exit status of a parse: 0 after --help or --version (printed on stdout, as help2man
// expects), 2 for any bad flag or value (usage on stderr). CLI11's own codes (105, 109, ...)
// are never used: scripts and systemd see one "usage error" status.
#pragma once

#include <CLI/CLI.hpp>
#include <optional>
#include <string>
#include <string_view>

namespace courier::command_line {

inline constexpr int kExitUsage = 2;

// Adds --version: prints "NAME VERSION" (Courier's version) and exits 0.
void AddVersionFlag(CLI::App& app, std::string_view name);

// Adds --log-format text|json; `format` stays unset when the flag is not given.
void AddLogFormatFlag(CLI::App& app, std::optional<std::string>& format);

// Parses argv. Returns: nothing to go on with; otherwise the status to exit with (0 after
// --help/--version, kExitUsage after a parse error, which has been printed).
std::optional<int> Parse(CLI::App& app, int argc, char** argv);

// Turns a parse error into the exit status above (printing what CLI11 prints); for
// executables that call app.parse themselves.
int ExitStatus(CLI::App& app, const CLI::ParseError& error);

}  // namespace courier::command_line
