// cli_app.hpp — what the `courier` subcommands share: global flags, building ClientOptions
// with the precedence flags > environment > file > defaults, and error printing.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "courier/client.hpp"
#include "courier/error.hpp"

namespace courier::cli {

struct GlobalFlags {
  std::vector<std::string> brokers;
  std::string keyring;
  std::string config;
  std::string deadline;
  std::string failover_timeout;
  std::string curve_server_key;  // the brokers' CURVE public key, or a file holding it
  std::string curve_key;         // this client's CURVE key pair file
  std::optional<std::string> log_format;  // --log-format: wins over the file's [log] format
  bool verbose = false;
};

// Returns: the options for these flags (also configures logging).
// Throws: Error(kConfig) for a bad file, variable or flag value.
ClientOptions BuildOptions(const GlobalFlags& flags);

// Prints "courier: <code>: <message>" on stderr.
void PrintError(const Error& error);

}  // namespace courier::cli
