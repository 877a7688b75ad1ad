// A worker host's automatic capacity (no `capacity` set, the default): cheap jobs are held
// ready in depth so they stream, long jobs are not hoarded by one host while another idles.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <regex>

#include "cluster_support.hpp"

namespace courier::test {
namespace {

constexpr std::uint32_t kAutomaticCapacity = 0;  // no `capacity` in the service's section

// Returns: the largest capacity the host's log says it planned ("capacity 2 -> N"), or 0.
std::uint32_t LargestPlannedCapacity(const std::string& log) {
  static const std::regex kPlanned("capacity \\d+ -> (\\d+)");
  std::uint32_t largest = 0;
  for (auto it = std::sregex_iterator(log.begin(), log.end(), kPlanned); it != std::sregex_iterator(); ++it) {
    largest = std::max<std::uint32_t>(largest, static_cast<std::uint32_t>(std::stoul((*it)[1].str())));
  }
  return largest;
}

TEST(ClusterPrefetchTest, CheapJobsRaiseTheAutomaticCapacityAboveTheThreadCount) {
  Cluster cluster;
  cluster.AddBroker({"broker-0", FreeEndpoint(), ""});
  cluster.AddWorker("worker", kAutomaticCapacity, /*threads=*/2);
  ClientOptions options = cluster.ClientFor();
  options.max_in_flight = 200;
  Client client(options);
  ASSERT_TRUE(WaitFor([&] { return EveryBrokerHasWorkers(client, 1, 1); }, 10s)) << cluster.Logs();

  constexpr int kJobs = 2000;
  JobStream stream(kJobs, /*handler_ms=*/0);
  ASSERT_TRUE(stream.SubmitUpTo(client, kJobs));
  ASSERT_TRUE(stream.WaitAnswered(kJobs, 60s)) << stream.answered() << " answered\n" << cluster.Logs();
  EXPECT_EQ(stream.ok(), kJobs) << stream.Errors();
  const std::uint32_t planned = LargestPlannedCapacity(cluster.worker(0).Log());
  std::printf("[cluster] automatic capacity for jobs of ~0 ms on 2 threads: up to %u\n", planned);
  EXPECT_GT(planned, 8u) << "cheap jobs were not held ready in depth\n" << cluster.worker(0).Log();
}

TEST(ClusterPrefetchTest, LongJobsAreNotHoardedByTheHostThatWasThereFirst) {
  // Every job is queued while one host is up; a second host joins. A host that took all it
  // could hold would leave the newcomer idle while it worked through the queue alone.
  Cluster cluster;
  cluster.AddBroker({"broker-0", FreeEndpoint(), ""});
  cluster.AddWorker("worker-a", kAutomaticCapacity, /*threads=*/2);
  ClientOptions options = cluster.ClientFor();
  options.max_in_flight = 100;  // every job submitted at once
  options.deadline = 60s;
  Client client(options);
  ASSERT_TRUE(WaitFor([&] { return EveryBrokerHasWorkers(client, 1, 1); }, 10s)) << cluster.Logs();

  constexpr int kJobs = 40;
  constexpr int kHandlerMs = 100;
  JobStream stream(kJobs, kHandlerMs);
  ASSERT_TRUE(stream.SubmitUpTo(client, kJobs));
  cluster.AddWorker("worker-b", kAutomaticCapacity, /*threads=*/2);
  ASSERT_TRUE(stream.WaitAnswered(kJobs, 60s)) << stream.answered() << " answered\n" << cluster.Logs();
  EXPECT_EQ(stream.ok(), kJobs) << stream.Errors();

  // Per host: how many jobs it ran and when its last one was answered.
  std::map<std::int64_t, int> jobs_by_pid;
  std::map<std::int64_t, JobStream::Clock::time_point> last_by_pid;
  for (const HandlerRun& run : cluster.Runs()) {
    ++jobs_by_pid[run.pid];
    const auto at = stream.AnsweredAt(static_cast<int>(run.key));
    ASSERT_TRUE(at) << "job " << run.key;
    auto& last = last_by_pid[run.pid];
    last = std::max(last, *at);
  }
  const std::int64_t newcomer = cluster.worker(1).pid();
  const int joined = jobs_by_pid.count(newcomer) != 0 ? jobs_by_pid[newcomer] : 0;
  ASSERT_EQ(jobs_by_pid.size(), 2u) << "the host that was there first ran every job\n" << cluster.Logs();
  const auto gap = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::max(last_by_pid.begin()->second, last_by_pid.rbegin()->second) -
      std::min(last_by_pid.begin()->second, last_by_pid.rbegin()->second));
  std::printf("[cluster] %d jobs of %d ms queued on one automatic host of 2 threads, a second joining: "
              "it ran %d; last answers %lld ms apart\n",
              kJobs, kHandlerMs, joined, static_cast<long long>(gap.count()));
  EXPECT_GE(joined, kJobs / 4) << "the first host sat on the queue";
  EXPECT_LT(gap, std::chrono::milliseconds(4 * kHandlerMs)) << "one host idled while the other still held jobs";
}

}  // namespace
}  // namespace courier::test
