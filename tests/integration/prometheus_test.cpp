// Prometheus end to end (issue 17): a real courier-broker with --http / `http`, the
// courier-metrics collector and a courier-worker running the echo plugin. After N calls
// the broker's /metrics counts N accepted and answered echo jobs with nothing queued or in
// flight, the collector's stage histograms count N (and grow with the next jobs), /healthz
// answers 200 while the broker runs and nothing while it is stopped (SIGSTOP), and every
// courier_broker_* name the sample alerting rules use is on the broker's page.
#include <httplib.h>

#include <csignal>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "courier/client.hpp"
#include "prometheus/exposition_check.hpp"
#include "services_fixture.hpp"

namespace courier::test {
namespace {

using namespace std::chrono_literals;
using prometheus::ParsedPage;
using prometheus::ParseExposition;

class PrometheusIntegrationTest : public ServicesFixture {
 protected:
  void SetUp() override { metrics_port_ = FreePort(); }

  // The broker (its HTTP address from its log), the error sink (it makes the keyring every
  // process here shares), the collector and an echo worker.
  void StartAll(const std::vector<std::string>& broker_flags, const std::string& broker_extra) {
    const auto config = dir_.Write("broker.toml", "bind = [\"" + endpoint_ +
                                                      "\"]\nheartbeat_interval = \"200ms\"\n" + broker_extra);
    std::vector<std::string> args = {"--config", config.string()};
    args.insert(args.end(), broker_flags.begin(), broker_flags.end());
    Start("broker", BinaryPath("courier-broker"), args);
    ASSERT_TRUE(Process("broker").WaitForLog("listening on", 10s)) << Log("broker");
    const std::string log = Log("broker");
    const std::size_t at = log.find("serving http://");
    ASSERT_NE(at, std::string::npos) << log;
    const std::size_t begin = at + std::string("serving http://").size();
    const std::string address = log.substr(begin, log.find("/metrics", begin) - begin);
    broker_port_ = std::stoi(address.substr(address.rfind(':') + 1));
    StartSink();
    StartMetrics("127.0.0.1:" + std::to_string(metrics_port_));
    const auto worker_config =
        dir_.Write("worker.toml", "brokers = [\"" + endpoint_ + "\"]\nheartbeat_interval = \"200ms\"\n");
    Start("worker", BinaryPath("courier-worker"),
          {"--config", worker_config.string(), "--plugin", PluginPath("echo").string()});
    ASSERT_TRUE(WaitForService("echo")) << Log("worker");
  }

  static httplib::Result Get(int port, const std::string& path, time_t timeout_s = 5) {
    httplib::Client client("127.0.0.1", port);
    client.set_connection_timeout(timeout_s);
    client.set_read_timeout(timeout_s);
    return client.Get(path);
  }
  static ParsedPage Page(int port) {
    const auto answer = Get(port, "/metrics");
    if (!answer || answer->status != 200) return ParsedPage{.problems = {"no page"}};
    return ParseExposition(answer->body);
  }

  void SendEcho(int count) {
    ClientOptions options;
    options.brokers = {endpoint_};
    options.keyring_path = dir_.path() / "config" / "courier" / "keyring.toml";
    options.deadline = 20s;
    Client client(options);
    for (int i = 0; i < count; ++i) {
      EXPECT_EQ(client.Call("echo", Value::Object({{"n", Value(static_cast<std::int64_t>(i))}})).At("n").AsInt(), i);
    }
  }

  // Returns: _count of the collector's histogram for (echo, process, stage), or -1.
  double StageCount(const std::string& process, const std::string& stage) {
    const ParsedPage page = Page(metrics_port_);
    return page.Value("courier_stage_duration_seconds_count", {{"service", "echo"}, {"process", process}, {"stage", stage}})
        .value_or(-1);
  }

