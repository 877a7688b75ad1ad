#include "command_line.hpp"

#include "courier/version.hpp"

namespace courier::command_line {

void AddVersionFlag(CLI::App& app, std::string_view name) {
  app.set_version_flag("--version", std::string(name) + " " + COURIER_VERSION_STRING,
                       "print the name and version, then exit");
}

void AddLogFormatFlag(CLI::App& app, std::optional<std::string>& format) {
  app.add_option("--log-format", format, "log lines as text or json (one object per line)")
      ->check(CLI::IsMember({"text", "json"}));
}

std::optional<int> Parse(CLI::App& app, int argc, char** argv) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    return ExitStatus(app, error);
  }
  return std::nullopt;
}

int ExitStatus(CLI::App& app, const CLI::ParseError& error) {
  return app.exit(error) == 0 ? 0 : kExitUsage;
}

}  // namespace courier::command_line
