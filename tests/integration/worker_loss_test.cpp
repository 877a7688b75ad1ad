// Worker loss against a real courier-broker (PROTOCOL.md §7.6): a worker process killed
// with SIGKILL is noticed through the broker's socket monitor, not at heartbeat expiry, and
// a job that kills every worker it reaches is dead-lettered as a poison job at max_crashes.
// The broker runs with the default 2.5 s heartbeat, so expiry alone would take 7.5 s.
#include <signal.h>

#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <set>

#include "broker_fixture.hpp"

namespace courier::test {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

class WorkerLossTest : public BrokerFixture {
 protected:
  // Returns: the broker's answer to QUERY `name` (the result of [status, result]).
  std::optional<Value> Query(const std::string& name) {
    auto peer = Peer();
    peer->Send({"", "CRC01", "\x05", "q", detail::EncodeQuery(name)});
    const auto reply = peer->ReceiveWhere(2, "\x06", 2s);
    if (!reply) return std::nullopt;
    return DecodeValue(reply->back()).AsArray().at(1);
  }

  // Waits until `count` workers of `service` are registered.
  bool WaitForWorkers(const std::string& service, std::size_t count, std::chrono::milliseconds timeout) {
    return WaitFor(
        [&] {
          const auto workers = Query("workers");
          if (!workers) return false;
          std::size_t found = 0;
          for (const Value& row : workers->AsArray()) found += row.At("service").AsString() == service ? 1 : 0;
          return found == count;
        },
        timeout);
  }

  std::uint64_t Stat(const std::string& counter) {
    const auto stats = Query("stats");
    return stats ? stats->At(counter).AsUint() : UINT64_MAX;
  }

  std::vector<std::string> WorkerArgs(const std::string& service, int delay_ms, const std::string& die_on = {}) {
    std::vector<std::string> args{"--protocol", "courier", "--service", service, "--capacity", "1",
                                  "--delay-ms", std::to_string(delay_ms), "--heartbeat-ms", "1000"};
    if (!die_on.empty()) args.insert(args.end(), {"--die-on-payload", die_on});
    return args;
  }
};

TEST_F(WorkerLossTest, KilledWorkersJobIsRedeliveredWithinASecond) {
  StartBroker("heartbeat_interval = \"2500ms\"\nheartbeat_liveness = 3\n");
  auto holder = StartWorker("holder", WorkerArgs("loss", 600000));  // never answers
  ASSERT_TRUE(WaitForWorkers("loss", 1, 10s)) << holder.Log();
  auto client = Peer();
  const JobId id = JobId::Random();
  client->Send({"", "CRC01", "\x01", Envelope("loss", id, 3, 60000), "p"});
  ASSERT_TRUE(holder.WaitForLog("received 1", 10s)) << holder.Log();
  auto rescuer = StartWorker("rescuer", WorkerArgs("loss", 0));
  ASSERT_TRUE(WaitForWorkers("loss", 2, 10s)) << rescuer.Log();

  const auto killed = Clock::now();
  holder.Signal(SIGKILL);
  const auto reply = client->ReceiveWhere(2, "\x03", 5s);
  const auto answered_after = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - killed);
  holder.Kill();
  ASSERT_TRUE(reply) << "no reply within 5 s of the kill";
  const auto envelope = detail::DecodeEnvelope((*reply)[3]);
  EXPECT_EQ(envelope.job_id, id);
  EXPECT_EQ(envelope.attempt, 2u);
  std::cout << "SIGKILL → job redelivered and answered by the second worker in " << answered_after.count()
            << " ms (heartbeat expiry would take 7500 ms)\n";
  EXPECT_LT(answered_after, 1000ms);
  EXPECT_TRUE(rescuer.WaitForLog("served 1", 2s));
  EXPECT_EQ(Stat("workers_unreachable"), 1u);
  EXPECT_EQ(Stat("workers_expired"), 0u);
  EXPECT_EQ(Stat("crashes"), 1u);
  EXPECT_EQ(Stat("redelivered"), 1u);
}

