#include "stage_stats.hpp"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace courier::detail {
namespace {

TEST(StageStats, AggregatesPerServiceAndStage) {
  StageStats stats;
  const std::size_t echo = stats.AddService("echo");
  const std::size_t other = stats.AddService("other");
  stats.Record(echo, Stage::kHandle, std::chrono::nanoseconds(100));
  stats.Record(echo, Stage::kHandle, std::chrono::nanoseconds(300));
  stats.RecordError(echo, Stage::kOpen);
  stats.Record(other, Stage::kSeal, std::chrono::nanoseconds(5));

  const std::vector<StageSummary> snapshot = stats.Snapshot();
  ASSERT_EQ(snapshot.size(), 2 * kStageCount);
  const StageSummary& handle = snapshot[static_cast<std::size_t>(Stage::kHandle)];
  EXPECT_EQ(handle.service, "echo");
  EXPECT_EQ(handle.stage, Stage::kHandle);
  EXPECT_EQ(handle.count, 2u);
  EXPECT_EQ(handle.sum.count(), 400);
  EXPECT_EQ(handle.min.count(), 100);
  EXPECT_EQ(handle.max.count(), 300);
  EXPECT_EQ(handle.buckets[LatencyBucket(100)], 1u);
  EXPECT_EQ(handle.buckets[LatencyBucket(300)], 1u);
  EXPECT_EQ(snapshot[static_cast<std::size_t>(Stage::kOpen)].errors, 1u);
  EXPECT_EQ(snapshot[static_cast<std::size_t>(Stage::kOpen)].min.count(), 0);  // nothing recorded
  EXPECT_EQ(snapshot[kStageCount + static_cast<std::size_t>(Stage::kSeal)].count, 1u);
  EXPECT_EQ(stats.Describe().size(), 2u);
}

TEST(StageStats, RecordingIsThreadSafe) {
  StageStats stats;
  const std::size_t service = stats.AddService("s");
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 1; i <= 10000; ++i) stats.Record(service, Stage::kParse, std::chrono::nanoseconds(i + t));
    });
  }
  for (auto& thread : threads) thread.join();
  const StageSummary parse = stats.Snapshot()[static_cast<std::size_t>(Stage::kParse)];
  EXPECT_EQ(parse.count, 40000u);
  EXPECT_EQ(parse.min.count(), 1);
  EXPECT_EQ(parse.max.count(), 10003);
  std::uint64_t total = 0;
  for (std::uint64_t b : parse.buckets) total += b;
  EXPECT_EQ(total, 40000u);
}

TEST(StageStats, InstancesOnOneThreadKeepTheirOwnShards) {
  StageStats a;
  StageStats b;
  const std::size_t in_a = a.AddService("a");
  const std::size_t in_b = b.AddService("b");
  for (int i = 0; i < 3; ++i) {
    a.Record(in_a, Stage::kKey, std::chrono::nanoseconds(10));
    b.Record(in_b, Stage::kKey, std::chrono::nanoseconds(20));
  }
  std::thread([&] { a.RecordError(in_a, Stage::kReplyVerify); }).join();
  EXPECT_EQ(a.Snapshot()[static_cast<std::size_t>(Stage::kKey)].count, 3u);
  EXPECT_EQ(a.Snapshot()[static_cast<std::size_t>(Stage::kKey)].sum.count(), 30);
  EXPECT_EQ(a.Snapshot()[static_cast<std::size_t>(Stage::kReplyVerify)].errors, 1u);
  EXPECT_EQ(b.Snapshot()[static_cast<std::size_t>(Stage::kKey)].sum.count(), 60);
  a.Record(7, Stage::kKey, std::chrono::nanoseconds(1));  // no such service: ignored
  EXPECT_EQ(a.Snapshot().size(), kStageCount);
}

TEST(Stage, NamesComeFromTheWireVocabulary) {
  EXPECT_EQ(ToString(Stage::kKey), "key");
  EXPECT_EQ(ToString(Stage::kOpen), "open");
  EXPECT_EQ(ToString(Stage::kReplyVerify), "reply_verify");
  EXPECT_EQ(ToString(Stage::kSend), "send");
  EXPECT_EQ(ToString(Stage::kErrorCapture), "error_capture");
  EXPECT_EQ(ToString(Stage::kErrorSend), "error_send");
}

}  // namespace
}  // namespace courier::detail
