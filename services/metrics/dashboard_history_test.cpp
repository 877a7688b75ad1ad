#include "dashboard_history.hpp"

#include <gtest/gtest.h>

#include "reporting/histogram.hpp"

namespace courier::metrics {
namespace {

detail::MetricsReport Report(const std::string& service, const std::string& stage, std::uint64_t count,
                             std::uint64_t each_ns, std::uint64_t errors = 0) {
  detail::StageInterval interval;
  interval.service = service;
  interval.stage = stage;
  interval.count = count;
  interval.errors = errors;
  interval.sum_ns = count * each_ns;
  interval.min_ns = count == 0 ? 0 : each_ns;
  interval.max_ns = count == 0 ? 0 : each_ns;
  if (count > 0) interval.buckets = {{static_cast<std::uint32_t>(detail::LatencyBucket(each_ns)), count}};
  detail::MetricsReport report;
  report.process = "worker";
  report.host = "h";
  report.pid = 1;
  report.interval_ms = 1000;
  report.stages = {interval};
  return report;
}

TEST(DashboardHistoryTest, BucketsSubtract) {
  EXPECT_EQ(SubtractBuckets({{1, 5}, {3, 2}, {7, 9}}, {{1, 5}, {3, 1}}), (detail::SparseBuckets{{3, 1}, {7, 9}}));
  EXPECT_EQ(SubtractBuckets({{2, 1}}, {}), (detail::SparseBuckets{{2, 1}}));
  EXPECT_TRUE(SubtractBuckets({{2, 1}}, {{2, 1}}).empty());
}

TEST(DashboardHistoryTest, EachPointIsThatSecondsCountMeanAndP99) {
  const auto start = Clock::now();
  StageTable table(100, start);
  StageHistory history;
  table.Add(JobId::Random(), Report("echo", "handle", 10, 1000), start);
  history.Sample(table.Snapshot(start), 1000);
  table.Add(JobId::Random(), Report("echo", "handle", 30, 2'000'000, 3), start + std::chrono::seconds(1));
  history.Sample(table.Snapshot(start + std::chrono::seconds(1)), 2000);
  history.Sample(table.Snapshot(start + std::chrono::seconds(2)), 3000);  // a quiet second

  const Value chart = history.ServiceValue("echo");
  ASSERT_EQ(chart.At("t").size(), 3u);
  EXPECT_EQ(chart.At("t").AsArray()[2].AsInt(), 3000);
  ASSERT_EQ(chart.At("series").size(), 1u);
  const Value& series = chart.At("series").AsArray()[0];
  EXPECT_EQ(series.At("process").AsString(), "worker");
  EXPECT_EQ(series.At("stage").AsString(), "handle");
  EXPECT_EQ(series.At("count").AsArray()[0].AsUint(), 10u);
  EXPECT_EQ(series.At("count").AsArray()[1].AsUint(), 30u);  // not the running total of 40
  EXPECT_EQ(series.At("count").AsArray()[2].AsUint(), 0u);
  EXPECT_EQ(series.At("errors").AsArray()[1].AsUint(), 3u);
  EXPECT_DOUBLE_EQ(series.At("mean_ns").AsArray()[0].AsDouble(), 1000.0);
  EXPECT_DOUBLE_EQ(series.At("mean_ns").AsArray()[1].AsDouble(), 2'000'000.0);
  EXPECT_TRUE(series.At("mean_ns").AsArray()[2].IsNil());  // nothing completed
  // The second's p99 comes from that second's buckets only: near 2 ms, not 1 µs.
  const double p99 = series.At("p99_ns").AsArray()[1].AsDouble();
  EXPECT_GT(p99, 1'600'000.0);
  EXPECT_LT(p99, 2'400'000.0);
  EXPECT_TRUE(history.ServiceValue("other").At("series").AsArray().empty());
}

TEST(DashboardHistoryTest, ALaterSeriesIsPaddedAndOldPointsAge) {
  const auto start = Clock::now();
  StageTable table(100, start);
  StageHistory history;
  history.Sample(table.Snapshot(start), 0);
  table.Add(JobId::Random(), Report("echo", "open", 1, 500), start);
  history.Sample(table.Snapshot(start), 1000);
  const Value chart = history.ServiceValue("echo");
  const Value& series = chart.At("series").AsArray()[0];
  ASSERT_EQ(series.At("count").size(), 2u);
  EXPECT_TRUE(series.At("count").AsArray()[0].IsNil());
  EXPECT_EQ(series.At("count").AsArray()[1].AsUint(), 1u);
  for (std::size_t i = 0; i < StageHistory::kPoints + 10; ++i) history.Sample(table.Snapshot(start), 2000 + static_cast<std::int64_t>(i));
  const Value later = history.ServiceValue("echo");
  EXPECT_EQ(later.At("t").size(), StageHistory::kPoints);
  EXPECT_EQ(later.At("series").AsArray()[0].At("count").size(), StageHistory::kPoints);
}

TEST(DashboardHistoryTest, SeriesAreBounded) {
  const auto start = Clock::now();
  StageTable table(100, start);
  StageHistory history(1);
  table.Add(JobId::Random(), Report("a", "open", 1, 500), start);
  table.Add(JobId::Random(), Report("b", "open", 1, 500), start);
  history.Sample(table.Snapshot(start), 0);
  EXPECT_EQ(history.ServiceValue("a").At("series").size(), 1u);
  EXPECT_EQ(history.ServiceValue("b").At("series").size(), 0u);
}

}  // namespace
}  // namespace courier::metrics
