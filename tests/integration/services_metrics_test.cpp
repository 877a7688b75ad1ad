// The metrics collector end to end: processes' reporters → broker → courier-metrics →
// `courier metrics`, /metrics (checked with the Prometheus project's own Python parser)
// and /metrics.json.
#include <httplib.h>

#include <atomic>
#include <future>
#include <sstream>
#include <thread>

#include "courier/keyring.hpp"
#include "courier/worker.hpp"
#include "reporting/histogram.hpp"
#include "reporting/worker_reporting.hpp"
#include "services_fixture.hpp"

namespace courier::test {
namespace {

using namespace std::chrono_literals;

// A process's cumulative totals for one stage where every job took `each_ns`.
StageTotals Totals(const std::string& service, const std::string& stage, std::uint64_t count, std::uint64_t each_ns) {
  StageTotals totals;
  totals.service = service;
  totals.stage = stage;
  totals.count = count;
  totals.sum_ns = count * each_ns;
  totals.min_ns = each_ns;
  totals.max_ns = each_ns;
  totals.buckets.assign(detail::kLatencyBuckets, 0);
  totals.buckets[detail::LatencyBucket(each_ns)] = count;
  return totals;
}

class MetricsIntegrationTest : public ServicesFixture {
 protected:
  void SetUp() override {
    http_port_ = FreePort();
    StartBroker();
    StartMetrics("127.0.0.1:" + std::to_string(http_port_));
  }

  Value Stats() { return Ask("courier.metrics", Value::Object({{"op", "stats"}})); }

  // Returns: the window of (service, process, stage) in a stats table, or nullptr.
  static const Value* Window(const Value& stats, const std::string& service, const std::string& stage,
                             const std::string& window, const std::string& process = "worker") {
    for (const Value& entry : stats.At("stages").AsArray()) {
      if (entry.At("service").AsString() == service && entry.At("process").AsString() == process &&
          entry.At("stage").AsString() == stage) {
        return entry.At("windows").Find(window);
      }
    }
    return nullptr;
  }

  // Returns: "PROCESS/STAGE" of each row of `service` in a `courier metrics` table, top down.
  static std::vector<std::string> TableRows(const std::string& output, const std::string& service) {
    std::vector<std::string> rows;
    std::istringstream lines(output);
    std::string line;
    while (std::getline(lines, line)) {
      std::istringstream cells(line);
      std::string row_service;
      std::string process;
      std::string stage;
      if (cells >> row_service >> process >> stage && row_service == service) rows.push_back(process + "/" + stage);
    }
    return rows;
  }

  std::string GetPage(const std::string& path) {
    httplib::Client client("127.0.0.1", http_port_);
    client.set_connection_timeout(5, 0);
    client.set_read_timeout(5, 0);
    auto response = client.Get(path.c_str());
    if (!response || response->status != 200) return {};
    return response->body;
  }

