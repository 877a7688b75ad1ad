// build/bin/courier as a user runs it, against a real broker and a raw-frame test worker:
// JSON round trips of every type, the load summary, tables, keygen and exit codes.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <fstream>
#include <sstream>
#include <nlohmann/json.hpp>

#include "client_fixture.hpp"

namespace courier::test {
namespace {

struct CliRun {
  int exit_code = -1;
  std::string output;  // stdout and stderr, interleaved
};

class ClientCliTest : public ::testing::Test {
 protected:
  ClientCliTest() : broker_(dir_, "broker") {
    key_file_ = dir_.path() / "keyring.toml";
    keyring_->Save(key_file_);
  }

  // Runs `courier args...` (with this test's broker and key file unless `bare`) and waits.
  CliRun Courier(std::vector<std::string> args, bool bare = false, std::vector<std::string> env = {}) {
    if (!bare) {
      args.insert(args.begin(), {"--broker", broker_.endpoint(), "--keyring", key_file_.string()});
    }
    const auto log = dir_.path() / ("courier-" + std::to_string(++runs_) + ".log");
    // A private config home: nothing here may touch the user's ~/.config/courier.
    env.push_back("XDG_CONFIG_HOME=" + (dir_.path() / "config").string());
    env.push_back("HOME=" + dir_.path().string());
    ChildProcess process(BinaryPath("courier"), args, log, env);
    CliRun run;
    const int status = process.Wait(60s);
    EXPECT_NE(status, -1) << "courier did not exit: " << process.Log();
    run.exit_code = status >= 0 && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    run.output = process.Log();
    return run;
  }

  // Starts `courier args...` (with this test's broker and key file) without waiting.
  ChildProcess StartCourier(std::vector<std::string> args) {
    args.insert(args.begin(), {"--broker", broker_.endpoint(), "--keyring", key_file_.string()});
    const auto log = dir_.path() / ("courier-" + std::to_string(++runs_) + ".log");
    return ChildProcess(BinaryPath("courier"), args, log,
                        {"XDG_CONFIG_HOME=" + (dir_.path() / "config").string(), "HOME=" + dir_.path().string()});
  }

  // Returns: the last line of `output` that is a JSON object (stderr lines may come between).
  static nlohmann::json LastJsonLine(const std::string& output) {
    std::size_t end = output.size();
    while (end > 0) {
      const std::size_t start = output.rfind('\n', end - 1);
      const std::size_t from = start == std::string::npos ? 0 : start + 1;
      const std::string line = output.substr(from, end - from);
      if (line.starts_with("{")) return nlohmann::json::parse(line);
      if (from == 0) break;
      end = from - 1;
    }
    ADD_FAILURE() << "no JSON line in:\n" << output;
    return nlohmann::json::object();
  }

  // Returns: how many jobs of `service` the broker has seen answered.
  static std::uint64_t Replied(Client& client, const std::string& service) {
    try {
      for (const ServiceInfo& info : client.Services()) {
        if (info.name == service) return info.replied;
      }
    } catch (const Error&) {
    }
    return 0;
  }

  void StartWorker(const std::string& service, Behaviour behaviour) {
    workers_.push_back(std::make_unique<TestWorker>(std::vector<std::string>{broker_.endpoint()}, service, keyring_,
                                                    std::move(behaviour)));
    Client client(TestOptions({broker_.endpoint()}, keyring_));
    ASSERT_TRUE(WaitForWorkers(client, service, 1));
  }

  TempDir dir_;
  std::shared_ptr<Keyring> keyring_ = std::make_shared<Keyring>(Keyring::Generate());
  std::filesystem::path key_file_;
  BrokerProcess broker_;
  std::vector<std::unique_ptr<TestWorker>> workers_;
  int runs_ = 0;
};

TEST_F(ClientCliTest, JsonRoundTripOfEveryType) {
  StartWorker("echo", Echo());
  const std::string request =
      R"({"string":"h\u00e9llo \"q\"","int":-42,"big":18446744073709551615,"min":-9223372036854775808,)"
      R"("float":1.5,"tiny":2.5e-300,"true":true,"false":false,"null":null,"array":[1,"two",[],{}],)"
      R"("map":{"nested":{"k":[null]}},"binary":{"$bin":"AAEC/w=="},"empty_bin":{"$bin":""}})";
  const CliRun run = Courier({"send", "echo", request});
  ASSERT_EQ(run.exit_code, 0) << run.output;
  const auto sent = nlohmann::ordered_json::parse(request);
  const auto got = nlohmann::ordered_json::parse(run.output);
  EXPECT_EQ(got, sent) << run.output;
  EXPECT_NE(run.output.find("18446744073709551615"), std::string::npos);
  EXPECT_NE(run.output.find("-9223372036854775808"), std::string::npos);
  EXPECT_NE(run.output.find(R"({"$bin":"AAEC/w=="})"), std::string::npos) << run.output;

