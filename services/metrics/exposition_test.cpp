#include "exposition.hpp"

#include <gtest/gtest.h>
#include <httplib.h>

#include <map>

#include "metrics_service.hpp"
#include "prometheus/exposition_check.hpp"

namespace courier::metrics {
namespace {

using namespace std::chrono_literals;

detail::MetricsReport OneStage(std::string service, std::string stage, std::uint64_t count, std::uint64_t each_ns,
                               std::uint64_t errors = 0, std::string process = "worker") {
  detail::MetricsReport report;
  report.process = std::move(process);
  report.host = "h";
  report.pid = 7;
  report.instance = "h:7";
  report.interval_ms = 1000;
  detail::StageInterval interval;
  interval.service = std::move(service);
  interval.stage = std::move(stage);
  interval.count = count;
  interval.errors = errors;
  interval.sum_ns = count * each_ns;
  interval.min_ns = each_ns;
  interval.max_ns = each_ns;
  interval.buckets = {{static_cast<std::uint32_t>(detail::LatencyBucket(each_ns)), count}};
  report.stages.push_back(interval);
  return report;
}

// The strict reading every /metrics page is held to (prometheus/exposition_check.hpp).
void ExpectValidExposition(const std::string& text) {
  const prometheus::ParsedPage page = prometheus::ParseExposition(text);
  for (const std::string& problem : page.problems) ADD_FAILURE() << problem;
}

TEST(ExpositionTest, DurationBucketsTakeEachSampleAtOrBelowTheirBound) {
  EXPECT_EQ(DurationBucket(0), 0u);
  EXPECT_EQ(DurationBucket(10'000), 0u);  // le="1e-05" holds 10 µs itself
  EXPECT_EQ(DurationBucket(10'001), 1u);
  EXPECT_EQ(DurationBucket(1'000'000), 6u);  // 1 ms
  EXPECT_EQ(DurationBucket(10'000'000'000), kDurationBounds.size() - 1);
  EXPECT_EQ(DurationBucket(10'000'000'001), kDurationBounds.size());  // above 10 s: +Inf only
}

TEST(ExpositionTest, DurationHistogramIsCumulativeSinceStartAndEndsAtTheCount) {
  const Clock::time_point start{};
  StageTable table(100, start);
  auto bucket = [&](const std::string& le, Clock::time_point at) {
    const prometheus::ParsedPage page = prometheus::ParseExposition(PrometheusText(table, at));
    EXPECT_TRUE(page.problems.empty()) << page.problems.front();
    return page.Value("courier_stage_duration_seconds_bucket",
                      {{"service", "echo"}, {"process", "worker"}, {"stage", "handle"}, {"le", le}});
  };
  // 0.9 ms: its log bucket [786 µs, 918 µs) lies below 1 ms. 0.95 ms: its log bucket
  // [918 µs, 1049 µs) straddles 1 ms, so it is counted under 2.5 ms (never under a bound
  // below the sample).
  table.Add(JobId::Random(), OneStage("echo", "handle", 3, 900'000), start + 100ms);
  table.Add(JobId::Random(), OneStage("echo", "handle", 2, 950'000), start + 200ms);
  EXPECT_EQ(bucket("0.0005", start + 1s), 0.0);
  EXPECT_EQ(bucket("0.001", start + 1s), 3.0);
  EXPECT_EQ(bucket("0.0025", start + 1s), 5.0);
  EXPECT_EQ(bucket("+Inf", start + 1s), 5.0);
  // A stage entry without a histogram: all its samples under the bound of its mean (3 ms).
  detail::MetricsReport bare = OneStage("echo", "handle", 4, 3'000'000);
  bare.stages[0].buckets.clear();
  table.Add(JobId::Random(), bare, start + 300ms);
  // Long after the windows: the histogram still holds everything since the start.
  const Clock::time_point later = start + 10min;
  EXPECT_EQ(bucket("0.0025", later), 5.0);
  EXPECT_EQ(bucket("0.005", later), 9.0);
  EXPECT_EQ(bucket("+Inf", later), 9.0);
  const prometheus::ParsedPage page = prometheus::ParseExposition(PrometheusText(table, later));
  EXPECT_EQ(page.Value("courier_stage_duration_seconds_count", {{"service", "echo"}, {"stage", "handle"}}), 9.0);
  EXPECT_EQ(page.types.at("courier_stage_duration_seconds"), "histogram");
  EXPECT_EQ(page.Count("courier_stage_duration_seconds_bucket"), kDurationBounds.size() + 1);
}

TEST(ExpositionTest, PrometheusTextIsWellFormedAndHasTheNumbers) {
  const Clock::time_point start{};
  StageTable table(100, start);
  table.Add(JobId::Random(), OneStage("echo", "handle", 100, 20'000'000, 5), start + 500ms);
  table.Add(JobId::Random(), OneStage("we\"ird\\name\n", "open", 1, 1000), start + 500ms);
  const std::string text = PrometheusText(table, start + 1s);
  ExpectValidExposition(text);
  EXPECT_NE(text.find("# TYPE courier_stage_duration_seconds histogram"), std::string::npos);
  EXPECT_NE(
      text.find("courier_stage_duration_seconds_count{service=\"echo\",process=\"worker\",stage=\"handle\"} 100\n"),
      std::string::npos);
  EXPECT_NE(text.find("courier_stage_duration_seconds_sum{service=\"echo\",process=\"worker\",stage=\"handle\"} 2\n"),
            std::string::npos);
  // 20 ms sits in the log bucket [18.87 ms, 20.97 ms): counted under le="0.025", cumulative above.
  EXPECT_NE(text.find("courier_stage_duration_seconds_bucket{service=\"echo\",process=\"worker\",stage=\"handle\","
                      "le=\"0.01\"} 0\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("courier_stage_duration_seconds_bucket{service=\"echo\",process=\"worker\",stage=\"handle\","
                      "le=\"0.025\"} 100\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("courier_stage_duration_seconds_bucket{service=\"echo\",process=\"worker\",stage=\"handle\","
                      "le=\"+Inf\"} 100\n"),
            std::string::npos);
  EXPECT_NE(text.find("courier_stage_window_quantile_seconds{service=\"echo\",process=\"worker\",stage=\"handle\","
                      "window=\"1m\",quantile=\"0.5\"}"),
            std::string::npos);
  EXPECT_NE(text.find("courier_build_info{program=\"courier-metrics\""), std::string::npos);
  EXPECT_NE(text.find("process_resident_memory_bytes "), std::string::npos);
  EXPECT_NE(text.find("courier_stage_window_mean_seconds{service=\"echo\",process=\"worker\",stage=\"handle\",window="
                      "\"10s\"} 0.02\n"),
            std::string::npos);
  EXPECT_NE(text.find("courier_stage_errors_total{service=\"echo\",process=\"worker\",stage=\"handle\"} 5\n"),
            std::string::npos);
  EXPECT_NE(text.find("service=\"we\\\"ird\\\\name\\n\""), std::string::npos);
}

TEST(ExpositionTest, EmptyTableStillExposesTheCollectorsOwnMetrics) {
  StageTable table;
  const std::string text = PrometheusText(table, Clock::now());
  ExpectValidExposition(text);
  EXPECT_NE(text.find("courier_metrics_reports_total 0\n"), std::string::npos);
}

TEST(ExpositionTest, StatsValueCarriesEveryWindow) {
  const Clock::time_point start{};
  StageTable table(100, start);
  table.Add(JobId::Random(), OneStage("echo", "handle", 4, 1'000'000), start);
  const Value stats = StatsValue(table, start + 1s);
  EXPECT_EQ(stats.At("reports").AsUint(), 1u);
  const Value& stage = stats.At("stages").AsArray().at(0);
  EXPECT_EQ(stage.At("service").AsString(), "echo");
  EXPECT_EQ(stage.At("process").AsString(), "worker");
  EXPECT_EQ(stage.At("stage").AsString(), "handle");
  for (std::string_view window : kWindowNames) {
    const Value& w = stage.At("windows").At(window);
    EXPECT_EQ(w.At("count").AsUint(), 4u) << window;
    EXPECT_DOUBLE_EQ(w.At("mean_ns").AsDouble(), 1e6) << window;
    EXPECT_DOUBLE_EQ(w.At("p99_ns").AsDouble(), 1e6) << window;
  }
  EXPECT_EQ(stats.At("reporters").AsArray().at(0).At("instance").AsString(), "h:7");
}

TEST(ExpositionTest, AClientAndAWorkerSealOfOneServiceAreSeparateSeries) {
  const Clock::time_point start{};
  StageTable table(100, start);
  table.Add(JobId::Random(), OneStage("echo", "seal", 10, 2'000, 0, "client"), start + 500ms);
  table.Add(JobId::Random(), OneStage("echo", "seal", 30, 50'000, 1, "worker"), start + 500ms);
  const std::string text = PrometheusText(table, start + 1s);
  ExpectValidExposition(text);
  EXPECT_NE(text.find("courier_stage_duration_seconds_count{service=\"echo\",process=\"client\",stage=\"seal\"} 10\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("courier_stage_duration_seconds_count{service=\"echo\",process=\"worker\",stage=\"seal\"} 30\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("courier_stage_window_mean_seconds{service=\"echo\",process=\"client\",stage=\"seal\","
                      "window=\"all\"} 2e-06\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("courier_stage_window_mean_seconds{service=\"echo\",process=\"worker\",stage=\"seal\","
                      "window=\"all\"} 5e-05\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("courier_stage_errors_total{service=\"echo\",process=\"client\",stage=\"seal\"} 0\n"),
            std::string::npos);
  EXPECT_NE(text.find("courier_stage_errors_total{service=\"echo\",process=\"worker\",stage=\"seal\"} 1\n"),
            std::string::npos);
  EXPECT_NE(text.find("courier_metrics_series 2\n"), std::string::npos);

  const Value stats = StatsValue(table, start + 1s);
  const auto& rows = stats.At("stages").AsArray();
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows.at(0).At("process").AsString(), "client");  // client before worker
  EXPECT_EQ(rows.at(0).At("stage").AsString(), "seal");
  EXPECT_EQ(rows.at(0).At("windows").At("all").At("count").AsUint(), 10u);
  EXPECT_EQ(rows.at(1).At("process").AsString(), "worker");
  EXPECT_EQ(rows.at(1).At("stage").AsString(), "seal");
  EXPECT_EQ(rows.at(1).At("windows").At("all").At("count").AsUint(), 30u);
}

TEST(ExpositionTest, EveryStageCarriesTheDesignsGroup) {
  const Clock::time_point start{};
  StageTable table(100, start);
  table.Add(JobId::Random(), OneStage("echo", "reply_verify", 3, 1000), start + 500ms);
  table.Add(JobId::Random(), OneStage("*", "lb_monitor", 2, 1000, 0, "broker"), start + 500ms);
  table.Add(JobId::Random(), OneStage("echo", "made_up", 1, 1000), start + 500ms);
  const std::string text = PrometheusText(table, start + 1s);
  ExpectValidExposition(text);
  EXPECT_NE(text.find("courier_stage_group_info{process=\"worker\",stage=\"reply_verify\",group=\"response\"} 1\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("courier_stage_group_info{process=\"broker\",stage=\"lb_monitor\",group=\"load_balancing\"} 1\n"),
            std::string::npos);
  EXPECT_NE(text.find("courier_stage_group_info{process=\"worker\",stage=\"made_up\",group=\"other\"} 1\n"),
            std::string::npos);
  std::map<std::string, std::string> groups;
  const Value stats = StatsValue(table, start + 1s);
  for (const Value& row : stats.At("stages").AsArray()) {
    groups[row.At("stage").AsString()] = row.At("group").AsString();
  }
  EXPECT_EQ(groups["reply_verify"], "response");
  EXPECT_EQ(groups["lb_monitor"], "load_balancing");
  EXPECT_EQ(groups["made_up"], "other");
}

TEST(MetricsServiceTest, ServesHttpAndQueries) {
  MetricsService service(ConfigSection::Parse("http = \"127.0.0.1:0\"\n", "test"));
  ASSERT_FALSE(service.http_address().empty());
  const Value added = service.Handle(DecodeValue(detail::EncodeMetricsReport(OneStage("echo", "handle", 3, 5000))),
                                     JobContext());
  EXPECT_TRUE(added.At("added").AsBool());
  EXPECT_EQ(service.Handle(Value::Object({{"op", "stats"}}), JobContext()).At("stages").size(), 1u);
  EXPECT_THROW(service.Handle(Value::Object({{"op", "nope"}}), JobContext()), Error);
  EXPECT_THROW(service.Handle(Value(3), JobContext()), Error);

  const std::size_t colon = service.http_address().rfind(':');
  httplib::Client client(service.http_address().substr(0, colon), std::stoi(service.http_address().substr(colon + 1)));
  client.set_read_timeout(5, 0);
  auto page = client.Get("/metrics");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  EXPECT_NE(page->get_header_value("Content-Type").find("text/plain; version=0.0.4"), std::string::npos);
  ExpectValidExposition(page->body);
  EXPECT_NE(
      page->body.find("courier_stage_duration_seconds_count{service=\"echo\",process=\"worker\",stage=\"handle\"} 3"),
      std::string::npos);
  auto json = client.Get("/metrics.json");
  ASSERT_TRUE(json);
  EXPECT_EQ(json->status, 200);
  const Value from_json = FromJson(json->body);
  EXPECT_EQ(from_json.At("stages").AsArray().at(0).At("stage").AsString(), "handle");
  EXPECT_EQ(from_json.At("stages").AsArray().at(0).At("process").AsString(), "worker");
  auto missing = client.Get("/nope");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
}

TEST(MetricsServiceTest, HttpCanBeOffAndBadAddressesAreConfigErrors) {
  MetricsService off(ConfigSection::Parse("http = \"\"\n", "test"));
  EXPECT_TRUE(off.http_address().empty());
  EXPECT_THROW(MetricsService(ConfigSection::Parse("http = \"nonsense\"\n", "test")), Error);
  EXPECT_THROW(MetricsService(ConfigSection::Parse("http = \"127.0.0.1:99999\"\n", "test")), Error);
  EXPECT_THROW(MetricsService(ConfigSection::Parse("htp = \"x\"\n", "test")), Error);
}

}  // namespace
}  // namespace courier::metrics