  int http_port_ = 0;
};

TEST_F(MetricsIntegrationTest, TwoProcessesAveragesCombineWeightedByCounts) {
  // Worker A ran 100 jobs of 10 ms, worker B 300 jobs of 20 ms: the mean is 17.5 ms (the
  // mean of the two means, 15 ms, would be wrong).
  std::atomic<bool> ready{false};
  auto provider = [&ready](std::vector<StageTotals> totals) {
    return [&ready, totals] { return ready ? totals : std::vector<StageTotals>{}; };
  };
  ReporterOptions a_options = Reporter();
  a_options.instance = "worker-a";
  ReporterOptions b_options = Reporter();
  b_options.instance = "worker-b";
  MetricsReporter a(a_options, provider({Totals("resize", "handle", 100, 10'000'000)}));
  MetricsReporter b(b_options, provider({Totals("resize", "handle", 300, 20'000'000)}));
  ready = true;
  ASSERT_TRUE(a.Flush(10s));
  ASSERT_TRUE(b.Flush(10s));
  ASSERT_TRUE(WaitFor(
      [&] {
        const Value stats = Stats();
        const Value* all = Window(stats, "resize", "handle", "all");
        return all != nullptr && all->At("count").AsUint() == 400;
      },
      10s))
      << Log("metrics");

  const CliResult json = Cli({"metrics", "--json"});
  ASSERT_EQ(json.status, 0) << json.output;
  const Value stats = JsonOf(json);
  for (const std::string window : {"10s", "1m", "5m", "all"}) {
    const Value* w = Window(stats, "resize", "handle", window);
    ASSERT_NE(w, nullptr) << window;
    EXPECT_EQ(w->At("count").AsUint(), 400u) << window;
    EXPECT_DOUBLE_EQ(w->At("mean_ns").AsDouble(), 17'500'000.0) << window;
    EXPECT_NEAR(w->At("p50_ns").AsDouble(), 20e6, 20e6 * 0.125) << window;
    EXPECT_EQ(w->At("min_ns").AsUint(), 10'000'000u);
    EXPECT_EQ(w->At("max_ns").AsUint(), 20'000'000u);
  }
  EXPECT_GE(stats.At("reporters").size(), 2u);

  const CliResult table = Cli({"metrics", "--window", "all"});
  ASSERT_EQ(table.status, 0) << table.output;
  EXPECT_NE(table.output.find("resize"), std::string::npos) << table.output;
  EXPECT_NE(table.output.find("17.50ms"), std::string::npos) << table.output;

  const Value from_http = FromJson(GetPage("/metrics.json"));
  const Value* http_all = Window(from_http, "resize", "handle", "all");
  ASSERT_NE(http_all, nullptr);
  EXPECT_DOUBLE_EQ(http_all->At("mean_ns").AsDouble(), 17'500'000.0);
}

TEST_F(MetricsIntegrationTest, MetricsPageParsesWithThePrometheusParser) {
  MetricsReporter reporter(Reporter(), [] {
    std::vector<StageTotals> totals{Totals("echo", "open", 10, 2'000), Totals("echo", "handle", 10, 3'000'000),
                                    Totals("we\"ird \\ service", "handle", 1, 1'000)};
    totals[1].errors = 2;
    return totals;
  });
  ASSERT_TRUE(reporter.Flush(10s));
  std::string page;
  ASSERT_TRUE(WaitFor(
      [&] {
        page = GetPage("/metrics");
        return page.find("courier_stage_duration_seconds_count{service=\"echo\",process=\"worker\","
                         "stage=\"handle\"} 10") != std::string::npos;
      },
      10s))
      << page;
  const auto page_file = dir_.Write("metrics.txt", page);
  const auto script = dir_.Write("parse.py", R"(import sys
from prometheus_client.parser import text_string_to_metric_families
families = list(text_string_to_metric_families(open(sys.argv[1]).read()))
for family in families:
    print("family", family.name, family.type)
    for sample in family.samples:
        print("sample", sample.name, sorted(sample.labels.items()), sample.value)
print("parsed", len(families))
)");
  const std::string python = std::filesystem::exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
  ChildProcess parser(python, {script.string(), page_file.string()}, dir_.path() / "parse.log");
  const int status = parser.Wait(30s);
  ASSERT_TRUE(status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0) << parser.Log() << "\n" << page;
  const std::string parsed = parser.Log();
  EXPECT_NE(parsed.find("family courier_stage_duration_seconds histogram"), std::string::npos) << parsed;
  EXPECT_NE(parsed.find("sample courier_stage_duration_seconds_count [('process', 'worker'), ('service', 'echo'), "
                        "('stage', 'handle')] 10.0"),
            std::string::npos)
      << parsed;
  EXPECT_NE(parsed.find("('service', 'we\"ird \\\\ service')"), std::string::npos) << parsed;
  EXPECT_NE(parsed.find("courier_stage_window_mean_seconds"), std::string::npos) << parsed;
  EXPECT_NE(parsed.find("courier_stage_errors"), std::string::npos) << parsed;
}

TEST_F(MetricsIntegrationTest, AClientSealAndAWorkerSealOfOneServiceStaySeparate) {
  // Both a client and a worker report "seal" and "open" for echo (PROTOCOL.md §10.2); the
  // collector keeps them apart by process, everywhere it shows them.
  ReporterOptions client_options = Reporter();
  client_options.reporter = "client";
  client_options.instance = "client-1";
  ReporterOptions worker_options = Reporter();
  worker_options.reporter = "worker";
  worker_options.instance = "worker-1";
  ReporterOptions broker_options = Reporter();
  broker_options.reporter = "broker";
  broker_options.instance = "broker-1";
  MetricsReporter worker(worker_options, [] {
    return std::vector<StageTotals>{Totals("echo", "send", 30, 30'000), Totals("echo", "seal", 30, 50'000),
                                    Totals("echo", "open", 30, 40'000)};
  });
  MetricsReporter broker(broker_options, [] {
    return std::vector<StageTotals>{Totals("echo", "dispatch", 20, 7'000), Totals("echo", "queue_wait", 20, 9'000)};
  });
  MetricsReporter client(client_options, [] {
    return std::vector<StageTotals>{Totals("echo", "round_trip", 10, 3'000'000), Totals("echo", "open", 10, 1'000),
                                    Totals("echo", "seal", 10, 2'000), Totals("echo", "encode", 10, 4'000)};
  });
  ASSERT_TRUE(worker.Flush(10s));
  ASSERT_TRUE(broker.Flush(10s));
  ASSERT_TRUE(client.Flush(10s));
  Value stats;
  ASSERT_TRUE(WaitFor(
      [&] {
        stats = Stats();
        const Value* client_seal = Window(stats, "echo", "seal", "all", "client");
        const Value* worker_seal = Window(stats, "echo", "seal", "all", "worker");
        const Value* dispatch = Window(stats, "echo", "dispatch", "all", "broker");
        return client_seal != nullptr && client_seal->At("count").AsUint() == 10 && worker_seal != nullptr &&
               worker_seal->At("count").AsUint() == 30 && dispatch != nullptr;
      },
      10s))
      << ToJson(stats) << Log("metrics");
  EXPECT_DOUBLE_EQ(Window(stats, "echo", "seal", "all", "client")->At("mean_ns").AsDouble(), 2'000.0);
  EXPECT_DOUBLE_EQ(Window(stats, "echo", "seal", "all", "worker")->At("mean_ns").AsDouble(), 50'000.0);
  EXPECT_DOUBLE_EQ(Window(stats, "echo", "open", "all", "client")->At("mean_ns").AsDouble(), 1'000.0);
  EXPECT_DOUBLE_EQ(Window(stats, "echo", "open", "all", "worker")->At("mean_ns").AsDouble(), 40'000.0);
  // Rows come in pipeline order: client, broker, worker, each in its own stage order.
  std::vector<std::string> order;
  for (const Value& row : stats.At("stages").AsArray()) {
    if (row.At("service").AsString() == "echo") {
      order.push_back(row.At("process").AsString() + "/" + row.At("stage").AsString());
    }
  }
  EXPECT_EQ(order, (std::vector<std::string>{"client/encode", "client/seal", "client/round_trip", "client/open",
                                             "broker/queue_wait", "broker/dispatch", "worker/open", "worker/seal",
                                             "worker/send"}));

  // The table: a PROCESS column, rows in the same order, and --process / --service filters.
  const CliResult table = Cli({"metrics", "--window", "all", "--service", "echo"});
  ASSERT_EQ(table.status, 0) << table.output;
  EXPECT_NE(table.output.find("SERVICE  PROCESS  STAGE"), std::string::npos) << table.output;
  EXPECT_EQ(TableRows(table.output, "echo"), order) << table.output;
  EXPECT_NE(table.output.find("2.0µs"), std::string::npos) << table.output;   // client seal
  EXPECT_NE(table.output.find("50.0µs"), std::string::npos) << table.output;  // worker seal

  const CliResult workers_only = Cli({"metrics", "--window", "all", "--process", "worker", "--service", "echo"});
  ASSERT_EQ(workers_only.status, 0) << workers_only.output;
  EXPECT_EQ(TableRows(workers_only.output, "echo"),
            (std::vector<std::string>{"worker/open", "worker/seal", "worker/send"}))
      << workers_only.output;
  const CliResult clients_only = Cli({"metrics", "--window", "all", "--process", "client"});
  ASSERT_EQ(clients_only.status, 0) << clients_only.output;
  EXPECT_EQ(TableRows(clients_only.output, "echo"),
            (std::vector<std::string>{"client/encode", "client/seal", "client/round_trip", "client/open"}))
      << clients_only.output;

  // Prometheus and /metrics.json carry the process too.
  const std::string page = GetPage("/metrics");
  EXPECT_NE(page.find("courier_stage_duration_seconds_count{service=\"echo\",process=\"client\",stage=\"seal\"} 10\n"),
            std::string::npos)
      << page;
  EXPECT_NE(page.find("courier_stage_duration_seconds_count{service=\"echo\",process=\"worker\",stage=\"seal\"} 30\n"),
            std::string::npos)
      << page;
  const Value from_http = FromJson(GetPage("/metrics.json"));
  const Value* http_client_seal = Window(from_http, "echo", "seal", "all", "client");
  ASSERT_NE(http_client_seal, nullptr);
  EXPECT_EQ(http_client_seal->At("count").AsUint(), 10u);
}

// The real worker host, timed by its own stage stats and reported through the reporter
// the way WorkerHost wires it: a handler that sleeps 50 ms shows a 50 ms handle mean (long enough that scheduler overshoot on a busy machine stays well inside the 10% bound).
class SleepService {
 public:
  static constexpr std::string_view kName = "sleepy";
  Value Handle(const Value& request) const {
    std::this_thread::sleep_for(50ms);
    return request;
  }
};

TEST_F(MetricsIntegrationTest, AHandlerOfKnownDurationShowsItsMeanAndEveryStageAppears) {
  static const std::string kReported = "sleepy-by-test-reporter";
  const auto keyring_path = dir_.path() / "host-keyring.toml";
  GenerateKeyFile(keyring_path);
  std::promise<WorkerHost*> started;
  std::atomic<WorkerHost*> host_pointer{nullptr};
  std::thread host_thread([&] {
    WorkerOptions options;
    options.brokers = {endpoint_};
    options.keyring = keyring_path;
    options.threads = 2;
    options.heartbeat_interval = 200ms;
    options.handle_signals = false;
    options.schema_dirs.clear();
    WorkerHost host(options);
    host.Register<SleepService>(ConfigSection::Parse("allow_unsealed = true\ncapacity = 2\n", "test"));
    host_pointer = &host;
    started.set_value(&host);
    host.Run();
    host_pointer = nullptr;
  });
  WorkerHost* host = started.get_future().get();
  {
    // The host's own timings, reported as the host does it, under a name of their own so
    // that a host which already reports by itself (once wired) does not count twice here.
    MetricsReporter reporter(Reporter(), [host] {
      std::vector<StageTotals> totals = detail::ToStageTotals(host->StageSnapshot());
      for (StageTotals& entry : totals) entry.service = kReported;
      return totals;
    });
    ASSERT_TRUE(WaitForService("sleepy"));
    detail::CallerOptions caller_options;
    caller_options.brokers = {endpoint_};
    detail::ServiceCaller caller(caller_options);
    for (int i = 0; i < 10; ++i) {
      EXPECT_EQ(caller.Call("sleepy", Value::Object({{"n", i}}), 10s).At("n").AsInt(), i);
    }
    const Value* handle = nullptr;
    Value stats;
    ASSERT_TRUE(WaitFor(
        [&] {
          if (!reporter.Flush(5s)) return false;
          stats = Stats();
          handle = Window(stats, kReported, "handle", "all");
          const Value* send = Window(stats, kReported, "send", "all");
          return handle != nullptr && handle->At("count").AsUint() == 10 && send != nullptr &&
                 send->At("count").AsUint() == 10;
        },
        20s))
        << ToJson(stats);
    EXPECT_NEAR(handle->At("mean_ns").AsDouble(), 50e6, 50e6 * 0.10) << ToJson(*handle);
    for (const std::string stage : {"open", "parse", "verify", "handle", "convert", "seal", "send"}) {
      const Value* window = Window(stats, kReported, stage, "1m");
      ASSERT_NE(window, nullptr) << stage;
      EXPECT_EQ(window->At("count").AsUint(), 10u) << stage;
    }
  }
  host->Stop();
  host_thread.join();
}

}  // namespace
}  // namespace courier::test
