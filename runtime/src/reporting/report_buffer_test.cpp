#include "report_buffer.hpp"

#include <gtest/gtest.h>

#include <thread>

namespace courier::detail {
namespace {

ErrorReport Numbered(int n) {
  ErrorReport report;
  report.message = "report " + std::to_string(n);
  return report;
}

TEST(ReportBufferTest, OverflowIsDroppedCountedAndAnnouncedOnce) {
  ReportBuffer buffer(3);
  for (int i = 0; i < 5; ++i) buffer.Push(Numbered(i));
  EXPECT_EQ(buffer.size(), 3u);
  EXPECT_EQ(buffer.total_dropped(), 2u);
  ReportBuffer::Batch batch = buffer.Take(10, 1 << 20);
  ASSERT_EQ(batch.reports.size(), 3u);
  EXPECT_EQ(batch.reports[0].message, "report 0");  // oldest first; the newest were dropped
  EXPECT_EQ(batch.dropped, 2u);
  EXPECT_EQ(buffer.Take(10, 1 << 20).dropped, 0u);  // announced once
  EXPECT_EQ(buffer.total_dropped(), 2u);
}

TEST(ReportBufferTest, TakeRespectsCountAndBytes) {
  ReportBuffer buffer(100);
  for (int i = 0; i < 10; ++i) buffer.Push(Numbered(i));
  EXPECT_EQ(buffer.Take(4, 1 << 20).reports.size(), 4u);
  const std::size_t one = ReportBuffer::EstimateBytes(Numbered(0));
  EXPECT_EQ(buffer.Take(100, one * 2).reports.size(), 2u);
  EXPECT_EQ(buffer.Take(100, 1).reports.size(), 1u);  // always at least one
  EXPECT_EQ(buffer.size(), 3u);
}

TEST(ReportBufferTest, RefusedBatchIsCountedWithTheDropsItCarried) {
  ReportBuffer buffer(1);
  buffer.Push(Numbered(0));
  buffer.Push(Numbered(1));  // dropped
  ReportBuffer::Batch batch = buffer.Take(10, 1 << 20);
  EXPECT_EQ(batch.dropped, 1u);
  buffer.AddDropped(batch.reports.size(), batch.dropped);  // the sink never saw either
  EXPECT_EQ(buffer.total_dropped(), 2u);
  EXPECT_EQ(buffer.Take(10, 1 << 20).dropped, 2u);
}

TEST(ReportBufferTest, ConcurrentPushersNeverExceedTheBound) {
  ReportBuffer buffer(1000);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 1000; ++i) buffer.Push(Numbered(i));
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(buffer.size(), 1000u);
  EXPECT_EQ(buffer.total_dropped(), 3000u);
}

}  // namespace
}  // namespace courier::detail
