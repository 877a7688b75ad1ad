// Hostile reporters (issue 15, "Reports are trusted"): forged error batches and metrics
// reports sent through a real broker to the real courier-error-sink and courier-metrics,
// from the attacker's side (unsealed jobs, as any peer that reaches the broker can send),
// each next to a normal reporter whose figures must come out exactly right.
#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <vector>
#include <cmath>
#include <thread>

#include "reporting/histogram.hpp"
#include "services_fixture.hpp"

namespace courier::test {
namespace {

using namespace std::chrono_literals;

class HostileReportsTest : public ServicesFixture {
 protected:
  // Sends `request` to `service` as an attacker would. Returns: "" if it was answered with
  // a reply, else the error's message (an ERROR reply: the report was refused).
  std::string Forge(const std::string& service, const Value& request) {
    try {
      Ask(service, request);
      return {};
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kInvalidPayload) << e.what();
      return std::string(e.what()).empty() ? "refused" : e.what();
    }
  }
};

// ---- courier.errors ------------------------------------------------------------------

Value Batch(Value reports, Value dropped) {
  return Value::Object({{"reports", std::move(reports)}, {"dropped", std::move(dropped)}});
}

Value ForgedReport(std::initializer_list<std::pair<std::string, Value>> fields) {
  Value report = Value::Object({{"service", "resize"}, {"stage", "handle"}, {"code", Value(std::uint64_t{4})},
                                {"message", "forged"}, {"reporter", "worker"}});
  for (const auto& [key, value] : fields) report.Set(key, value);
  return report;
}

TEST_F(HostileReportsTest, AForgedErrorBatchNeverChangesTheSinksFigures) {
  StartBroker();
  StartSink();

  // The attack of issue 15: the sink's `dropped` forced to 2^63 - 1 (and then wrapped).
  EXPECT_NE(Forge("courier.errors", Batch(Value::Array{}, Value(std::uint64_t{INT64_MAX}))), "");
  EXPECT_NE(Forge("courier.errors", Batch(Value::Array{}, Value(std::uint64_t{UINT64_MAX}))), "");
  // More garbage: a batch whose reports break the format's rules.
  EXPECT_NE(Forge("courier.errors", Batch(Value::Array{ForgedReport({{"pid", Value(std::uint64_t{1} << 40)}})},
                                          Value(std::uint64_t{0}))),
            "");
  EXPECT_NE(Forge("courier.errors", Batch(Value::Array{ForgedReport({{"stage", "han\ndle"}})},
                                          Value(std::uint64_t{0}))),
            "");
  EXPECT_NE(Forge("courier.errors", Batch(Value::Array{ForgedReport({{"reporter", "root\x1b[31m"}})},
                                          Value(std::uint64_t{0}))),
            "");

  // Fields that are clamped rather than refused: a failure time far in the future or the
  // past becomes the arrival time, an invalid UTF-8 message is repaired.
  const std::uint64_t before = NowUnixMs();
  EXPECT_EQ(Forge("courier.errors",
                  Batch(Value::Array{ForgedReport({{"time_ms", Value(std::uint64_t{UINT64_MAX / 2})},
                                                   {"message", std::string("bad \xff\xfe utf-8")}})},
                        Value(std::uint64_t{0}))),
            "");

  // A normal reporter alongside: its report and its drop count arrive exactly.
  Value normal = ForgedReport({{"time_ms", Value(before)}, {"message", "image too wide"}});
  EXPECT_EQ(Forge("courier.errors", Batch(Value::Array{normal}, Value(std::uint64_t{5}))), "");

  const Value stats = Ask("courier.errors", Value::Object({{"op", "stats"}}));
  EXPECT_EQ(stats.At("dropped").AsUint(), 5u) << ToJson(stats);
  EXPECT_EQ(stats.At("stored").AsUint(), 2u) << ToJson(stats);
  ASSERT_NE(stats.Find("rejected_batches"), nullptr) << ToJson(stats);
  EXPECT_EQ(stats.At("rejected_batches").AsUint(), 5u) << ToJson(stats);
  EXPECT_EQ(stats.At("clamped_reports").AsUint(), 1u) << ToJson(stats);

  const Value rows = Ask("courier.errors", Value::Object({{"op", "list"}})).At("reports");
  ASSERT_EQ(rows.size(), 2u);
  const Value& normal_row = rows.AsArray()[0];  // newest first
  EXPECT_EQ(normal_row.At("message").AsString(), "image too wide");
  EXPECT_EQ(normal_row.At("time_ms").AsUint(), before);
  const Value& clamped_row = rows.AsArray()[1];
  EXPECT_GE(clamped_row.At("time_ms").AsUint(), before);
  EXPECT_LE(clamped_row.At("time_ms").AsUint(), NowUnixMs());
  EXPECT_EQ(clamped_row.At("message").AsString(), "bad \xEF\xBF\xBD\xEF\xBF\xBD utf-8");
  // Garbage is logged, but not once per report.
  EXPECT_TRUE(Process("sink").WaitForLog("refused a report batch", 5s)) << Log("sink");
}

// ---- courier.metrics -----------------------------------------------------------------

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

Value ForgedStage(std::uint64_t count, std::uint64_t each_ns, std::initializer_list<std::pair<std::string, Value>> fields = {}) {
  Value buckets = Value::Array{};
  if (count > 0) {
    buckets.Append(Value(Value::Array{Value(static_cast<std::uint64_t>(detail::LatencyBucket(each_ns))), Value(count)}));
  }
  Value stage = Value::Object({{"service", "resize"},
                               {"stage", "handle"},
                               {"count", Value(count)},
                               {"errors", Value(std::uint64_t{0})},
                               {"sum_ns", Value(count * each_ns)},
                               {"min_ns", Value(each_ns)},
                               {"max_ns", Value(each_ns)},
                               {"buckets", std::move(buckets)}});
  for (const auto& [key, value] : fields) stage.Set(key, value);
  return stage;
}

Value ForgedMetrics(Value stages, std::initializer_list<std::pair<std::string, Value>> fields = {}) {
  Value report = Value::Object({{"process", "worker"},
                                {"host", "evil"},
                                {"pid", Value(std::uint64_t{666})},
                                {"instance", "evil:666"},
                                {"interval_ms", Value(std::uint64_t{1000})},
                                {"stages", std::move(stages)}});
  for (const auto& [key, value] : fields) report.Set(key, value);
  return report;
}

class HostileMetricsTest : public HostileReportsTest {
 protected:
  void SetUp() override {
    http_port_ = FreePort();
    StartBroker();
    StartMetrics("127.0.0.1:" + std::to_string(http_port_));
  }