  for (const std::string scalar : {"\"text\"", "0", "-1", "3.25", "true", "false", "null", "[]", "{}"}) {
    const CliRun one = Courier({"send", "echo", scalar});
    ASSERT_EQ(one.exit_code, 0) << one.output;
    EXPECT_EQ(nlohmann::json::parse(one.output), nlohmann::json::parse(scalar)) << one.output;
  }
}

TEST_F(ClientCliTest, AnEmptyStdinIsAUsageError) {
  StartWorker("echo", Echo());
  // ChildProcess gives the child /dev/null as stdin: "-" reads an empty document, not JSON.
  const CliRun run = Courier({"send", "echo", "-"});
  EXPECT_EQ(run.exit_code, 2) << run.output;
}

TEST_F(ClientCliTest, ExitCodes) {
  StartWorker("echo", Echo());
  StartWorker("fails", [](const WorkerJob&) { return WorkerAction::Fail(ErrorCode::kHandlerError, "kaput"); });

  EXPECT_EQ(Courier({"send", "echo", "{}"}).exit_code, 0);

  const CliRun job_error = Courier({"send", "fails", "{}"});
  EXPECT_EQ(job_error.exit_code, 1) << job_error.output;
  EXPECT_NE(job_error.output.find("handler_error"), std::string::npos) << job_error.output;
  EXPECT_NE(job_error.output.find("kaput"), std::string::npos) << job_error.output;

  EXPECT_EQ(Courier({"send"}).exit_code, 2);                        // missing service
  EXPECT_EQ(Courier({"send", "echo", "{nope"}).exit_code, 2);       // not JSON
  EXPECT_EQ(Courier({"frobnicate"}).exit_code, 2);                  // unknown subcommand
  EXPECT_EQ(Courier({"send", "echo", "{}", "--count", "0"}).exit_code, 2);
  EXPECT_EQ(Courier({"send", "echo", "{}", "--deadline", "soon"}).exit_code, 2);
  EXPECT_EQ(Courier({}, true).exit_code, 2);                        // no subcommand
  EXPECT_EQ(Courier({"--help"}, true).exit_code, 0);

  const std::string nowhere = FreeEndpoint();
  const CliRun down = Courier({"--broker", nowhere, "--keyring", key_file_.string(), "--failover-timeout", "300ms",
                            "send", "echo", "{}"},
                           true);
  EXPECT_EQ(down.exit_code, 3) << down.output;
  EXPECT_NE(down.output.find("unavailable"), std::string::npos) << down.output;
  EXPECT_EQ(Courier({"--broker", nowhere, "--keyring", key_file_.string(), "--failover-timeout", "300ms", "services"},
                    true)
                .exit_code,
            3);
  EXPECT_EQ(Courier({"--broker", nowhere, "--keyring", key_file_.string(), "--failover-timeout", "300ms", "ping"},
                    true)
                .exit_code,
            3);
}

// A misspelt service: answered no_such_service once the broker's start-up grace (3
// heartbeats, 7.5 s by default) is over, not after the 30 s deadline, with the nearest
// served name; past the grace, at once.
TEST_F(ClientCliTest, AMisspeltServiceIsAnsweredNoSuchServiceWithTheNearestName) {
  StartWorker("echo", Echo());
  const auto started = std::chrono::steady_clock::now();
  const CliRun first = Courier({"send", "ecoh", "{}"});
  EXPECT_LT(std::chrono::steady_clock::now() - started, 20s) << "waited for the deadline";
  EXPECT_EQ(first.exit_code, 1) << first.output;
  EXPECT_NE(first.output.find("no_such_service"), std::string::npos) << first.output;
  EXPECT_NE(first.output.find("did you mean 'echo'?"), std::string::npos) << first.output;

  const auto again = std::chrono::steady_clock::now();
  const CliRun second = Courier({"send", "nosuch", "{}", "--send"});
  EXPECT_LT(std::chrono::steady_clock::now() - again, 5s) << "past the grace the answer comes at once";
  EXPECT_EQ(second.exit_code, 1) << second.output;
  EXPECT_NE(second.output.find("no_such_service"), std::string::npos) << second.output;
  EXPECT_EQ(second.output.find("did you mean"), std::string::npos) << second.output;
  EXPECT_EQ(Courier({"send", "echo", "{}"}).exit_code, 0);
}

TEST_F(ClientCliTest, ManyJobsPrintAJsonSummary) {
  StartWorker("echo", Echo());
  const CliRun run = Courier({"send", "echo", R"({"n":1})", "--count", "300", "--concurrency", "16", "--json"});
  ASSERT_EQ(run.exit_code, 0) << run.output;
  const auto summary = nlohmann::json::parse(run.output);
  EXPECT_EQ(summary["sent"], 300);
  EXPECT_EQ(summary["ok"], 300);
  EXPECT_EQ(summary["errors"], nlohmann::json::object());
  EXPECT_GT(summary["jobs_per_s"].get<double>(), 0.0);
  for (const char* key : {"p50", "p90", "p99", "max"}) {
    EXPECT_TRUE(summary["latency_ms"].contains(key)) << key;
  }
  EXPECT_LE(summary["latency_ms"]["p50"].get<double>(), summary["latency_ms"]["max"].get<double>());
}

// One job with --json: its id and reply (or error) as one object, not a load summary.
TEST_F(ClientCliTest, OneJobWithJsonPrintsItsIdAndReplyOrError) {
  StartWorker("echo", Echo());
  StartWorker("fails", [](const WorkerJob&) { return WorkerAction::Fail(ErrorCode::kHandlerError, "kaput"); });
  const CliRun run = Courier({"send", "echo", R"({"n":1,"s":"h\u00e9"})", "--json"});
  ASSERT_EQ(run.exit_code, 0) << run.output;
  const auto out = LastJsonLine(run.output);
  EXPECT_EQ(out["job_id"].get<std::string>().size(), 32u) << run.output;
  EXPECT_EQ(out["reply"], nlohmann::json::parse(R"({"n":1,"s":"h\u00e9"})")) << run.output;
  EXPECT_FALSE(out.contains("sent")) << "a single job prints no summary: " << run.output;
  EXPECT_EQ(workers_[0]->deliveries(), 1u);

  const CliRun failing = Courier({"send", "fails", "{}", "--json"});
  EXPECT_EQ(failing.exit_code, 1) << failing.output;  // as without --json
  const auto error = LastJsonLine(failing.output);
  EXPECT_EQ(error["job_id"].get<std::string>().size(), 32u) << failing.output;
  EXPECT_EQ(error["error"]["code"], "handler_error") << failing.output;
  EXPECT_NE(error["error"]["message"].get<std::string>().find("kaput"), std::string::npos) << failing.output;
  EXPECT_FALSE(error.contains("reply"));

  const CliRun sent = Courier({"send", "echo", "{}", "--send", "--json"});
  ASSERT_EQ(sent.exit_code, 0) << sent.output;
  const auto accepted = LastJsonLine(sent.output);
  EXPECT_EQ(accepted["accepted"], true);
  EXPECT_EQ(accepted["job_id"].get<std::string>().size(), 32u);

  // --count 2 keeps the summary.
  const CliRun two = Courier({"send", "echo", "{}", "--count", "2", "--json"});
  ASSERT_EQ(two.exit_code, 0) << two.output;
  EXPECT_EQ(LastJsonLine(two.output)["sent"], 2);
}

// Ctrl-C during a load run: sending stops, the jobs in flight get a moment, the summary of
// what was done is printed (with "interrupted") and the exit status is 130.
TEST_F(ClientCliTest, CtrlCStopsALoadRunWithAPartialSummaryAndExit130) {
  StartWorker("echo", Echo(2ms));
  Client observer(TestOptions({broker_.endpoint()}, keyring_));
  for (const bool json : {true, false}) {
    const std::uint64_t before = Replied(observer, "echo");
    std::vector<std::string> args{"send", "echo", R"({"n":1})", "--count", "100000000", "--concurrency", "8"};
    if (json) args.push_back("--json");
    ChildProcess run = StartCourier(args);
    // Progress: the broker has seen answers of this run.
    ASSERT_TRUE(WaitFor([&] { return Replied(observer, "echo") >= before + 20; }, 20s)) << run.Log();
    run.Signal(SIGINT);
    const int status = run.Wait(10s);
    const std::string output = run.Log();
    ASSERT_NE(status, -1) << "still running after Ctrl-C:\n" << output;
    ASSERT_TRUE(WIFEXITED(status)) << status << "\n" << output;
    EXPECT_EQ(WEXITSTATUS(status), 130) << output;
    EXPECT_NE(output.find("courier: interrupted after sending"), std::string::npos) << output;
    if (json) {
      const auto summary = LastJsonLine(output);
      EXPECT_GT(summary["sent"].get<std::uint64_t>(), 0u) << output;
      EXPECT_LT(summary["sent"].get<std::uint64_t>(), 100000000u) << output;
      EXPECT_GT(summary["ok"].get<std::uint64_t>(), 0u) << output;
      EXPECT_LE(summary["ok"].get<std::uint64_t>(), summary["sent"].get<std::uint64_t>()) << output;
      EXPECT_EQ(summary["interrupted"], true) << output;
      std::uint64_t failed = 0;
      for (const auto& [code, n] : summary["errors"].items()) failed += n.get<std::uint64_t>();
      EXPECT_EQ(summary["unanswered"].get<std::uint64_t>() + summary["ok"].get<std::uint64_t>() + failed,
                summary["sent"].get<std::uint64_t>())
          << output;
      EXPECT_TRUE(summary["latency_ms"].contains("p99")) << output;
    } else {
      EXPECT_TRUE(output.starts_with("sent ") || output.find("\nsent ") != std::string::npos) << output;
      EXPECT_NE(output.find("interrupted (Ctrl-C): "), std::string::npos) << output;
    }
  }
}

// A second Ctrl-C does not wait for the jobs in flight (here: never answered).
TEST_F(ClientCliTest, ASecondCtrlCExitsAtOnce) {
  StartWorker("hold", [](const WorkerJob&) {
    WorkerAction ignore;
    ignore.kind = WorkerAction::Kind::kIgnore;
    return ignore;
  });
  ChildProcess run = StartCourier({"send", "hold", "{}", "--count", "1000", "--concurrency", "4", "--json"});
  ASSERT_TRUE(WaitFor([&] { return workers_.back()->deliveries() >= 4; }, 20s)) << run.Log();
  run.Signal(SIGINT);
  ASSERT_TRUE(run.WaitForLog("Ctrl-C again", 10s)) << run.Log();
  run.Signal(SIGINT);
  const int status = run.Wait(10s);
  ASSERT_NE(status, -1) << run.Log();
  ASSERT_TRUE(WIFEXITED(status)) << status << "\n" << run.Log();
  EXPECT_EQ(WEXITSTATUS(status), 130) << run.Log();
  // It did not sit out the wait for the 4 unanswered jobs to print a summary.
  EXPECT_NE(run.Log().find("interrupted again"), std::string::npos) << run.Log();
  EXPECT_EQ(run.Log().find("\"sent\""), std::string::npos) << run.Log();
}

TEST_F(ClientCliTest, ManyJobsWithErrorsCountThemByCode) {
  StartWorker("half", [](const WorkerJob& job) {
    if (job.request.At("i").AsUint() % 2 == 0) return WorkerAction::Reply(job.request);
    return WorkerAction::Fail(ErrorCode::kInvalidPayload, "odd");
  });
  const CliRun run = Courier({"send", "half", R"({"i":0})", "--count", "20", "--json"});
  ASSERT_EQ(run.exit_code, 0) << run.output;
  const CliRun failing = Courier({"send", "half", R"({"i":1})", "--count", "20", "--json"});
  EXPECT_EQ(failing.exit_code, 1) << failing.output;
  const auto line = failing.output.substr(0, failing.output.find('\n'));
  const auto summary = nlohmann::json::parse(line);
  EXPECT_EQ(summary["ok"], 0);
  EXPECT_EQ(summary["errors"]["invalid_payload"], 20);
}

TEST_F(ClientCliTest, FireAndForget) {
  StartWorker("audit", Echo());
  const CliRun run = Courier({"send", "audit", "{}", "--send"});
  ASSERT_EQ(run.exit_code, 0) << run.output;
  const auto out = nlohmann::json::parse(run.output);
  EXPECT_EQ(out["accepted"], true);
  EXPECT_EQ(out["job_id"].get<std::string>().size(), 32u);
  EXPECT_TRUE(WaitFor([&] { return workers_.back()->deliveries() == 1; }, 10s));
}

// Stored jobs through the CLI against the real broker: enqueue prints the id, `job`
// waits for and opens the result, `jobs` lists it; unknown ids exit 4 (not_found).
TEST_F(ClientCliTest, EnqueueJobAndJobs) {
  StartWorker("echo", Echo());
  const CliRun enqueued = Courier({"send", "echo", R"({"stored": true})", "--enqueue"});
  ASSERT_EQ(enqueued.exit_code, 0) << enqueued.output;
  std::string id = enqueued.output;
  while (!id.empty() && (id.back() == '\n' || id.back() == '\r')) id.pop_back();
  ASSERT_EQ(id.size(), 32u) << enqueued.output;
  const CliRun job = Courier({"job", id, "--wait", "10", "--json"});
  ASSERT_EQ(job.exit_code, 0) << job.output;
  const auto record = nlohmann::json::parse(job.output);
  EXPECT_EQ(record["state"], "done") << job.output;
  EXPECT_EQ(record["result"]["stored"], true) << job.output;
  const CliRun jobs = Courier({"jobs", "--state", "done", "--json"});
  ASSERT_EQ(jobs.exit_code, 0) << jobs.output;
  bool listed = false;
  for (const auto& row : nlohmann::json::parse(jobs.output)) listed = listed || row["id"] == id;
  EXPECT_TRUE(listed) << jobs.output;
  const CliRun unknown = Courier({"job", std::string(32, 'a')});
  EXPECT_EQ(unknown.exit_code, 4) << unknown.output;
}

TEST_F(ClientCliTest, ServicesAndWorkersTablesAndJson) {
  StartWorker("echo", Echo());
  const CliRun table = Courier({"services"});
  ASSERT_EQ(table.exit_code, 0) << table.output;
  EXPECT_EQ(table.output.rfind("SERVICE", 0), 0u) << table.output;
  EXPECT_NE(table.output.find("echo"), std::string::npos);

  const CliRun json = Courier({"services", "--json"});
  ASSERT_EQ(json.exit_code, 0) << json.output;
  const auto services = nlohmann::json::parse(json.output);
  ASSERT_TRUE(services.is_array());
  bool found = false;
  for (const auto& service : services) {
    if (service["name"] == "echo") {
      found = true;
      EXPECT_EQ(service["workers"], 1);
    }
  }
  EXPECT_TRUE(found) << json.output;

  const CliRun cluster = Courier({"services", "--json", "--cluster"});
  ASSERT_EQ(cluster.exit_code, 0) << cluster.output;
  EXPECT_EQ(nlohmann::json::parse(cluster.output)[0]["brokers"][0], broker_.endpoint());

  const CliRun workers = Courier({"workers", "--json"});
  ASSERT_EQ(workers.exit_code, 0) << workers.output;
  const auto list = nlohmann::json::parse(workers.output);
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0]["service"], "echo");
  EXPECT_EQ(list[0]["host"], "test-host");
  const CliRun workers_table = Courier({"workers"});
  EXPECT_EQ(workers_table.exit_code, 0);
  EXPECT_NE(workers_table.output.find("test-host"), std::string::npos) << workers_table.output;

  EXPECT_EQ(Courier({"ping"}).exit_code, 0);
  const CliRun stats = Courier({"stats"});
  EXPECT_EQ(stats.exit_code, 0);
  EXPECT_NE(stats.output.find("uptime_ms"), std::string::npos) << stats.output;
}

