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

detail::MetricsReport Report(std::string instance, std::vector<detail::StageInterval> stages) {
  detail::MetricsReport report;
  report.process = "worker";
  report.host = "h";
  report.pid = 1;
  report.instance = std::move(instance);
  report.interval_ms = 1000;
  report.stages = std::move(stages);
  return report;
}

const SeriesView* Find(const std::vector<SeriesView>& views, std::string_view service, std::string_view stage) {
  for (const SeriesView& view : views) {
    if (view.service == service && view.stage == stage) return &view;
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
                         Stage("s", "zzz", 1, 1), Stage("s", "round_trip", 1, 1)}),
            start);
  const auto views = table.Snapshot(start);
  std::vector<std::string> order;
  for (const auto& view : views) order.push_back(view.stage);
  EXPECT_EQ(order, (std::vector<std::string>{"round_trip", "open", "handle", "send", "zzz"}));
}

}  // namespace
}  // namespace courier::metrics