  std::string GetPage(const std::string& path) {
    httplib::Client client("127.0.0.1", http_port_);
    client.set_connection_timeout(2, 0);
    client.set_read_timeout(2, 0);
    auto response = client.Get(path.c_str());
    if (!response || response->status != 200) return {};
    return response->body;
  }

  static const Value* Window(const Value& stats, const std::string& window) {
    for (const Value& entry : stats.At("stages").AsArray()) {
      if (entry.At("service").AsString() == "resize" && entry.At("process").AsString() == "worker" &&
          entry.At("stage").AsString() == "handle") {
        return entry.At("windows").Find(window);
      }
    }
    return nullptr;
  }

  int http_port_ = 0;
};

TEST_F(HostileMetricsTest, AForgedStageSampleNeverPoisonsTheFigures) {
  // A normal worker: 100 jobs of 10 ms each.
  std::atomic<bool> ready{false};
  MetricsReporter normal(Reporter(), [&ready] {
    return ready ? std::vector<StageTotals>{Totals("resize", "handle", 100, 10'000'000)} : std::vector<StageTotals>{};
  });

  // The attack of issue 15: one sample of 17.8 million seconds, a consistent report apart
  // from its size; then reports whose parts contradict each other or are implausible.
  const std::uint64_t huge = 17'800'000ull * 1'000'000'000ull;
  EXPECT_EQ(Forge("courier.metrics", ForgedMetrics(Value::Array{ForgedStage(1, huge)})), "");
  EXPECT_EQ(Forge("courier.metrics",
                  ForgedMetrics(Value::Array{ForgedStage(1, 1000, {{"max_ns", Value(std::uint64_t{UINT64_MAX})}})})),
            "");
  EXPECT_EQ(Forge("courier.metrics", ForgedMetrics(Value::Array{ForgedStage(
                                         5, 1000, {{"count", Value(std::uint64_t{1} << 62)}})})),
            "");
  EXPECT_EQ(Forge("courier.metrics", ForgedMetrics(Value::Array{ForgedStage(
                                         5, 1000, {{"sum_ns", Value(std::uint64_t{UINT64_MAX})}})})),
            "");
  EXPECT_EQ(Forge("courier.metrics", ForgedMetrics(Value::Array{ForgedStage(
                                         5, 1000, {{"errors", Value(std::uint64_t{1} << 50)}})})),
            "");
  EXPECT_EQ(Forge("courier.metrics",
                  ForgedMetrics(Value::Array{ForgedStage(
                      1, 1000, {{"buckets", Value(Value::Array{Value(Value::Array{Value(std::uint64_t{251}),
                                                                                   Value(std::uint64_t{1})})})}})})),
            "");
  // Refused outright: names outside the charset, a pid no system has.
  EXPECT_NE(Forge("courier.metrics", ForgedMetrics(Value::Array{ForgedStage(1, 1000)}, {{"process", "wor\x01ker"}})),
            "");
  EXPECT_NE(Forge("courier.metrics",
                  ForgedMetrics(Value::Array{ForgedStage(1, 1000)}, {{"pid", Value(std::uint64_t{UINT64_MAX})}})),
            "");
  EXPECT_EQ(Forge("courier.metrics", ForgedMetrics(Value::Array{ForgedStage(1, 1000, {{"stage", "\xc3\x28"}})})), "");

  ready = true;
  ASSERT_TRUE(normal.Flush(10s));
  Value stats;
  ASSERT_TRUE(WaitFor(
      [&] {
        stats = Ask("courier.metrics", Value::Object({{"op", "stats"}}));
        const Value* all = Window(stats, "all");
        return all != nullptr && all->At("count").AsUint() >= 100;
      },
      10s))
      << Log("metrics");
  for (const std::string window : {"10s", "1m", "all"}) {
    const Value* w = Window(stats, window);
    ASSERT_NE(w, nullptr) << window;
    EXPECT_EQ(w->At("count").AsUint(), 100u) << window << ToJson(stats);
    EXPECT_EQ(w->At("errors").AsUint(), 0u) << window;
    EXPECT_DOUBLE_EQ(w->At("mean_ns").AsDouble(), 10'000'000.0) << window;
    EXPECT_EQ(w->At("max_ns").AsUint(), 10'000'000u) << window;
    EXPECT_LE(w->At("p99_ns").AsDouble(), 10'000'000.0) << window;
  }
  EXPECT_EQ(stats.Find("stages")->size(), 1u) << ToJson(stats);  // no series made of garbage names

  // The garbage is counted where the collector's other counters are.
  const std::string page = GetPage("/metrics");
  EXPECT_NE(page.find("courier_metrics_rejected_reports_total 2\n"), std::string::npos) << page;
  EXPECT_NE(page.find("courier_metrics_rejected_stages_total 7\n"), std::string::npos) << page;
  EXPECT_NE(page.find("courier_metrics_reports_total 1\n"), std::string::npos) << page;  // only the normal one
  EXPECT_TRUE(Process("metrics").WaitForLog("dropped a stage", 5s)) << Log("metrics");
}


// ---- the collector's HTTP endpoint (issue 15, "Connections") -------------------------

// A TCP connection to 127.0.0.1:port that sends half a request and then nothing; closed
// when destroyed.
class HalfOpen {
 public:
  explicit HalfOpen(int port) : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<std::uint16_t>(port));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = fd_ >= 0 && ::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
    static constexpr char kHalf[] = "GET /metrics HTTP/1.1\r\nHost: x\r\n";  // no blank line: never complete
    if (connected_) connected_ = ::send(fd_, kHalf, sizeof kHalf - 1, MSG_NOSIGNAL) > 0;
  }
  ~HalfOpen() {
    if (fd_ >= 0) ::close(fd_);
  }
  HalfOpen(const HalfOpen&) = delete;
  HalfOpen& operator=(const HalfOpen&) = delete;
  bool connected() const { return connected_; }

 private:
  int fd_;
  bool connected_ = false;
};