// A worker registered with two brokers is one worker in `services --cluster`, not two.
TEST_F(ClientCliTest, ClusterServicesCountAWorkerOnEveryBrokerOnce) {
  BrokerProcess second(dir_, "broker-2");
  workers_.push_back(std::make_unique<TestWorker>(std::vector<std::string>{broker_.endpoint(), second.endpoint()},
                                                  "echo", keyring_, Echo()));
  Client client(TestOptions({broker_.endpoint(), second.endpoint()}, keyring_));
  ASSERT_TRUE(WaitForWorkers(client, "echo", 1));
  const CliRun run = Courier({"--broker", second.endpoint(), "services", "--cluster", "--json"});
  ASSERT_EQ(run.exit_code, 0) << run.output;
  const auto services = nlohmann::json::parse(run.output);
  ASSERT_EQ(services.size(), 1u) << run.output;
  EXPECT_EQ(services[0]["name"], "echo");
  EXPECT_EQ(services[0]["brokers"].size(), 2u) << run.output;
  EXPECT_EQ(services[0]["workers"], 1) << run.output;
  const CliRun table = Courier({"--broker", second.endpoint(), "services", "--cluster"});
  ASSERT_EQ(table.exit_code, 0) << table.output;
  const std::size_t row = table.output.find("\necho");
  ASSERT_NE(row, std::string::npos) << table.output;
  std::istringstream cells(table.output.substr(row + 1));
  std::string name, workers;
  cells >> name >> workers;
  EXPECT_EQ(workers, "1") << table.output;
}

