// Parsing and merging management answers; stage timing aggregates.
#include "client/discovery.hpp"

#include <gtest/gtest.h>

#include <thread>

#include "client/timings.hpp"
#include "courier/error.hpp"

namespace courier::detail {
namespace {

using namespace std::chrono_literals;

Value ServiceRow(std::string name, std::uint64_t workers, std::uint64_t queued, std::string strategy) {
  return Value::Object({{"name", std::move(name)},
                        {"workers", workers},
                        {"queued", queued},
                        {"in_flight", 1u},
                        {"strategy", std::move(strategy)},
                        {"dispatched", 10u},
                        {"replied", 9u},
                        {"failed", 1u},
                        {"future_field", "ignored"}});
}

TEST(DiscoveryTest, DecodesQueryReplies) {
  const Value ok = DecodeQueryReply(EncodeValue(Value(Value::Array{Value(0u), Value(Value::Array{})})));
  EXPECT_TRUE(ok.IsArray());
  try {
    DecodeQueryReply(EncodeValue(Value(Value::Array{Value(3u), Value("unknown query 'x'")})));
    FAIL();
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), ErrorCode::kNoSuchService);
    EXPECT_STREQ(error.what(), "unknown query 'x'");
  }
  EXPECT_THROW(DecodeQueryReply(EncodeValue(Value("nope"))), Error);
  EXPECT_THROW(DecodeQueryReply("\xc1"), Error);
}

TEST(DiscoveryTest, ParsesServicesLeniently) {
  Value rows(Value::Array{ServiceRow("resize", 2, 5, "least_loaded"), Value::Object({{"name", "bare"}})});
  const auto services = ParseServices(rows, "tcp://b1");
  ASSERT_EQ(services.size(), 2u);
  EXPECT_EQ(services[0].name, "bare");
  EXPECT_EQ(services[0].workers, 0u);
  EXPECT_EQ(services[1].name, "resize");
  EXPECT_EQ(services[1].workers, 2u);
  EXPECT_EQ(services[1].queued, 5u);
  EXPECT_EQ(services[1].strategy, "least_loaded");
  EXPECT_EQ(services[1].replied, 9u);
  EXPECT_EQ(services[1].brokers, std::vector<std::string>{"tcp://b1"});
  EXPECT_THROW(ParseServices(Value("x"), "b"), Error);
  EXPECT_THROW(ParseServices(Value(Value::Array{Value(1)}), "b"), Error);
}

TEST(DiscoveryTest, ParsesWorkersWithBinaryIds) {
  Value rows(Value::Array{Value::Object({{"id", Binary{std::string("\x01\xab", 2)}},
                                         {"service", "echo"},
                                         {"protocol", "courier"},
                                         {"capacity", 8u},
                                         {"pid", 4242u},
                                         {"idle_ms", 12u}})});
  const auto workers = ParseWorkers(rows, "tcp://b1");
  ASSERT_EQ(workers.size(), 1u);
  EXPECT_EQ(workers[0].id, "01ab");
  EXPECT_EQ(workers[0].capacity, 8u);
  EXPECT_EQ(workers[0].pid, 4242u);
  EXPECT_EQ(workers[0].broker, "tcp://b1");
  EXPECT_EQ(workers[0].stuck, 0u);  // absent from older brokers
  EXPECT_TRUE(workers[0].keys.empty());
}

TEST(DiscoveryTest, ParsesWorkerKeysAndStuckSlots) {
  Value rows(Value::Array{Value::Object(
      {{"id", "w1"},
       {"service", "echo"},
       {"stuck", 2u},
       {"keys", Value(Value::Array{Value::Object({{"id", 1u}, {"fingerprint", "0123456789abcdef"}}),
                                   Value::Object({{"id", 7u}, {"fingerprint", Binary{std::string(8, '\xff')}}}),
                                   Value("not a key"), Value::Object({{"fingerprint", "no id"}})})}})});
  const auto workers = ParseWorkers(rows, "tcp://b1");
  ASSERT_EQ(workers.size(), 1u);
  EXPECT_EQ(workers[0].stuck, 2u);
  ASSERT_EQ(workers[0].keys.size(), 2u);
  EXPECT_EQ(workers[0].keys[0].id, 1u);
  EXPECT_EQ(workers[0].keys[0].fingerprint, "0123456789abcdef");
  EXPECT_EQ(workers[0].keys[1].id, 7u);
  EXPECT_EQ(workers[0].keys[1].fingerprint, "ffffffffffffffff");
}

TEST(DiscoveryTest, MergesServicesAcrossBrokers) {
  const auto a = ParseServices(Value(Value::Array{ServiceRow("echo", 2, 1, "round_robin"),
                                                  ServiceRow("only_a", 1, 0, "random")}), "A");
  const auto b = ParseServices(Value(Value::Array{ServiceRow("echo", 3, 4, "least_loaded")}), "B");
  const auto merged = MergeServices({a, b});
  ASSERT_EQ(merged.size(), 2u);
  EXPECT_EQ(merged[0].name, "echo");
  EXPECT_EQ(merged[0].workers, 5u);
  EXPECT_EQ(merged[0].queued, 5u);
  EXPECT_EQ(merged[0].dispatched, 20u);
  EXPECT_EQ(merged[0].strategy, "mixed");
  EXPECT_EQ(merged[0].brokers, (std::vector<std::string>{"A", "B"}));
  EXPECT_EQ(merged[1].name, "only_a");
  EXPECT_EQ(merged[1].strategy, "random");
}

