// courier-services-cli: the `courier errors` and `courier metrics` subcommands behind the
// same global flags as the real `courier` (a subset), so the services' integration tests
// can drive them before and independently of their wiring into ops/cli/main.cpp.
#include <CLI/CLI.hpp>
#include <iostream>

#include "cli_support.hpp"
#include "courier/client.hpp"
#include "courier/error.hpp"
#include "courier/log.hpp"
#include "errors_command.hpp"
#include "metrics_command.hpp"

int main(int argc, char** argv) {
  using namespace courier;
  CLI::App app{"courier errors / courier metrics (test front end)", "courier"};
  app.require_subcommand(1);
  app.fallthrough();
  std::vector<std::string> brokers;
  std::string keyring;
  std::string deadline;
  app.add_option("-b,--broker", brokers, "broker endpoint, repeatable");
  app.add_option("-k,--keyring", keyring, "key file");
  app.add_option("-d,--deadline", deadline, "deadline per job");
  auto options = [&] {
    ConfigureLogging({.level = "warn", .format = "text", .name = "courier"});
    ClientOptions client;
    if (!brokers.empty()) client.brokers = brokers;
    if (!keyring.empty()) client.keyring_path = keyring;
    if (!deadline.empty()) {  // "20s" or milliseconds
      const bool seconds = deadline.back() == 's' && deadline.find("ms") == std::string::npos;
      const long value = std::stol(deadline);
      client.deadline = std::chrono::milliseconds(seconds ? value * 1000 : value);
    }
    return client;
  };
  auto errors = cli::AddErrorsCommand(app, options);
  auto metrics = cli::AddMetricsCommand(app, options);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    return app.exit(error) == 0 ? cli::kExitOk : cli::kExitUsage;
  }
  try {
    if (auto status = errors()) return *status;
    if (auto status = metrics()) return *status;
  } catch (const Error& error) {
    std::cerr << "courier: " << ToString(error.code()) << ": " << error.what() << "\n";
    return cli::ExitCodeFor(error.code());
  }
  return cli::kExitUsage;
}
