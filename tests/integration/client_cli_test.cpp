// build/bin/courier as a user runs it, against a real broker and a raw-frame test worker:
// JSON round trips of every type, the load summary, tables, keygen and exit codes.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <fstream>
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
