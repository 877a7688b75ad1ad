// A worker host registered with three brokers, under a pipelined stream spread over all
// three: every job is answered once, none waits out its deadline. (A host used to drop a
// REPLY when its socket to one broker was momentarily full of CREDIT updates; that broker
// then believed the host held the job until its deadline passed.)
#include <gtest/gtest.h>

#include <cstdio>

#include "cluster_support.hpp"

namespace courier::test {
namespace {

TEST(ClusterLoadTest, ThreeBrokersPipelinedStreamLosesNoJob) {
  Cluster cluster;
  for (int i = 0; i < 3; ++i) cluster.AddBroker({"broker-" + std::to_string(i), FreeEndpoint(), ""});
  cluster.AddWorker("worker", /*capacity=*/256, /*threads=*/2);
  ClientOptions options = cluster.ClientFor();
  options.max_in_flight = 1000;
  options.deadline = 20s;
  Client client(options);
  ASSERT_TRUE(WaitFor([&] { return EveryBrokerHasWorkers(client, 3, 1); }, 10s)) << cluster.Logs();

  constexpr int kJobs = 20000;
  JobStream stream(kJobs, /*handler_ms=*/0);
  const auto started = std::chrono::steady_clock::now();
  ASSERT_TRUE(stream.SubmitUpTo(client, kJobs, 90s)) << stream.answered() << " answered\n" << cluster.Logs();
  ASSERT_TRUE(stream.WaitAnswered(kJobs, 60s)) << stream.answered() << " answered\n" << cluster.Logs();
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);

  EXPECT_EQ(stream.ok(), kJobs) << stream.Errors();
  EXPECT_TRUE(stream.AnsweredTwice().empty());
  EXPECT_EQ(cluster.Runs().size(), static_cast<std::size_t>(kJobs));
  EXPECT_EQ(cluster.CountInWorkerLogs("dropped"), 0u) << cluster.Logs();
  for (std::size_t b = 0; b < 3; ++b) {
    const auto row = QueryService(client, b, kWorkService);
    ASSERT_TRUE(row) << "broker " << b;
    EXPECT_EQ(row->in_flight, 0u) << "broker " << b << " still counts jobs as held by the host";
    EXPECT_GT(row->replied, 0u) << "broker " << b;
  }
  std::printf("[cluster] %d jobs over 3 brokers to one host in %lld ms\n", kJobs,
              static_cast<long long>(took.count()));
}

}  // namespace
}  // namespace courier::test
