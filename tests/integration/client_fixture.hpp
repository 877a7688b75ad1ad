// client_fixture.hpp — what the client's integration tests share: a real courier-broker
// process on a free port, a shared in-memory keyring, and client options tuned so that
// failover and deadlines happen in test time.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "client_test_worker.hpp"
#include "courier/client.hpp"
#include "process.hpp"

namespace courier::test {

using namespace std::chrono_literals;

// One courier-broker on its own endpoint; SIGKILLed and reaped on destruction.
class BrokerProcess {
 public:
  BrokerProcess(const TempDir& dir, const std::string& name, std::string endpoint = FreeEndpoint())
      : endpoint_(std::move(endpoint)), dir_(dir.path()), name_(name) {
    Start();
  }

  void Start() {
    process_.emplace(BinaryPath("courier-broker"), std::vector<std::string>{"--bind", endpoint_},
                     dir_ / (name_ + ".log"));
    if (!process_->WaitForLog("listening on", 10s)) {
      ADD_FAILURE() << name_ << " did not start:\n" << process_->Log();
    }
  }
  void Kill() { process_->Kill(); }
  const std::string& endpoint() const { return endpoint_; }
  std::string Log() const { return process_->Log(); }

 private:
  std::string endpoint_;
  std::filesystem::path dir_;
  std::string name_;
  std::optional<ChildProcess> process_;
};

inline ClientOptions TestOptions(std::vector<std::string> brokers, std::shared_ptr<const Keyring> keyring) {
  ClientOptions options;
  options.brokers = std::move(brokers);
  options.keyring = std::move(keyring);
  options.deadline = 10s;
  options.failover_timeout = 1000ms;
  options.heartbeat_interval = 250ms;
  options.retry.initial_backoff = 20ms;
  options.retry.max_backoff = 200ms;
  return options;
}

// Returns: whether `service` got `workers` workers on every broker the client knows in time.
inline bool WaitForWorkers(Client& client, const std::string& service, std::uint64_t workers_per_broker) {
  return WaitFor(
      [&] {
        try {
          for (const BrokerAnswer& answer : client.QueryAll("services")) {
            if (!answer.result) return false;
            bool found = false;
            for (const Value& row : answer.result->AsArray()) {
              const Value* name = row.Find("name");
              const Value* workers = row.Find("workers");
              if (name != nullptr && name->IsString() && name->AsString() == service && workers != nullptr &&
                  workers->AsUint() >= workers_per_broker) {
                found = true;
              }
            }
            if (!found) return false;
          }
          return true;
        } catch (const Error&) {
          return false;
        }
      },
      10s);
}

}  // namespace courier::test
