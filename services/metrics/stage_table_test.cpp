#include "stage_table.hpp"

#include <gtest/gtest.h>

namespace courier::metrics {
namespace {

using namespace std::chrono_literals;

detail::StageInterval Stage(std::string service, std::string stage, std::uint64_t count, std::uint64_t each_ns,
                            std::uint64_t errors = 0) {
  detail::StageInterval interval;
  interval.service = std::move(service);
  interval.stage = std::move(stage);
  interval.count = count;
  interval.errors = errors;
  interval.sum_ns = count * each_ns;
  interval.min_ns = count == 0 ? 0 : each_ns;
  interval.max_ns = count == 0 ? 0 : each_ns;
  if (count > 0) interval.buckets = {{static_cast<std::uint32_t>(detail::LatencyBucket(each_ns)), count}};
  return interval;
}

detail::MetricsReport Report(std::string instance, std::vector<detail::StageInterval> stages,
                             std::string process = "worker") {
  detail::MetricsReport report;
  report.process = std::move(process);
  report.host = "h";
  report.pid = 1;
  report.instance = std::move(instance);
  report.interval_ms = 1000;
  report.stages = std::move(stages);
  return report;
}

const SeriesView* Find(const std::vector<SeriesView>& views, std::string_view service, std::string_view stage,
                       std::string_view process = "worker") {
  for (const SeriesView& view : views) {
    if (view.service == service && view.process == process && view.stage == stage) return &view;
  }
  return nullptr;
}

TEST(StageTableTest, MeanIsWeightedByCountsAcrossReporters) {
  const Clock::time_point start{};
  StageTable table(100, start);
  // Worker A: 100 jobs of 10 ms; worker B: 300 jobs of 20 ms. Mean of means would be 15 ms;
  // the right answer is (100·10 + 300·20) / 400 = 17.5 ms.
  table.Add(JobId::Random(), Report("a", {Stage("svc", "handle", 100, 10'000'000)}), start + 1500ms);
  table.Add(JobId::Random(), Report("b", {Stage("svc", "handle", 300, 20'000'000)}), start + 1600ms);
  const auto views = table.Snapshot(start + 2s);
  const SeriesView* handle = Find(views, "svc", "handle");
  ASSERT_NE(handle, nullptr);
  for (std::size_t w = 0; w < kWindows; ++w) {
    EXPECT_DOUBLE_EQ(*handle->windows[w].mean_ns(), 17'500'000.0) << kWindowNames[w];
    EXPECT_EQ(handle->windows[w].count, 400u);
    EXPECT_EQ(handle->windows[w].min_ns, 10'000'000u);
    EXPECT_EQ(handle->windows[w].max_ns, 20'000'000u);
  }
  // p50 lies among B's 20 ms jobs, p10 among A's.
  EXPECT_NEAR(*handle->windows[kWindow1m].quantile_ns(0.5), 20e6, 20e6 * 0.2);
  EXPECT_NEAR(*handle->windows[kWindow1m].quantile_ns(0.1), 10e6, 10e6 * 0.2);
  EXPECT_EQ(table.Reporters(start + 2s).size(), 2u);
}

// Seen in `courier metrics`: "p90 1ns ... max 0ns" for a stage whose every job took 0 ns
// (EstimateQuantile interpolated inside bucket 0 and skipped its clamp for max 0).
TEST(StageTableTest, QuantilesNeverExceedTheMaximum) {
  const Clock::time_point start{};
  StageTable table(100, start);
  table.Add(JobId::Random(), Report("a", {Stage("s", "lb_strategy", 50, 0)}, "broker"), start + 1s);
  // Buckets that disagree with the reported range (a reporter's rounding): 1000 ns jobs
  // whose max says 900.
  detail::StageInterval odd = Stage("s", "dispatch", 10, 1000);
  odd.max_ns = 900;
  odd.min_ns = 800;
  table.Add(JobId::Random(), Report("a", {odd}, "broker"), start + 1s);
  const auto views = table.Snapshot(start + 2s);
  for (std::string_view stage : {"lb_strategy", "dispatch"}) {
    const SeriesView* view = Find(views, "s", stage, "broker");
    ASSERT_NE(view, nullptr) << stage;
    for (std::size_t w = 0; w < kWindows; ++w) {
      const WindowStats& window = view->windows[w];
      const double p50 = *window.quantile_ns(0.5);
      const double p90 = *window.quantile_ns(0.9);
      const double p99 = *window.quantile_ns(0.99);
      EXPECT_LE(p50, p90) << stage << " " << kWindowNames[w];
      EXPECT_LE(p90, p99) << stage << " " << kWindowNames[w];
      EXPECT_LE(p99, static_cast<double>(window.max_ns)) << stage << " " << kWindowNames[w];
      EXPECT_GE(p50, static_cast<double>(window.min_ns)) << stage << " " << kWindowNames[w];
    }
  }
  EXPECT_EQ(*Find(views, "s", "lb_strategy", "broker")->windows[kWindow1m].quantile_ns(0.9), 0.0);
  // A window without completions has no quantiles.
  table.Add(JobId::Random(), Report("a", {Stage("s", "open", 0, 0, 3)}), start + 1s);
  EXPECT_FALSE(Find(table.Snapshot(start + 2s), "s", "open")->windows[kWindow1m].quantile_ns(0.5));
}

TEST(StageTableTest, WindowsSlideAndTotalsStay) {
  const Clock::time_point start{};
  StageTable table(100, start);
  table.Add(JobId::Random(), Report("a", {Stage("s", "handle", 10, 1000)}), start + 1s);
  table.Add(JobId::Random(), Report("a", {Stage("s", "handle", 20, 3000)}), start + 100s);
  const auto views = table.Snapshot(start + 100s + 500ms);
  const SeriesView& s = *Find(views, "s", "handle");
  EXPECT_EQ(s.windows[kWindow10s].count, 20u);
  EXPECT_EQ(s.windows[kWindow1m].count, 20u);
  EXPECT_EQ(s.windows[kWindow5m].count, 30u);
  EXPECT_EQ(s.windows[kWindowAll].count, 30u);
  EXPECT_DOUBLE_EQ(*s.windows[kWindow10s].mean_ns(), 3000.0);
  EXPECT_DOUBLE_EQ(*s.windows[kWindow5m].mean_ns(), (10.0 * 1000 + 20.0 * 3000) / 30);
  // After five more minutes only the since-start totals remember anything.
  const auto later = table.Snapshot(start + 500s);
  const SeriesView& l = *Find(later, "s", "handle");
  EXPECT_EQ(l.windows[kWindow5m].count, 0u);
  EXPECT_FALSE(l.windows[kWindow5m].mean_ns().has_value());
  EXPECT_EQ(l.windows[kWindowAll].count, 30u);
  // A ring slot reused 300 s later does not mix old and new seconds.
  table.Add(JobId::Random(), Report("a", {Stage("s", "handle", 1, 5000)}), start + 401s);
  const auto reused = table.Snapshot(start + 401s);
  EXPECT_EQ(Find(reused, "s", "handle")->windows[kWindow10s].count, 1u);
}

TEST(StageTableTest, RatesAndErrorRatios) {
  const Clock::time_point start{};
  StageTable table(100, start);
  for (int second = 0; second < 20; ++second) {
    table.Add(JobId::Random(), Report("a", {Stage("s", "verify", 9, 1000, 1)}), start + std::chrono::seconds(second));
  }
  const auto views = table.Snapshot(start + 20s);
  const WindowStats& ten = Find(views, "s", "verify")->windows[kWindow10s];
  EXPECT_NEAR(ten.rate(), 9.0, 1.0);
  EXPECT_DOUBLE_EQ(ten.error_ratio(), 0.1);
  const WindowStats& all = Find(views, "s", "verify")->windows[kWindowAll];
  EXPECT_DOUBLE_EQ(all.rate(), 9.0);
  EXPECT_EQ(all.errors, 20u);
}

TEST(StageTableTest, DuplicatesAndTooManySeriesAreCounted) {
  const Clock::time_point start{};
  StageTable table(2, start);
  const JobId id = JobId::Random();
  EXPECT_TRUE(table.Add(id, Report("a", {Stage("s", "open", 1, 10)}), start));
  EXPECT_FALSE(table.Add(id, Report("a", {Stage("s", "open", 1, 10)}), start));
  table.Add(JobId::Random(), Report("a", {Stage("s", "parse", 1, 10), Stage("s", "verify", 1, 10)}), start);
  const TableCounters counters = table.counters(start + 1s);
  EXPECT_EQ(counters.duplicates, 1u);
  EXPECT_EQ(counters.series, 2u);
  EXPECT_EQ(counters.series_dropped, 1u);
  EXPECT_EQ(Find(table.Snapshot(start + 1s), "s", "open")->windows[kWindowAll].count, 1u);
}

TEST(StageTableTest, StagesSortInJobOrder) {
  const Clock::time_point start{};
  StageTable table(100, start);
  table.Add(JobId::Random(),
            Report("a", {Stage("s", "send", 1, 1), Stage("s", "open", 1, 1), Stage("s", "handle", 1, 1),
                         Stage("s", "zzz", 1, 1), Stage("s", "seal", 1, 1), Stage("s", "aaa", 1, 1)}),
            start);
  const auto views = table.Snapshot(start);
  std::vector<std::string> order;
  for (const auto& view : views) order.push_back(view.stage);
  EXPECT_EQ(order, (std::vector<std::string>{"open", "handle", "seal", "send", "aaa", "zzz"}));
}

TEST(StageTableTest, SameStageOfDifferentProcessesStaysSeparate) {
  const Clock::time_point start{};
  StageTable table(100, start);
  // A client seals requests in 2 µs and opens replies in 1 µs; a worker seals replies in
  // 50 µs and opens requests in 40 µs. Merged, both "seal" and "open" would mean nothing.
  table.Add(JobId::Random(),
            Report("c", {Stage("echo", "seal", 10, 2'000), Stage("echo", "open", 10, 1'000)}, "client"), start + 500ms);
  table.Add(JobId::Random(),
            Report("w", {Stage("echo", "seal", 30, 50'000), Stage("echo", "open", 30, 40'000)}, "worker"),
            start + 600ms);
  const auto views = table.Snapshot(start + 1s);
  ASSERT_EQ(views.size(), 4u);
  EXPECT_EQ(table.counters(start + 1s).series, 4u);
  const SeriesView* client_seal = Find(views, "echo", "seal", "client");
  const SeriesView* worker_seal = Find(views, "echo", "seal", "worker");
  ASSERT_NE(client_seal, nullptr);
  ASSERT_NE(worker_seal, nullptr);
  for (std::size_t w = 0; w < kWindows; ++w) {
    EXPECT_EQ(client_seal->windows[w].count, 10u) << kWindowNames[w];
    EXPECT_DOUBLE_EQ(*client_seal->windows[w].mean_ns(), 2'000.0) << kWindowNames[w];
    EXPECT_EQ(worker_seal->windows[w].count, 30u) << kWindowNames[w];
    EXPECT_DOUBLE_EQ(*worker_seal->windows[w].mean_ns(), 50'000.0) << kWindowNames[w];
  }
  EXPECT_EQ(client_seal->windows[kWindowAll].max_ns, 2'000u);
  EXPECT_EQ(worker_seal->windows[kWindowAll].min_ns, 50'000u);
  EXPECT_DOUBLE_EQ(*Find(views, "echo", "open", "client")->windows[kWindowAll].mean_ns(), 1'000.0);
  EXPECT_DOUBLE_EQ(*Find(views, "echo", "open", "worker")->windows[kWindowAll].mean_ns(), 40'000.0);
}

TEST(StageTableTest, SortsByServiceThenProcessInPipelineOrderThenStage) {
  const Clock::time_point start{};
  StageTable table(100, start);
  // Added out of order on purpose: worker first, then an unknown process, broker, client.
  table.Add(JobId::Random(),
            Report("w",
                   {Stage("echo", "send", 1, 1), Stage("echo", "seal", 1, 1), Stage("echo", "open", 1, 1),
                    Stage("echo", "custom", 1, 1), Stage("echo", "handle", 1, 1), Stage("alpha", "handle", 1, 1)},
                   "worker"),
            start);
  table.Add(JobId::Random(), Report("x", {Stage("echo", "tick", 1, 1), Stage("echo", "open", 1, 1)}, "agent"), start);
  table.Add(JobId::Random(),
            Report("b", {Stage("echo", "dispatch", 1, 1), Stage("echo", "queue_wait", 1, 1)}, "broker"), start);
  table.Add(JobId::Random(),
            Report("c",
                   {Stage("echo", "decode", 1, 1), Stage("echo", "open", 1, 1), Stage("echo", "round_trip", 1, 1),
                    Stage("echo", "seal", 1, 1), Stage("echo", "encode", 1, 1), Stage("echo", "extra", 1, 1)},
                   "client"),
            start);
  std::vector<std::string> order;
  for (const SeriesView& view : table.Snapshot(start)) {
    order.push_back(view.service + "/" + view.process + "/" + view.stage);
  }
  EXPECT_EQ(order, (std::vector<std::string>{
                       "alpha/worker/handle",                                                                   //
                       "echo/client/encode", "echo/client/seal", "echo/client/round_trip", "echo/client/open",  //
                       "echo/client/decode", "echo/client/extra",                                               //
                       "echo/broker/queue_wait", "echo/broker/dispatch",                                        //
                       "echo/worker/open", "echo/worker/handle", "echo/worker/seal", "echo/worker/send",        //
                       "echo/worker/custom",                                                                    //
                       "echo/agent/open", "echo/agent/tick"}));
  EXPECT_LT(ProcessOrder("client"), ProcessOrder("broker"));
  EXPECT_LT(ProcessOrder("broker"), ProcessOrder("worker"));
  EXPECT_LT(ProcessOrder("worker"), ProcessOrder("agent"));
  EXPECT_LT(StageOrder("client", "round_trip"), StageOrder("client", "open"));
  EXPECT_LT(StageOrder("worker", "open"), StageOrder("worker", "seal"));
  EXPECT_EQ(StageOrder("broker", "seal"), StageOrder("broker", "nonsense"));
}

TEST(StageTableTest, MaxSeriesCountsProcessesApart) {
  const Clock::time_point start{};
  StageTable table(2, start);
  table.Add(JobId::Random(), Report("c", {Stage("echo", "seal", 1, 10)}, "client"), start);
  table.Add(JobId::Random(), Report("w", {Stage("echo", "seal", 1, 10)}, "worker"), start);
  // A third (service, process, stage) does not fit; the two existing ones still grow.
  table.Add(JobId::Random(), Report("b", {Stage("echo", "seal", 1, 10)}, "broker"), start);
  table.Add(JobId::Random(), Report("w", {Stage("echo", "seal", 2, 10)}, "worker"), start);
  const TableCounters counters = table.counters(start + 1s);
  EXPECT_EQ(counters.series, 2u);
  EXPECT_EQ(counters.series_dropped, 1u);
  const auto views = table.Snapshot(start + 1s);
  EXPECT_EQ(Find(views, "echo", "seal", "broker"), nullptr);
  EXPECT_EQ(Find(views, "echo", "seal", "worker")->windows[kWindowAll].count, 3u);
  EXPECT_EQ(Find(views, "echo", "seal", "client")->windows[kWindowAll].count, 1u);
}

}  // namespace
}  // namespace courier::metrics
