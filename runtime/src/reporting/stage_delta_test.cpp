#include "stage_delta.hpp"

#include <gtest/gtest.h>

#include "histogram.hpp"
#include "stage_recorder.hpp"

namespace courier::detail {
namespace {

using std::chrono::nanoseconds;

TEST(StageDeltaTest, ReportsOnlyWhatChangedSinceTheLastCommit) {
  StageRecorder recorder;
  recorder.Record("echo", "handle", nanoseconds(1000));
  recorder.Record("echo", "handle", nanoseconds(3000));
  recorder.Record("echo", "open", nanoseconds(10));
  StageDelta delta;
  auto first = recorder.Totals();
  auto stages = delta.Compute(first);
  ASSERT_EQ(stages.size(), 2u);
  delta.Commit(first);

  recorder.Record("echo", "handle", nanoseconds(2000));
  recorder.RecordError("echo", "handle");
  stages = delta.Compute(recorder.Totals());
  ASSERT_EQ(stages.size(), 1u);  // "open" did not change
  const StageInterval& handle = stages[0];
  EXPECT_EQ(handle.stage, "handle");
  EXPECT_EQ(handle.count, 1u);
  EXPECT_EQ(handle.errors, 1u);
  EXPECT_EQ(handle.sum_ns, 2000u);
  // Min and max did not move: they come from the one bucket that changed.
  EXPECT_EQ(handle.buckets, (SparseBuckets{{static_cast<std::uint32_t>(LatencyBucket(2000)), 1}}));
  EXPECT_LE(handle.min_ns, 2000u);
  EXPECT_GE(handle.max_ns, 2000u);
  EXPECT_GE(handle.min_ns, LatencyBucketLower(LatencyBucket(2000)));
  EXPECT_LT(handle.max_ns, LatencyBucketUpper(LatencyBucket(2000)));
}

TEST(StageDeltaTest, NewExtremesAreExact) {
  StageRecorder recorder;
  recorder.Record("s", "handle", nanoseconds(500));
  StageDelta delta;
  delta.Commit(recorder.Totals());
  recorder.Record("s", "handle", nanoseconds(100));
  recorder.Record("s", "handle", nanoseconds(900));
  const auto stages = delta.Compute(recorder.Totals());
  ASSERT_EQ(stages.size(), 1u);
  EXPECT_EQ(stages[0].min_ns, 100u);
  EXPECT_EQ(stages[0].max_ns, 900u);
  EXPECT_EQ(stages[0].count, 2u);
}

TEST(StageDeltaTest, TotalsThatGoBackwardsCountAsFresh) {
  StageTotals big{"s", "handle", 10, 0, 1000, 1, 200, {}};
  StageDelta delta;
  delta.Commit({big});
  StageTotals restarted{"s", "handle", 2, 0, 30, 10, 20, {}};
  const auto stages = delta.Compute({restarted});
  ASSERT_EQ(stages.size(), 1u);
  EXPECT_EQ(stages[0].count, 2u);
  EXPECT_EQ(stages[0].sum_ns, 30u);
}

TEST(StageDeltaTest, ErrorsAloneAreReported) {
  StageTotals before{"s", "verify", 0, 0, 0, 0, 0, {}};
  StageDelta delta;
  delta.Commit({before});
  StageTotals after{"s", "verify", 0, 4, 0, 0, 0, {}};
  const auto stages = delta.Compute({after});
  ASSERT_EQ(stages.size(), 1u);
  EXPECT_EQ(stages[0].errors, 4u);
  EXPECT_EQ(stages[0].count, 0u);
}

}  // namespace
}  // namespace courier::detail
