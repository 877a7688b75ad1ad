// A three-broker cluster loses one broker in the middle of a bounded job stream and gets
// it back, with nothing restarted but that broker (and only when it was killed):
//   - SIGKILL, then a new broker process on the same port;
//   - SIGSTOP (a broker that hangs, or sits behind a partition), then SIGCONT;
//   - its test host (a network namespace with a veth pair) cut off at the link, then
//     reconnected (skipped where `ip netns add` is not permitted).
// Every job is answered exactly once to the client, none is lost, failover happens
// within the client's failover_timeout plus slack, the broker is used again once back,
// and on the workers a job never runs twice in one host (duplicate suppression); the
// runs repeated on the other host (at-least-once) are counted and reported.
#include <gtest/gtest.h>

#include <signal.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <functional>
#include <map>
#include <set>
#include <thread>

#include "cluster_support.hpp"

namespace courier::test {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr int kJobs = 3000;
constexpr std::size_t kWindow = 64;
constexpr int kHandlerMs = 2;
constexpr std::uint32_t kCapacity = 4;            // per worker host, shared by its three brokers
constexpr auto kFailover = milliseconds(3000);    // ClientOptions::failover_timeout's default
constexpr auto kSlack = milliseconds(2000);       // a loaded 2-core machine
constexpr std::size_t kVictim = 0;

long long Ms(Clock::duration duration) { return std::chrono::duration_cast<milliseconds>(duration).count(); }

// How the broker is lost, and brought back.
struct Loss {
  std::string name;
  std::function<void()> cut;
  std::function<bool()> heal;
  bool restarts = false;  // it comes back as a new process (a new incarnation)
};

void LoseOneBrokerMidStream(Cluster& cluster, const Loss& loss) {
  cluster.AddWorker("worker-a", kCapacity, static_cast<int>(kCapacity));
  cluster.AddWorker("worker-b", kCapacity, static_cast<int>(kCapacity));
  ClientOptions options = cluster.ClientFor();
  options.max_in_flight = kWindow;
  options.deadline = std::chrono::seconds(30);
  options.failover_timeout = kFailover;
  JobStream stream(kJobs, kHandlerMs);  // outlives the client, whose callbacks feed it
  Client client(options);
  ASSERT_TRUE(WaitFor([&] { return EveryBrokerHasWorkers(client, 3, 2); }, 15s)) << cluster.Logs();

  // 1. A third of the stream with every broker up.
  ASSERT_TRUE(stream.SubmitUpTo(client, kJobs / 3));
  const auto victim_before = QueryService(client, kVictim, kWorkService);
  ASSERT_TRUE(victim_before && victim_before->dispatched > 0) << "the broker to lose carries no jobs";

  // 2. Lose the broker with jobs in flight on it, and keep submitting. The clock starts
  // once the cut is complete (ip(8) takes a few milliseconds to set a link down).
  loss.cut();
  const Clock::time_point cut_at = Clock::now();
  const std::vector<int> outstanding = stream.Outstanding();
  const int answered_before_cut = stream.answered();
  std::atomic<bool> submitted_in_time{true};
  Clock::time_point down_at{};
  int answered_while_undetected = 0;
  {
    std::jthread submitter([&] { submitted_in_time = stream.SubmitUpTo(client, 2 * kJobs / 3); });
    const bool detected = WaitFor([&] { return client.brokers()[kVictim].health == BrokerHealth::kDown; },
                                  kFailover + 10s);
    down_at = Clock::now();
    answered_while_undetected = stream.answered() - answered_before_cut;
    EXPECT_TRUE(detected) << "the client never marked the lost broker down";
  }
  ASSERT_TRUE(submitted_in_time) << "submission stalled while the broker was away\n" << cluster.Logs();
  ASSERT_TRUE(WaitFor(
      [&] {
        return std::all_of(outstanding.begin(), outstanding.end(),
                           [&](int key) { return stream.AnsweredAt(key).has_value(); });
      },
      kFailover + 20s))
      << "jobs outstanding at the cut were never answered\n"
      << cluster.Logs();
  Clock::time_point last_outstanding_answered = cut_at;
  std::size_t stranded = 0;  // outstanding at the cut and answered only after a failover
  for (const int key : outstanding) {
    const Clock::time_point answered = *stream.AnsweredAt(key);
    last_outstanding_answered = std::max(last_outstanding_answered, answered);
    if (answered - cut_at >= kFailover / 2) ++stranded;
  }

  // 3. Bring it back: the client and both worker hosts find it again by themselves.
  const Clock::time_point heal_at = Clock::now();
  ASSERT_TRUE(loss.heal()) << cluster.Logs();
  ASSERT_TRUE(WaitFor(
      [&] {
        return client.brokers()[kVictim].health == BrokerHealth::kUp &&
               QueryService(client, kVictim, kWorkService).value_or(ServiceRow{}).workers >= 2;
      },
      20s))
      << "the broker was not used again\n"
      << cluster.Logs();
  const Clock::time_point back_at = Clock::now();
  const ServiceRow rejoined = QueryService(client, kVictim, kWorkService).value_or(ServiceRow{});

  // 4. The rest of the stream.
  ASSERT_TRUE(stream.SubmitUpTo(client, kJobs));
  ASSERT_TRUE(stream.WaitAnswered(kJobs, 60s)) << stream.answered() << " of " << kJobs << " answered\n"
                                               << cluster.Logs();
  const ServiceRow last = QueryService(client, kVictim, kWorkService).value_or(ServiceRow{});

  // To the client: every job answered, once, with its own reply.
  EXPECT_EQ(stream.ok(), kJobs) << stream.Errors();
  EXPECT_TRUE(stream.AnsweredTwice().empty()) << ::testing::PrintToString(stream.AnsweredTwice());
  EXPECT_TRUE(stream.Unanswered().empty()) << ::testing::PrintToString(stream.Unanswered());
  const ClientCounters counters = client.counters();
  EXPECT_GE(counters.broker_downs, 1u);
  EXPECT_GT(counters.failovers, 0u) << "no job was stranded on the lost broker: the test proves little";
  if (loss.restarts) {
    EXPECT_GE(counters.broker_restarts, 1u) << "the new incarnation went unnoticed";
  }

  // On the workers: every job ran, always under its one job id, never twice in one host.
  std::map<std::int64_t, std::vector<HandlerRun>> runs;
  for (const HandlerRun& run : cluster.Runs()) runs[run.key].push_back(run);
  std::size_t never_ran = 0, renamed = 0, twice_in_one_host = 0, on_both_hosts = 0, extra_runs = 0;
  for (int key = 0; key < kJobs; ++key) {
    const auto found = runs.find(key);
    if (found == runs.end()) {
      ++never_ran;
      continue;
    }
    std::set<std::string> ids;
    std::multiset<std::int64_t> pids;
    for (const HandlerRun& run : found->second) {
      ids.insert(run.job_id);
      pids.insert(run.pid);
    }
    if (ids.size() > 1) ++renamed;
    std::set<std::int64_t> hosts(pids.begin(), pids.end());
    if (hosts.size() < pids.size()) ++twice_in_one_host;
    if (hosts.size() > 1) ++on_both_hosts;
    extra_runs += found->second.size() - 1;
  }
  EXPECT_EQ(never_ran, 0u) << "answered jobs that no handler ran";
  EXPECT_EQ(renamed, 0u) << "a job was resent under another job id";
  EXPECT_EQ(twice_in_one_host, 0u) << "duplicate suppression let a handler run twice in one host";
  // At-least-once: only jobs the lost broker held (at most the client's window of them)
  // may have run on both hosts.
  EXPECT_LE(on_both_hosts, kWindow);

  // The broker is in use again: a good share of the last third went through it.
  EXPECT_GE(last.dispatched, rejoined.dispatched + 100) << "the broker that came back got no jobs";

  const long long detect_ms = Ms(down_at - cut_at);
  const long long failover_ms = Ms(last_outstanding_answered - cut_at);
  std::printf(
      "[cluster] %s: %d jobs (window %zu) over 3 brokers and 2 worker hosts; broker %zu lost after job %d\n"
      "[cluster]   failover: the client marked it down %lld ms after the cut; every job outstanding at the cut "
      "(%zu, %zu of them stranded on the lost broker) was answered %lld ms after the cut (failover_timeout %lld "
      "ms); %d jobs were answered between the cut and the detection\n"
      "[cluster]   slowest job %lld ms; back in use %lld ms after the heal; %llu dispatched through it after "
      "that\n"
      "[cluster]   client: %llu failovers, %llu broker downs, %llu restarts seen, %llu retries, %llu late "
      "duplicates dropped\n"
      "[cluster]   workers: %zu runs for %d jobs: %zu jobs ran on both hosts (%zu extra runs), %zu twice in "
      "one host; %zu jobs rejected with every slot taken (capacity %u per host over 3 brokers)\n",
      loss.name.c_str(), kJobs, kWindow, kVictim, kJobs / 3, detect_ms, outstanding.size(), stranded, failover_ms,
      static_cast<long long>(kFailover.count()), answered_while_undetected, static_cast<long long>(stream.MaxLatency().count() / 1000),
      Ms(back_at - heal_at), static_cast<unsigned long long>(last.dispatched - rejoined.dispatched),
      static_cast<unsigned long long>(counters.failovers), static_cast<unsigned long long>(counters.broker_downs),
      static_cast<unsigned long long>(counters.broker_restarts), static_cast<unsigned long long>(counters.retries),
      static_cast<unsigned long long>(counters.duplicates_dropped), cluster.Runs().size(), kJobs, on_both_hosts,
      extra_runs, twice_in_one_host, cluster.CapacityRejects(), kCapacity);
  EXPECT_LE(detect_ms, Ms(kFailover + kSlack));
  EXPECT_LE(failover_ms, Ms(kFailover + kSlack));
}

std::string BrokerName(int i) { return "broker-" + std::to_string(i); }

TEST(ClusterFailoverTest, SigkillOneOfThreeBrokersMidStreamThenRestartIt) {
  Cluster cluster;
  for (int i = 0; i < 3; ++i) cluster.AddBroker({BrokerName(i), FreeEndpoint(), ""});
  LoseOneBrokerMidStream(cluster, {"SIGKILL", [&] { cluster.broker(kVictim).Kill(); },
                                   [&] { return cluster.StartBroker(kVictim); }, true});
}

// A broker restarted at once (a supervisor's quick restart) is back before the client's
// failover timer runs out, and the transport reconnects by itself: the new process
// answers new jobs but knows nothing of the ones the old one held. The client must see
// the new incarnation and resend those, not leave them to their deadline.
TEST(ClusterFailoverTest, SigkillABrokerAndRestartItAtOnceMidStream) {
  Cluster cluster;
  for (int i = 0; i < 3; ++i) cluster.AddBroker({BrokerName(i), FreeEndpoint(), ""});
  cluster.AddWorker("worker-a", kCapacity, static_cast<int>(kCapacity));
  cluster.AddWorker("worker-b", kCapacity, static_cast<int>(kCapacity));
  ClientOptions options = cluster.ClientFor();
  options.max_in_flight = kWindow;
  options.deadline = std::chrono::seconds(20);
  options.failover_timeout = kFailover;
  // Long enough that the restarted broker is never quiet for a ping interval before the end.
  constexpr int kLongStream = 5 * kJobs;
  JobStream stream(kLongStream, kHandlerMs);
  Client client(options);
  ASSERT_TRUE(WaitFor([&] { return EveryBrokerHasWorkers(client, 3, 2); }, 15s)) << cluster.Logs();

  ASSERT_TRUE(stream.SubmitUpTo(client, kJobs / 3));
  const int answered_before = stream.answered();
  const std::vector<int> outstanding = stream.Outstanding();
  const Clock::time_point cut_at = Clock::now();
  cluster.broker(kVictim).Kill();
  ASSERT_TRUE(cluster.StartBroker(kVictim)) << cluster.Logs();
  const Clock::time_point restarted_at = Clock::now();
  ASSERT_TRUE(stream.SubmitUpTo(client, kLongStream, 120s)) << cluster.Logs();
  const Clock::time_point submitted_at = Clock::now();
  ASSERT_TRUE(stream.WaitAnswered(kLongStream, 60s)) << stream.answered() << " of " << kLongStream << " answered\n"
                                                     << cluster.Logs();
  Clock::time_point last_outstanding_answered = cut_at;
  for (const int key : outstanding) last_outstanding_answered = std::max(last_outstanding_answered, *stream.AnsweredAt(key));

  EXPECT_EQ(stream.ok(), kLongStream) << stream.Errors();
  EXPECT_TRUE(stream.AnsweredTwice().empty());
  const ClientCounters counters = client.counters();
  EXPECT_GE(counters.broker_restarts, 1u) << "the new incarnation went unnoticed";
  const auto row = QueryService(client, kVictim, kWorkService);
  ASSERT_TRUE(row);
  EXPECT_GT(row->replied, 0u) << "the restarted broker got no jobs";
  const long long recovery_ms = Ms(last_outstanding_answered - cut_at);
  std::printf(
      "[cluster] SIGKILL + immediate restart (%lld ms) after %d of %d jobs: every job outstanding at the kill (%zu) "
      "answered %lld ms after it (the stream went on for %lld ms); slowest job %lld ms; client saw %llu restarts, "
      "%llu broker downs, %llu failovers; %llu replied through the new process\n",
      Ms(restarted_at - cut_at), answered_before, kLongStream, outstanding.size(), recovery_ms,
      Ms(submitted_at - cut_at),
      static_cast<long long>(stream.MaxLatency().count() / 1000),
      static_cast<unsigned long long>(counters.broker_restarts), static_cast<unsigned long long>(counters.broker_downs),
      static_cast<unsigned long long>(counters.failovers), static_cast<unsigned long long>(row->replied));
  EXPECT_LE(recovery_ms, Ms(kFailover + kSlack));
}

TEST(ClusterFailoverTest, SigstopOneOfThreeBrokersMidStreamThenSigcontIt) {
  Cluster cluster;
  for (int i = 0; i < 3; ++i) cluster.AddBroker({BrokerName(i), FreeEndpoint(), ""});
  LoseOneBrokerMidStream(cluster, {"SIGSTOP",
                                   [&] { cluster.broker(kVictim).Signal(SIGSTOP); },
                                   [&] {
                                     cluster.broker(kVictim).Signal(SIGCONT);
                                     return true;
                                   },
                                   false});
}

TEST(ClusterFailoverTest, ABrokerOnItsOwnTestHostCutOffAtTheLinkThenReconnected) {
  TempDir scratch;
  std::string why;
  // Declared before the cluster: the brokers inside the namespaces die before these go.
  const std::unique_ptr<TestHosts> hosts = TestHosts::Make(3, scratch, why);
  if (!hosts) GTEST_SKIP() << "no network namespaces here: " << why;
  Cluster cluster;
  for (int i = 0; i < 3; ++i) {
    cluster.AddBroker({BrokerName(i), "tcp://" + hosts->address(i) + ":5555", hosts->netns(i)});
  }
  LoseOneBrokerMidStream(cluster, {"link down (netns)",
                                   [&] { EXPECT_TRUE(hosts->SetLink(static_cast<int>(kVictim), false)); },
                                   [&] { return hosts->SetLink(static_cast<int>(kVictim), true); }, false});
}

}  // namespace
}  // namespace courier::test
