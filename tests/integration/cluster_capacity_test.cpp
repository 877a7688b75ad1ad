// One worker host's capacity is shared by all its brokers (PROTOCOL.md §7.2): a host
// with capacity 2 registered with three brokers never runs more than 2 jobs at once,
// however the three brokers are fed, and still finishes every job.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>

#include "cluster_support.hpp"

namespace courier::test {
namespace {

TEST(ClusterCapacityTest, AHostWithCapacityTwoOnThreeBrokersNeverRunsMoreThanTwoJobs) {
  Cluster cluster;
  for (int i = 0; i < 3; ++i) cluster.AddBroker({"broker-" + std::to_string(i), FreeEndpoint(), ""});
  // More threads than capacity: only the credit can hold the host to 2.
  cluster.AddWorker("worker", /*capacity=*/2, /*threads=*/8);
  ClientOptions options = cluster.ClientFor();
  options.max_in_flight = 60;  // every job submitted at once: all three brokers have a queue
  options.deadline = 30s;
  Client client(options);
  ASSERT_TRUE(WaitFor([&] { return EveryBrokerHasWorkers(client, 3, 1); }, 10s)) << cluster.Logs();

  constexpr int kJobs = 60;
  constexpr int kHandlerMs = 40;
  JobStream stream(kJobs, kHandlerMs);
  const auto started = std::chrono::steady_clock::now();
  ASSERT_TRUE(stream.SubmitUpTo(client, kJobs));
  ASSERT_TRUE(stream.WaitAnswered(kJobs, 60s)) << stream.answered() << " answered\n" << cluster.Logs();
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);

  EXPECT_EQ(stream.ok(), kJobs) << stream.Errors();
  EXPECT_TRUE(stream.AnsweredTwice().empty());
  const std::vector<HandlerRun> runs = cluster.Runs();
  EXPECT_EQ(runs.size(), static_cast<std::size_t>(kJobs));
  std::int64_t most = 0;
  for (const HandlerRun& run : runs) most = std::max(most, run.running);
  EXPECT_LE(most, 2) << "handler runs overlapped beyond the capacity";
  EXPECT_LE(stream.MaxRunning(), 2);
  EXPECT_EQ(most, 2) << "the host never used its second slot";
  // Every broker fed the host: each one had its own queue and got its turns.
  std::uint64_t dispatched_total = 0;
  for (std::size_t b = 0; b < 3; ++b) {
    const auto row = QueryService(client, b, kWorkService);
    ASSERT_TRUE(row) << "broker " << b;
    EXPECT_GT(row->replied, 0u) << "broker " << b;
    dispatched_total += row->dispatched;
  }
  const std::size_t rejects = cluster.CapacityRejects();
  // Fair shares: job i went to broker i % 3 (the client's round robin over three brokers
  // that are up); of the first half of the jobs to finish, each broker has a fair part,
  // so none waits behind another's queue for the host's slots.
  std::vector<std::pair<JobStream::Clock::time_point, int>> order;
  for (int key = 0; key < kJobs; ++key) order.emplace_back(*stream.AnsweredAt(key), key);
  std::sort(order.begin(), order.end());
  int first_half[3] = {0, 0, 0};
  for (int n = 0; n < kJobs / 2; ++n) ++first_half[order[static_cast<std::size_t>(n)].second % 3];
  for (int b = 0; b < 3; ++b) EXPECT_GE(first_half[b], kJobs / 12) << "broker " << b << " waited behind the others";
  std::printf("[cluster] capacity 2 on 3 brokers: %d jobs of %d ms in %lld ms, at most %lld running at once, "
              "%llu dispatches, %zu rejected by the host (every slot taken); first half done: %d/%d/%d per broker\n",
              kJobs, kHandlerMs, static_cast<long long>(took.count()), static_cast<long long>(most),
              static_cast<unsigned long long>(dispatched_total), rejects, first_half[0], first_half[1], first_half[2]);
  // Two at a time: at least kJobs / 2 handler times, and well under one at a time.
  EXPECT_GE(took, std::chrono::milliseconds(kJobs / 2 * kHandlerMs));
  EXPECT_LT(took, std::chrono::milliseconds(kJobs * kHandlerMs)) << "the host did not keep both slots busy";
}

}  // namespace
}  // namespace courier::test