WorkerInfo Worker(std::string service, std::string id, std::string broker, std::string host, std::uint64_t pid,
                  std::string instance) {
  WorkerInfo worker;
  worker.service = std::move(service);
  worker.id = std::move(id);
  worker.broker = std::move(broker);
  worker.host = std::move(host);
  worker.pid = pid;
  worker.instance = std::move(instance);
  return worker;
}

// `courier services --cluster`: a worker host registered with three brokers is one worker.
TEST(DiscoveryTest, MergedServicesCountEachWorkerOnce) {
  std::vector<std::vector<ServiceInfo>> services;
  std::vector<std::optional<std::vector<WorkerInfo>>> workers;
  for (const std::string broker : {"A", "B", "C"}) {
    services.push_back(ParseServices(Value(Value::Array{ServiceRow("echo", 2, 0, "round_robin")}), broker));
    // The same two hosts on every broker (each broker names their sockets differently),
    // plus, on A only, an MDP worker that sends no host, pid or instance.
    std::vector<WorkerInfo> listed{Worker("echo", broker + "1", broker, "h1", 100, "h1:100"),
                                   Worker("echo", broker + "2", broker, "h2", 200, "h2:200")};
    if (broker == "A") listed.push_back(Worker("mdp", "m1", broker, "", 0, ""));
    workers.emplace_back(std::move(listed));
  }
  services[0].push_back(ParseServices(Value(Value::Array{ServiceRow("mdp", 1, 0, "random")}), "A")[0]);
  auto merged = MergeServices(services, workers);
  ASSERT_EQ(merged.size(), 2u);
  EXPECT_EQ(merged[0].name, "echo");
  EXPECT_EQ(merged[0].workers, 2u) << "not 6: each host registered with three brokers";
  EXPECT_EQ(merged[0].queued, 0u);
  EXPECT_EQ(merged[0].dispatched, 30u);  // traffic is per broker: still summed
  EXPECT_EQ(merged[0].brokers.size(), 3u);
  EXPECT_EQ(merged[1].workers, 1u);
  EXPECT_EQ(MergeServices(services)[0].workers, 6u);  // the plain merge sums

  // Same instance name on two machines, or the same host with two processes: two workers.
  workers[1]->push_back(Worker("echo", "B3", "B", "h3", 100, "h1:100"));
  workers[1]->push_back(Worker("echo", "B4", "B", "h1", 101, "h1:101"));
  EXPECT_EQ(MergeServices(services, workers)[0].workers, 4u);

  // A broker whose worker list did not come: its own count is added as it is.
  workers[2].reset();
  services[2][0].workers = 3;
  EXPECT_EQ(MergeServices(services, workers)[0].workers, 7u);
}

TEST(TimingTableTest, AggregatesPerServiceAndBoundsRows) {
  TimingTable table;
  table.Record("echo", TimedStage::kEncode, 3us);
  table.Record("echo", TimedStage::kEncode, 1us);
  table.Record("echo", TimedStage::kRoundTrip, 100us);
  table.RecordOutcome("echo", true);
  table.RecordOutcome("echo", false);
  auto rows = table.Snapshot();
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].service, "echo");
  EXPECT_EQ(rows[0].encode.count, 2u);
  EXPECT_EQ(rows[0].encode.min, 1us);
  EXPECT_EQ(rows[0].encode.max, 3us);
  EXPECT_EQ(rows[0].encode.mean(), 2us);
  EXPECT_EQ(rows[0].round_trip.count, 1u);
  EXPECT_EQ(rows[0].ok, 1u);
  EXPECT_EQ(rows[0].failed, 1u);
  for (std::size_t i = 0; i < TimingTable::kMaxServices + 10; ++i) {
    table.RecordOutcome("s" + std::to_string(i), true);
  }
  rows = table.Snapshot();
  EXPECT_EQ(rows.size(), TimingTable::kMaxServices + 1);
}

TEST(TimingTableTest, ThreadsOnTheirOwnStripesMergeIntoOneRowAndOneHistogram) {
  TimingTable table;
  constexpr int kThreads = 4;
  constexpr int kEach = 2000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&table, t] {
      for (int i = 0; i < kEach; ++i) {
        table.RecordSubmit("echo", 1us, 2us, std::chrono::microseconds(3 + t));
        table.Record("echo", TimedStage::kRoundTrip, 100us);
        table.RecordOutcome("echo", i % 2 == 0);
      }
    });
  }
  for (auto& thread : threads) thread.join();
  const auto rows = table.Snapshot();
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].seal.count, std::uint64_t{kThreads * kEach});
  EXPECT_EQ(rows[0].seal.min, 3us);
  EXPECT_EQ(rows[0].seal.max, std::chrono::microseconds(3 + kThreads - 1));
  EXPECT_EQ(rows[0].ok + rows[0].failed, std::uint64_t{kThreads * kEach});
  const auto totals = table.Totals();
  std::vector<std::string> stages;
  for (const auto& series : totals) {
    stages.push_back(series.stage);
    EXPECT_EQ(series.service, "echo");
    EXPECT_EQ(series.count, std::uint64_t{kThreads * kEach}) << series.stage;
    ASSERT_EQ(series.buckets.size(), kLatencyBuckets);
    std::uint64_t bucketed = 0;
    for (const auto n : series.buckets) bucketed += n;
    EXPECT_EQ(bucketed, series.count) << series.stage;
  }
  // Recorded stages only (no open/decode here), sorted by name.
  EXPECT_EQ(stages, (std::vector<std::string>{"encode", "key", "round_trip", "seal"}));
}

}  // namespace
}  // namespace courier::detail