TEST_F(WorkerLossTest, PoisonJobIsDeadLetteredAfterMaxCrashesWhileTheStreamFlows) {
  StartBroker("heartbeat_interval = \"2500ms\"\n[defaults]\nmax_crashes = 2\n");
  // The error sink, played by hand: it must see the poison job's dead letter.
  auto sink = Peer();
  sink->Send({"", "CRW01", "\x01", "courier.errors", CourierReady(10)});
  // Two worker hosts, restarted when they die (as systemd would), each killed by the poison.
  std::vector<std::unique_ptr<ChildProcess>> workers;
  int started = 0;
  const auto start = [&] {
    ++started;
    return std::make_unique<ChildProcess>(StartWorker("w" + std::to_string(started), WorkerArgs("fragile", 5, "poison")));
  };
  workers.push_back(start());
  workers.push_back(start());
  ASSERT_TRUE(WaitForWorkers("fragile", 2, 10s));

  auto client = Peer();
  const int normal = 40;
  const JobId poison = JobId::Random();
  std::set<std::string> outstanding;
  for (int i = 0; i < normal; ++i) {
    if (i == 5) client->Send({"", "CRC01", "\x01", Envelope("fragile", poison, 3, 30000), "poison"});
    const JobId id = JobId::Random();
    outstanding.insert(std::string(id.View()));
    client->Send({"", "CRC01", "\x01", Envelope("fragile", id, 3, 30000), "p"});
  }
  int replies = 0;
  std::optional<detail::ErrorBody> poison_error;
  std::vector<Value> dead_letters;
  auto last_sink_beat = Clock::now();
  const auto deadline = Clock::now() + 20s;
  while ((replies < normal || !poison_error || dead_letters.empty()) && Clock::now() < deadline) {
    for (auto& worker : workers) {
      if (!worker->Running() && started < 6) worker = start();
    }
    if (const auto message = client->Receive(20ms)) {
      if ((*message)[2] == "\x03") {
        const std::string id(detail::DecodeEnvelope((*message)[3]).job_id.View());
        EXPECT_EQ(outstanding.erase(id), 1u) << "a reply for an unknown or already answered job";
        ++replies;
      } else if ((*message)[2] == "\x04") {
        const auto error = detail::DecodeErrorBody((*message)[3]);
        EXPECT_EQ(error.job_id, poison) << ToString(error.code) << ": " << error.message;
        poison_error = error;
      }
    }
    while (const auto request = sink->Receive(0ms)) {
      if (request->size() < 5 || (*request)[2] != "\x02") continue;
      const Value batch = DecodeValue((*request)[4]);
      for (const Value& report : batch.At("reports").AsArray()) dead_letters.push_back(report);
      sink->Send({"", "CRW01", "\x03", (*request)[3], "stored"});
    }
    if (Clock::now() - last_sink_beat > 1s) {
      sink->Send({"", "CRW01", "\x04"});
      last_sink_beat = Clock::now();
    }
  }
  EXPECT_EQ(replies, normal) << "the stream's other jobs were not all answered";
  ASSERT_TRUE(poison_error.has_value()) << "the poison job's client got no answer";
  EXPECT_EQ(poison_error->code, ErrorCode::kWorkerCrashed);
  EXPECT_NE(poison_error->message.find("poison job"), std::string::npos) << poison_error->message;
  ASSERT_EQ(dead_letters.size(), 1u);
  EXPECT_EQ(dead_letters[0].At("code").AsUint(), static_cast<std::uint64_t>(ErrorCode::kWorkerCrashed));
  EXPECT_EQ(dead_letters[0].At("job_id").AsBinary().bytes, std::string(poison.View()));
  EXPECT_EQ(dead_letters[0].At("payload").AsBinary().bytes, "poison");
  EXPECT_EQ(started, 4) << "the poison job should have killed exactly two worker processes";
  EXPECT_EQ(Stat("poison_jobs"), 1u);
  EXPECT_EQ(Stat("crashes"), 2u);
  EXPECT_EQ(Stat("workers_expired"), 0u);
  std::cout << "normal replies " << replies << ", poison answered " << ToString(poison_error->code)
            << ", worker processes started " << started << "\n";
}

}  // namespace
}  // namespace courier::test
