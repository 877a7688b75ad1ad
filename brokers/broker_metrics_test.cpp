// /metrics of courier-broker --http: the snapshot the loop takes, the page rendered from it
// and the HTTP server that serves it (/healthz's 503 path included).
#include <httplib.h>

#include <thread>

#include "broker_metrics.hpp"
#include "broker_test_fixture.hpp"
#include "metrics_http.hpp"
#include "prometheus/exposition_check.hpp"

namespace courier::broker::test {
namespace {

// Polls `condition` until it holds or `timeout` passes. Returns: whether it held.
template <typename Condition>
bool WaitUntil(Condition condition, std::chrono::milliseconds timeout) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < until) {
    if (condition()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return condition();
}

const ServiceMetrics* Find(const BrokerMetrics& metrics, const std::string& name) {
  for (const ServiceMetrics& service : metrics.services) {
    if (service.name == name) return &service;
  }
  return nullptr;
}

TEST_F(BrokerTest, MetricsCountEachServiceApart) {
  BrokerConfig config;
  config.services["small"].queue_limit = 1;
  Reset(config);
  CourierReady("W1", "work", 2);
  for (int i = 0; i < 3; ++i) Submit("C1", "work");
  Submit("C1", "small");
  Submit("C1", "small");  // refused busy: queue_limit 1
  BrokerMetrics metrics = broker_->MetricsSnapshot(At());
  const ServiceMetrics* work = Find(metrics, "work");
  ASSERT_NE(work, nullptr);
  EXPECT_EQ(work->accepted, 3u);
  EXPECT_EQ(work->dispatched, 2u);
  EXPECT_EQ(work->in_flight, 2u);
  EXPECT_EQ(work->queued, 1u);
  EXPECT_EQ(work->workers, 1u);
  EXPECT_GT(work->bytes, 0u);
  const ServiceMetrics* small = Find(metrics, "small");
  ASSERT_NE(small, nullptr);
  EXPECT_EQ(small->accepted, 1u);
  EXPECT_EQ(small->busy_rejections, 1u);
  EXPECT_EQ(small->workers, 0u);

  EXPECT_EQ(AnswerAll("W1"), 2u);  // frees credit: the third goes out
  EXPECT_EQ(AnswerAll("W1"), 1u);
  metrics = broker_->MetricsSnapshot(At());
  work = Find(metrics, "work");
  EXPECT_EQ(work->answered, 3u);
  EXPECT_EQ(work->queued, 0u);
  EXPECT_EQ(work->in_flight, 0u);
  EXPECT_EQ(work->bytes, 0u);
  EXPECT_EQ(metrics.counters.jobs_answered, 3u);
}

TEST_F(BrokerTest, MetricsCountExpiryRedeliveryAndDeadLettersPerService) {
  Submit("C1", "late", ReplyMode::kCall, 3, 500);
  CourierReady("W1", "flaky");
  Submit("C1", "flaky", ReplyMode::kCall, 2);
  EXPECT_EQ(Requests(outbox_.Take("W1")), 1u);
  Advance(600ms);  // the queued job of "late" expires
  Advance(3000ms);  // W1 silent → expired: its job comes back with attempt 2
  CourierReady("W2", "flaky");
  EXPECT_EQ(Requests(outbox_.Take("W2")), 1u);
  Advance(3000ms);  // W2 silent too: attempts exhausted → dead letter
  const BrokerMetrics metrics = broker_->MetricsSnapshot(At());
  const ServiceMetrics* late = Find(metrics, "late");
  ASSERT_NE(late, nullptr);
  EXPECT_EQ(late->expired, 1u);
  EXPECT_EQ(late->failed, 1u);
  const ServiceMetrics* flaky = Find(metrics, "flaky");
  ASSERT_NE(flaky, nullptr);
  EXPECT_EQ(flaky->redelivered, 1u);
  EXPECT_EQ(flaky->dead_lettered, 1u);
  EXPECT_EQ(flaky->dispatched, 2u);
  EXPECT_EQ(flaky->workers, 0u);
  const ServiceMetrics* sink = Find(metrics, "courier.errors");
  ASSERT_NE(sink, nullptr);
  EXPECT_EQ(sink->queued, 1u);  // the dead letter waits for the sink
  EXPECT_EQ(metrics.dead_letters_buffered, 1u);
  EXPECT_EQ(metrics.counters.crashes, 2u);
}

TEST_F(BrokerTest, MetricsPageIsValidTextFormatWithEscapedServiceNames) {
  CourierReady("W1", "we\"ird\\name");
  Submit("C1", "we\"ird\\name");
  AnswerAll("W1");
  Submit("C1", "idle");
  const BrokerMetrics metrics = broker_->MetricsSnapshot(At());
  const std::string page = RenderBrokerMetrics(metrics, metrics.taken + std::chrono::milliseconds(1500));
  const prometheus::ParsedPage parsed = prometheus::ParseExposition(page);
  ASSERT_TRUE(parsed.problems.empty()) << parsed.problems.front() << "\n" << page;
  EXPECT_NE(page.find("courier_broker_jobs_answered_total{service=\"we\\\"ird\\\\name\"} 1\n"), std::string::npos)
      << page;
  EXPECT_EQ(parsed.Value("courier_broker_jobs_accepted_total", {{"service", "we\"ird\\name"}}), 1.0);
  EXPECT_EQ(parsed.Value("courier_broker_jobs_queued", {{"service", "idle"}}), 1.0);
  EXPECT_EQ(parsed.Value("courier_broker_workers", {{"service", "idle"}}), 0.0);
  EXPECT_EQ(parsed.Value("courier_broker_snapshot_age_seconds"), 1.5);
  EXPECT_EQ(parsed.types.at("courier_broker_jobs_in_flight"), "gauge");
  EXPECT_EQ(parsed.types.at("courier_broker_crashes_total"), "counter");
  EXPECT_EQ(parsed.Count("courier_build_info"), 1u);
  EXPECT_EQ(parsed.Count("process_resident_memory_bytes"), 1u);
}

TEST(BrokerHealth, OkWhileTheSnapshotIsFreshOtherwise503) {
  const SteadyTime now = std::chrono::steady_clock::now();
  EXPECT_EQ(Health(std::nullopt, now, 3000ms).status, 503);
  EXPECT_EQ(Health(now - 2999ms, now, 3000ms).status, 200);
  EXPECT_EQ(Health(now - 2999ms, now, 3000ms).body, "ok\n");
  const HealthAnswer stale = Health(now - 3001ms, now, 3000ms);
  EXPECT_EQ(stale.status, 503);
  EXPECT_NE(stale.body.find("3001 ms ago"), std::string::npos) << stale.body;
}

TEST(BrokerMetricsHttp, ServesTheLastSnapshotAndTurnsUnhealthyWhenItAges) {
  MetricsHttp http("127.0.0.1:0", 300ms);
  const std::size_t colon = http.address().rfind(':');
  httplib::Client client("127.0.0.1", std::stoi(http.address().substr(colon + 1)));
  client.set_connection_timeout(2);
  client.set_read_timeout(2);
  auto health = client.Get("/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 503);  // nothing published yet
  EXPECT_EQ(client.Get("/metrics")->status, 503);

  auto metrics = std::make_shared<BrokerMetrics>();
  metrics->taken = std::chrono::steady_clock::now();
  metrics->services.push_back(ServiceMetrics{.name = "echo", .accepted = 7});
  http.Publish(metrics);
  health = client.Get("/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  EXPECT_EQ(health->body, "ok\n");
  const auto page = client.Get("/metrics");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  EXPECT_EQ(page->get_header_value("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
  const prometheus::ParsedPage parsed = prometheus::ParseExposition(page->body);
  EXPECT_TRUE(parsed.problems.empty()) << parsed.problems.front();
  EXPECT_EQ(parsed.Value("courier_broker_jobs_accepted_total", {{"service", "echo"}}), 7.0);
  EXPECT_EQ(client.Get("/nothing")->status, 404);

  // No publish since: a stuck loop. /healthz turns 503 once the snapshot is 300 ms old.
  EXPECT_TRUE(WaitUntil([&] {
    const auto answer = client.Get("/healthz");
    return answer && answer->status == 503 && answer->body.starts_with("stale:");
  }, 5s));
}

TEST(BrokerConfigHttp, ReadsAndChecksTheAddress) {
  EXPECT_EQ(BrokerConfig::Read(ConfigSection::Parse("", "broker")).http, "");
  EXPECT_EQ(BrokerConfig::Read(ConfigSection::Parse("http = \"127.0.0.1:0\"", "broker")).http, "127.0.0.1:0");
  EXPECT_THROW(BrokerConfig::Read(ConfigSection::Parse("http = \"9465\"", "broker")), Error);
}

}  // namespace
}  // namespace courier::broker::test