  int metrics_port_ = 0;
  int broker_port_ = 0;
};

TEST_F(PrometheusIntegrationTest, BrokerAndCollectorCountTheJobsSent) {
  ASSERT_NO_FATAL_FAILURE(StartAll({}, "http = \"127.0.0.1:0\"\n"));
  constexpr int kFirst = 20;
  SendEcho(kFirst);
  const std::map<std::string, std::string> echo = {{"service", "echo"}};
  ParsedPage broker;
  // The loop publishes every 250 ms: wait for the snapshot that saw the last answer.
  ASSERT_TRUE(WaitFor(
      [&] {
        broker = Page(broker_port_);
        return broker.Value("courier_broker_jobs_answered_total", echo) == kFirst;
      },
      10s))
      << Log("broker");
  for (const std::string& problem : broker.problems) ADD_FAILURE() << problem;
  EXPECT_EQ(broker.Value("courier_broker_jobs_accepted_total", echo), kFirst);
  EXPECT_EQ(broker.Value("courier_broker_jobs_dispatched_total", echo), kFirst);
  EXPECT_EQ(broker.Value("courier_broker_jobs_queued", echo), 0.0);
  EXPECT_EQ(broker.Value("courier_broker_jobs_in_flight", echo), 0.0);
  EXPECT_EQ(broker.Value("courier_broker_workers", echo), 1.0);
  EXPECT_EQ(broker.Value("courier_broker_busy_rejections_total", echo), 0.0);
  EXPECT_EQ(broker.Value("courier_broker_jobs_dead_lettered_total", echo), 0.0);
  EXPECT_EQ(broker.Value("courier_build_info", {{"program", "courier-broker"}}), 1.0);
  EXPECT_GT(broker.Value("process_resident_memory_bytes").value_or(0), 0.0);
  EXPECT_LT(broker.Value("courier_broker_snapshot_age_seconds").value_or(99), 3.0);

  // Every courier_broker_* name the sample alerting rules use is one the broker serves.
  std::ifstream rules_file(std::string(COURIER_SOURCE_DIR) + "/ops/prometheus/courier-alerts.yml");
  ASSERT_TRUE(rules_file) << "ops/prometheus/courier-alerts.yml";
  std::stringstream rules;
  rules << rules_file.rdbuf();
  const std::string text = rules.str();
  const std::regex name(R"(courier_broker_[a-z_]+)");
  std::set<std::string> used;
  for (auto it = std::sregex_iterator(text.begin(), text.end(), name); it != std::sregex_iterator(); ++it) {
    used.insert(it->str());
  }
  EXPECT_GE(used.size(), 4u);
  for (const std::string& metric : used) EXPECT_TRUE(broker.types.contains(metric)) << metric << " is not served";

  // The collector: the worker's handle stage and the broker's dispatch, one sample a job,
  // in histograms whose count grows with the jobs sent.
  ASSERT_TRUE(WaitFor([&] { return StageCount("worker", "handle") == kFirst; }, 15s)) << Log("metrics");
  ASSERT_TRUE(WaitFor([&] { return StageCount("broker", "dispatch") == kFirst; }, 15s)) << Log("metrics");
  ParsedPage collector = Page(metrics_port_);
  for (const std::string& problem : collector.problems) ADD_FAILURE() << problem;
  EXPECT_EQ(collector.types.at("courier_stage_duration_seconds"), "histogram");
  EXPECT_EQ(collector.Value("courier_stage_duration_seconds_bucket",
                            {{"service", "echo"}, {"process", "worker"}, {"stage", "handle"}, {"le", "+Inf"}}),
            kFirst);
  EXPECT_EQ(collector.Value("courier_build_info", {{"program", "courier-metrics"}}), 1.0);

  constexpr int kMore = 10;
  SendEcho(kMore);
  EXPECT_TRUE(WaitFor([&] { return StageCount("worker", "handle") == kFirst + kMore; }, 15s)) << Log("metrics");
  EXPECT_TRUE(WaitFor([&] { return StageCount("broker", "dispatch") == kFirst + kMore; }, 15s)) << Log("metrics");
  EXPECT_TRUE(WaitFor(
      [&] { return Page(broker_port_).Value("courier_broker_jobs_accepted_total", echo) == kFirst + kMore; }, 10s));
}

// Continues a stopped process even when an assertion fails half-way.
class ContinueAtExit {
 public:
  explicit ContinueAtExit(ChildProcess& process) : process_(process) {}
  ~ContinueAtExit() { process_.Signal(SIGCONT); }
  ContinueAtExit(const ContinueAtExit&) = delete;
  ContinueAtExit& operator=(const ContinueAtExit&) = delete;

 private:
  ChildProcess& process_;
};

TEST_F(PrometheusIntegrationTest, HealthzAnswersWhileTheBrokerRunsAndNotWhileItIsStopped) {
  ASSERT_NO_FATAL_FAILURE(StartAll({"--http", "127.0.0.1:0"}, ""));
  // Healthy (a loaded machine may be slow to answer the first request: a deadline, not one try).
  std::string last = "no answer";
  ASSERT_TRUE(WaitFor(
      [&] {
        const auto health = Get(broker_port_, "/healthz");
        if (!health) return false;
        last = std::to_string(health->status) + " " + health->body;
        return health->status == 200;
      },
      10s))
      << last << Log("broker");
  EXPECT_EQ(last, "200 ok\n");
  {
    ContinueAtExit resume(Process("broker"));
    Process("broker").Signal(SIGSTOP);
    const auto stopped = Get(broker_port_, "/healthz", 1);
    EXPECT_TRUE(!stopped || stopped->status != 200) << "a stopped broker answered " << stopped->status;
  }
  // Running again: healthy again (the loop publishes at once on its next turn).
  EXPECT_TRUE(WaitFor(
      [&] {
        const auto again = Get(broker_port_, "/healthz", 1);
        return again && again->status == 200;
      },
      10s));
  SendEcho(1);  // and still routing
}

}  // namespace
}  // namespace courier::test