TEST_F(HostileMetricsTest, MetricsAnswersWhile200HalfOpenConnectionsAreHeld) {
  ASSERT_FALSE(GetPage("/metrics").empty());
  {
    std::vector<std::unique_ptr<HalfOpen>> held;
    for (int i = 0; i < 200; ++i) {
      held.push_back(std::make_unique<HalfOpen>(http_port_));
      ASSERT_TRUE(held.back()->connected()) << "connection " << i;
    }
    std::this_thread::sleep_for(300ms);  // let the server accept them all
    for (int round = 0; round < 3; ++round) {
      const auto started = std::chrono::steady_clock::now();
      const std::string page = GetPage("/metrics");  // gives up after 2 s
      const auto took = std::chrono::steady_clock::now() - started;
      EXPECT_NE(page.find("courier_metrics_uptime_seconds"), std::string::npos) << "round " << round;
      EXPECT_LT(took, 2s) << "round " << round;
    }
  }  // all 200 closed here
  // The server is still sound afterwards, and the collector still takes reports.
  EXPECT_FALSE(GetPage("/metrics.json").empty());
  EXPECT_EQ(Forge("courier.metrics", ForgedMetrics(Value::Array{ForgedStage(1, 1000)})), "");
}

}  // namespace
}  // namespace courier::test
