// Failover between two real brokers: one is SIGKILLed mid-run; every job is still answered
// exactly once to the caller, and the broker is used again once it is back.
#include <gtest/gtest.h>

#include <signal.h>

#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>

#include "client_fixture.hpp"

namespace courier::test {
namespace {

TEST(ClientFailoverTest, KillingABrokerMidRunLosesNoJobAndAnswersEachOnce) {
  TempDir dir;
  auto keyring = std::make_shared<const Keyring>(Keyring::Generate());
  BrokerProcess a(dir, "broker-a");
  BrokerProcess b(dir, "broker-b");
  // One worker registered with both brokers; a little slow, so jobs are in flight on
  // both brokers at any moment.
  TestWorker worker({a.endpoint(), b.endpoint()}, "echo", keyring, Echo(10ms), 256);
  ClientOptions options = TestOptions({a.endpoint(), b.endpoint()}, keyring);
  options.max_in_flight = 64;
  options.deadline = 20s;
  Client client(options);
  ASSERT_TRUE(WaitForWorkers(client, "echo", 1));

  constexpr int kJobs = 1500;
  std::mutex mutex;
  std::condition_variable changed;
  std::map<int, int> answers;  // job index → times answered
  int ok = 0;
  std::map<std::string, int> errors;
  int total = 0;
  bool killed = false;
  const auto started = std::chrono::steady_clock::now();
  for (int i = 0; i < kJobs; ++i) {
    client.Submit("echo", Value(i), [&, i](Result result) {
      std::lock_guard lock(mutex);
      ++answers[i];
      ++total;
      if (result.ok() && result.value() == Value(i)) {
        ++ok;
      } else {
        ++errors[result.error() ? std::string(ToString(result.error()->code())) : "wrong reply"];
      }
      changed.notify_all();
    });
    if (i == kJobs / 3) {
      // Both brokers carry jobs now; kill one without warning.
      for (const BrokerAnswer& answer : client.QueryAll("services")) {
        ASSERT_TRUE(answer.result) << answer.broker;
        const auto services = answer.result->AsArray();
        ASSERT_EQ(services.size(), 1u);
        EXPECT_GT(services[0].At("dispatched").AsUint(), 0u) << answer.broker;
      }
      a.Kill();
      killed = true;
    }
    ASSERT_LT(std::chrono::steady_clock::now() - started, 60s) << "submission stalled";
  }
  ASSERT_TRUE(killed);
  {
    std::unique_lock lock(mutex);
    ASSERT_TRUE(changed.wait_for(lock, 30s, [&] { return total == kJobs; }))
        << "answered " << total << " of " << kJobs;
  }
  std::lock_guard lock(mutex);
  EXPECT_EQ(ok, kJobs) << "errors: " << ::testing::PrintToString(errors);
  ASSERT_EQ(answers.size(), static_cast<std::size_t>(kJobs));
  for (const auto& [index, times] : answers) ASSERT_EQ(times, 1) << "job " << index;
  EXPECT_EQ(client.brokers()[0].health, BrokerHealth::kDown);
  EXPECT_EQ(client.brokers()[1].health, BrokerHealth::kUp);
  const ClientCounters counters = client.counters();
  EXPECT_GE(counters.broker_downs, 1u);
  EXPECT_GT(counters.failovers, 0u);  // jobs stranded on the dead broker went to the other
  EXPECT_EQ(counters.succeeded, static_cast<std::uint64_t>(kJobs));
  EXPECT_EQ(worker.bad_jobs(), 0u);
}

TEST(ClientFailoverTest, ABrokerThatComesBackIsUsedAgain) {
  TempDir dir;
  auto keyring = std::make_shared<const Keyring>(Keyring::Generate());
  BrokerProcess a(dir, "broker-a");
  BrokerProcess b(dir, "broker-b");
  TestWorker worker({a.endpoint(), b.endpoint()}, "echo", keyring, Echo());
  Client client(TestOptions({a.endpoint(), b.endpoint()}, keyring));
  ASSERT_TRUE(WaitForWorkers(client, "echo", 1));

  a.Kill();
  ASSERT_TRUE(WaitFor([&] { return client.brokers()[0].health == BrokerHealth::kDown; }, 5s));
  // Meanwhile every call goes to b.
  for (int i = 0; i < 20; ++i) EXPECT_EQ(client.Call("echo", Value(i)), Value(i));

  a.Start();  // same endpoint
  ASSERT_TRUE(WaitFor([&] { return client.brokers()[0].health == BrokerHealth::kUp; }, 10s)) << a.Log();
  // The worker re-registers with the new broker process (its heartbeats go unanswered, so
  // it is asked to start over) or already has: either way calls keep working.
  ASSERT_TRUE(WaitForWorkers(client, "echo", 1));
  for (int i = 0; i < 20; ++i) EXPECT_EQ(client.Call("echo", Value(i)), Value(i));
}

TEST(ClientFailoverTest, ABrokerRestartIsDetectedAndItsJobsResentAtOnce) {
  TempDir dir;
  auto keyring = std::make_shared<const Keyring>(Keyring::Generate());
  BrokerProcess a(dir, "broker-a");
  TestWorker worker({a.endpoint()}, "echo", keyring, Echo(300ms));
  ClientOptions options = TestOptions({a.endpoint()}, keyring);
  options.failover_timeout = 5s;  // longer than the restart: only the incarnation tells
  options.heartbeat_interval = 200ms;
  options.deadline = 30s;
  Client client(options);
  ASSERT_TRUE(WaitForWorkers(client, "echo", 1));
  ASSERT_TRUE(WaitFor([&] { return client.brokers()[0].health == BrokerHealth::kUp; }, 5s));
  // Learn the first incarnation (a PONG follows a quiet heartbeat interval).
  ASSERT_TRUE(client.Ping()[0].round_trip.has_value());

  std::vector<std::future<Value>> futures;
  for (int i = 0; i < 20; ++i) futures.push_back(client.Submit("echo", Value(i)));
  ASSERT_TRUE(WaitFor([&] { return worker.deliveries() >= 1; }, 5s));
  const auto restarted_at = std::chrono::steady_clock::now();
  a.Kill();
  a.Start();  // same endpoint, new process: every job it held is forgotten
  for (int i = 0; i < 20; ++i) {
    ASSERT_EQ(futures[i].wait_for(15s), std::future_status::ready) << "job " << i;
    EXPECT_EQ(futures[i].get(), Value(i));
  }
  // Well before failover_timeout or any deadline: resent on the new incarnation's PONG.
  EXPECT_LT(std::chrono::steady_clock::now() - restarted_at, 5s);
  EXPECT_EQ(client.counters().broker_restarts, 1u);
  EXPECT_EQ(client.counters().broker_downs, 0u);
}

// A broker process that dies closes its connections: its jobs go to the other broker at
// once, not after failover_timeout of silence (10 s here).
TEST(ClientFailoverTest, AKilledBrokersJobsFailOverWithoutWaitingForSilence) {
  TempDir dir;
  auto keyring = std::make_shared<const Keyring>(Keyring::Generate());
  BrokerProcess a(dir, "broker-a");
  BrokerProcess b(dir, "broker-b");
  TestWorker worker({a.endpoint(), b.endpoint()}, "echo", keyring, Echo(100ms), 64);
  ClientOptions options = TestOptions({a.endpoint(), b.endpoint()}, keyring);
  options.failover_timeout = 10s;
  options.deadline = 30s;
  Client client(options);
  ASSERT_TRUE(WaitForWorkers(client, "echo", 1));
  ASSERT_TRUE(WaitFor([&] {
    const auto brokers = client.brokers();
    return brokers[0].health == BrokerHealth::kUp && brokers[1].health == BrokerHealth::kUp;
  }, 5s));

  std::vector<std::future<Value>> futures;
  for (int i = 0; i < 20; ++i) futures.push_back(client.Submit("echo", Value(i)));
  ASSERT_TRUE(WaitFor([&] { return client.brokers()[0].in_flight > 0 && worker.deliveries() >= 2; }, 5s));
  const auto killed_at = std::chrono::steady_clock::now();
  a.Kill();
  for (int i = 0; i < 20; ++i) {
    ASSERT_EQ(futures[i].wait_for(15s), std::future_status::ready) << "job " << i;
    EXPECT_EQ(futures[i].get(), Value(i));
  }
  EXPECT_LT(std::chrono::steady_clock::now() - killed_at, 5s) << "the jobs waited for the failover timeout";
  const ClientCounters counters = client.counters();
  EXPECT_EQ(counters.disconnects, 1u);
  EXPECT_GT(counters.failovers, 0u);
  EXPECT_EQ(client.brokers()[0].health, BrokerHealth::kDown);
}

TEST(ClientFailoverTest, AllBrokersDownFailsUnavailable) {
  TempDir dir;
  auto keyring = std::make_shared<const Keyring>(Keyring::Generate());
  BrokerProcess a(dir, "broker-a");
  BrokerProcess b(dir, "broker-b");
  Client client(TestOptions({a.endpoint(), b.endpoint()}, keyring));
  ASSERT_TRUE(WaitFor([&] {
    const auto status = client.brokers();
    return status[0].health == BrokerHealth::kUp && status[1].health == BrokerHealth::kUp;
  }, 5s));
  a.Kill();
  b.Kill();
  CallOptions call;
  call.deadline = 10s;
  const auto start = std::chrono::steady_clock::now();
  try {
    client.Call("echo", Value(1), call);
    FAIL() << "no error";
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), ErrorCode::kUnavailable) << error.what();
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
}

}  // namespace
}  // namespace courier::test
