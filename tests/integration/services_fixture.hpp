// services_fixture.hpp — a real courier-broker plus, on demand, courier-error-sink,
// courier-metrics and the `courier errors` / `courier metrics` commands, each with its
// own endpoints, temporary state and keyring (XDG_CONFIG_HOME / XDG_STATE_HOME in a
// temporary directory). Heartbeats are 200 ms everywhere so lost workers are noticed fast.
#pragma once

#include <gtest/gtest.h>

#include <sys/wait.h>

#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "courier/job.hpp"
#include "courier/reporting.hpp"
#include "courier/value.hpp"
#include "frames.hpp"
#include "process.hpp"
#include "raw_peer.hpp"
#include "reporting/service_caller.hpp"

namespace courier::test {

class ServicesFixture : public ::testing::Test {
 protected:
  ServicesFixture() {
    endpoint_ = FreeEndpoint();
    env_ = {"XDG_CONFIG_HOME=" + (dir_.path() / "config").string(),
            "XDG_STATE_HOME=" + (dir_.path() / "state").string()};
  }

  void TearDown() override {
    if (!HasFailure()) return;
    for (const auto& [name, process] : processes_) {
      if (process) std::cerr << "--- " << name << " log ---\n" << process->Log() << "\n";
    }
  }

  void StartBroker(const std::string& extra = {}) {
    const auto config = dir_.Write("broker.toml", "bind = [\"" + endpoint_ + "\"]\nheartbeat_interval = \"200ms\"\n" + extra);
    Start("broker", BinaryPath("courier-broker"), {"--config", config.string()});
    ASSERT_TRUE(processes_["broker"]->WaitForLog("listening on", std::chrono::seconds(10))) << Log("broker");
  }

  // Starts the error sink on `db` (default: state/errors.db) and waits until it serves.
  void StartSink(const std::string& db = {}) {
    const std::string path = db.empty() ? (dir_.path() / "state" / "errors.db").string() : db;
    const auto config = dir_.Write("error-sink.toml", "brokers = [\"" + endpoint_ + "\"]\ndb = \"" + path +
                                                          "\"\nheartbeat_interval = \"200ms\"\nreplay_wait = \"5s\"\n");
    Start("sink", BinaryPath("courier-error-sink"), {"--config", config.string()});
    ASSERT_TRUE(WaitForService("courier.errors")) << Log("sink");
  }

  // Starts the collector with HTTP on `http` ("" = off) and waits until it serves.
  void StartMetrics(const std::string& http) {
    const auto config = dir_.Write("metrics.toml", "brokers = [\"" + endpoint_ + "\"]\nhttp = \"" + http +
                                                       "\"\nheartbeat_interval = \"200ms\"\n");
    Start("metrics", BinaryPath("courier-metrics"), {"--config", config.string()});
    ASSERT_TRUE(WaitForService("courier.metrics")) << Log("metrics");
  }

  ChildProcess& Start(const std::string& name, const std::filesystem::path& binary, std::vector<std::string> args) {
    processes_[name] = std::make_unique<ChildProcess>(binary, std::move(args), dir_.path() / (name + ".log"), env_);
    return *processes_[name];
  }
  ChildProcess& Process(const std::string& name) { return *processes_.at(name); }
  void Kill(const std::string& name) {
    if (processes_[name]) processes_[name]->Kill();
  }
  std::string Log(const std::string& name) { return processes_[name] ? processes_[name]->Log() : ""; }

  // Waits until mmi.service says some worker serves `service`.
  bool WaitForService(const std::string& service, std::chrono::milliseconds timeout = std::chrono::seconds(15)) {
    RawPeer client(context_, endpoint_);
    return WaitFor(
        [&] {
          client.Send({"", "MDPC01", "mmi.service", service});
          const auto reply = client.Receive(std::chrono::milliseconds(500));
          return reply && reply->back() == "200";
        },
        timeout);
  }

  struct CliResult {
    int status = -1;
    std::string output;  // stdout and stderr
  };
  // Runs `courier ARGS` (the services' commands) against this broker and waits for it.
  CliResult Cli(std::vector<std::string> args, std::chrono::milliseconds timeout = std::chrono::seconds(60)) {
    args.insert(args.begin(), {"--broker", endpoint_, "--deadline", "20s"});
    const std::string name = "cli-" + std::to_string(++cli_runs_);
    ChildProcess cli(COURIER_SERVICES_CLI, args, dir_.path() / (name + ".log"), env_);
    CliResult result;
    const int status = cli.Wait(timeout);
    result.status = status >= 0 && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    result.output = cli.Log();
    return result;
  }
  // Returns: the JSON object the command printed (from the first line that starts with
  // '{'; log lines on stderr start with '['), decoded.
  static Value JsonOf(const CliResult& result) {
    const std::string& out = result.output;
    std::size_t brace = out.starts_with("{") ? 0 : out.find("\n{");
    if (brace == std::string::npos) throw std::runtime_error("no JSON in: " + out);
    if (brace != 0) ++brace;
    const std::size_t end = out.find("\n}", brace);
    return FromJson(out.substr(brace, end == std::string::npos ? std::string::npos : end + 2 - brace));
  }

  // Fast settings for in-test reporters.
  ReporterOptions Reporter(const std::string& endpoint = {}) const {
    ReporterOptions options;
    options.brokers = {endpoint.empty() ? endpoint_ : endpoint};
    options.flush_interval = std::chrono::milliseconds(20);
    options.metrics_interval = std::chrono::milliseconds(200);
    options.accept_timeout = std::chrono::milliseconds(300);
    options.retry_initial = std::chrono::milliseconds(50);
    options.retry_max = std::chrono::milliseconds(300);
    options.stop_timeout = std::chrono::milliseconds(2000);
    return options;
  }

  // Asks a service directly, sealed with the keyring the services made (their
  // XDG_CONFIG_HOME), as `courier errors` does through the client SDK: the error sink
  // answers its queries only sealed.
  Value Ask(const std::string& service, const Value& request) {
    detail::CallerOptions options;
    options.brokers = {endpoint_};
    const std::filesystem::path keyring = dir_.path() / "config" / "courier" / "keyring.toml";
    if (std::filesystem::exists(keyring)) options.keyring = std::make_shared<const Keyring>(Keyring::Load(keyring));
    detail::ServiceCaller caller(options);
    return caller.Call(service, request, std::chrono::seconds(10));
  }

  TempDir dir_;
  zmq::context_t context_{1};
  std::string endpoint_;
  std::vector<std::string> env_;
  std::map<std::string, std::unique_ptr<ChildProcess>> processes_;
  int cli_runs_ = 0;
};

}  // namespace courier::test