TEST_F(ClientCliTest, KeygenWritesAPrivateFileAndRefusesToOverwrite) {
  const auto path = dir_.path() / "keys" / "new.toml";
  const CliRun first = Courier({"keygen", "--out", path.string()}, true);
  ASSERT_EQ(first.exit_code, 0) << first.output;
  struct stat info {};
  ASSERT_EQ(::stat(path.c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0600u);
  EXPECT_NO_THROW(Keyring::Load(path));
  EXPECT_EQ(Courier({"keygen", "--out", path.string()}, true).exit_code, 1);
  EXPECT_EQ(Courier({"keygen", "--out", path.string(), "--force"}, true).exit_code, 0);
  // With no flags it writes the default path (under this test's private config home).
  EXPECT_EQ(Courier({"keygen"}, true).exit_code, 0);
  EXPECT_TRUE(std::filesystem::exists(dir_.path() / "config" / "courier" / "keyring.toml"));
}

TEST_F(ClientCliTest, ConfigFileEnvironmentAndFlagsInThatOrder) {
  StartWorker("echo", Echo());
  const auto config = dir_.Write("client.toml", "brokers = [\"" + FreeEndpoint() + "\"]\nkeyring = \"" +
                                                    key_file_.string() + "\"\nfailover_timeout = \"300ms\"\n"
                                                    "heartbeat_interval = \"100ms\"\n[log]\nlevel = \"warn\"\n");
  // The file alone names a dead broker...
  EXPECT_EQ(Courier({"--config", config.string(), "send", "echo", "1"}, true).exit_code, 3);
  // ...the environment overrides it...
  EXPECT_EQ(Courier({"--config", config.string(), "send", "echo", "1"}, true,
                    {"COURIER_BROKERS=" + broker_.endpoint()})
                .exit_code,
            0);
  // ...and a flag overrides the environment.
  EXPECT_EQ(Courier({"--config", config.string(), "--broker", broker_.endpoint(), "send", "echo", "1"}, true,
                    {"COURIER_BROKERS=" + FreeEndpoint()})
                .exit_code,
            0);
  const auto bad = dir_.Write("bad.toml", "brokerz = []\n");
  const CliRun refused = Courier({"--config", bad.string(), "send", "echo", "1"}, true);
  EXPECT_EQ(refused.exit_code, 2) << refused.output;
  EXPECT_NE(refused.output.find("brokerz"), std::string::npos) << refused.output;
}

}  // namespace
}  // namespace courier::test

namespace courier::test {
namespace {

// `courier errors` and `courier metrics` (ops/cli/errors_command.cpp, metrics_command.cpp,
// owned by the error-sink and metrics work) are wired in: with neither service running they
// say so at once rather than waiting for a deadline.
TEST_F(ClientCliTest, ErrorsAndMetricsSayWhenTheirServiceIsMissing) {
  for (const std::vector<std::string>& args : {std::vector<std::string>{"errors", "list"},
                                               std::vector<std::string>{"metrics"}}) {
    const auto start = std::chrono::steady_clock::now();
    const CliRun run = Courier(args);
    EXPECT_EQ(run.exit_code, 1) << run.output;
    EXPECT_NE(run.output.find("no_such_service"), std::string::npos) << run.output;
    EXPECT_LT(std::chrono::steady_clock::now() - start, 10s);
  }
  EXPECT_EQ(Courier({"errors"}).exit_code, 2);  // a sub-subcommand is required
}

}  // namespace
}  // namespace courier::test
