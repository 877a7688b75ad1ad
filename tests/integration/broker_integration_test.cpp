// courier-broker as a real process, driven by raw Majordomo and Courier frames.
#include <signal.h>

#include <map>
#include <set>

#include "broker_fixture.hpp"

namespace courier::test {
namespace {

using namespace std::chrono_literals;

class BrokerIntegrationTest : public BrokerFixture {
 protected:
  void SetUp() override { StartBroker(); }
};

TEST_F(BrokerIntegrationTest, PlainMajordomoRoundTripHasExactFrames) {
  auto worker = Peer();
  worker->Send({"", "MDPW01", "\x01", "echo"});
  ASSERT_TRUE(WaitForMmi("echo", "200", 5s));
  auto client = Peer();
  client->Send({"", "MDPC01", "echo", "part one", "part two"});
  const auto request = worker->ReceiveWhere(2, "\x02");
  ASSERT_TRUE(request);
  ASSERT_EQ(request->size(), 7u);
  EXPECT_EQ((*request)[0], "");
  EXPECT_EQ((*request)[1], "MDPW01");
  EXPECT_EQ((*request)[4], "");
  EXPECT_EQ((*request)[5], "part one");
  EXPECT_EQ((*request)[6], "part two");
  worker->Send({"", "MDPW01", "\x03", (*request)[3], "", "answer"});
  const auto reply = client->Receive();
  ASSERT_TRUE(reply);
  EXPECT_EQ(*reply, (Frames{"", "MDPC01", "echo", "answer"}));
}

TEST_F(BrokerIntegrationTest, MmiAnswers404Then200Then404AndOthers501) {
  auto client = Peer();
  client->Send({"", "MDPC01", "mmi.service", "echo"});
  EXPECT_EQ(client->Receive()->back(), "404");
  auto worker = Peer();
  worker->Send({"", "MDPW01", "\x01", "echo"});
  EXPECT_TRUE(WaitForMmi("echo", "200", 5s));
  worker->Send({"", "MDPW01", "\x05"});
  EXPECT_TRUE(WaitForMmi("echo", "404", 5s));
  client->Send({"", "MDPC01", "mmi.nope", "x"});
  EXPECT_EQ(*client->Receive(), (Frames{"", "MDPC01", "mmi.nope", "501"}));
}

TEST_F(BrokerIntegrationTest, ProtocolErrorsAreAnsweredWithDisconnect) {
  const Frames disconnect{"", "MDPW01", "\x05"};
  auto early_heartbeat = Peer();
  early_heartbeat->Send({"", "MDPW01", "\x04"});
  EXPECT_EQ(early_heartbeat->Receive(), disconnect);
  auto early_reply = Peer();
  early_reply->Send({"", "MDPW01", "\x03", "client", "", "body"});
  EXPECT_EQ(early_reply->Receive(), disconnect);
  auto mmi_ready = Peer();
  mmi_ready->Send({"", "MDPW01", "\x01", "mmi.service"});
  EXPECT_EQ(mmi_ready->Receive(), disconnect);
  auto twice = Peer();
  twice->Send({"", "MDPW01", "\x01", "echo"});
  twice->Send({"", "MDPW01", "\x01", "echo"});
  EXPECT_EQ(twice->ReceiveWhere(2, "\x05"), disconnect);
}

TEST_F(BrokerIntegrationTest, RequestWaitsForAWorkerThenIsServed) {
  auto client = Peer();
  client->Send({"", "MDPC01", "later", "job"});
  auto worker = Peer();
  worker->Send({"", "MDPW01", "\x01", "later"});
  const auto request = worker->ReceiveWhere(2, "\x02");
  ASSERT_TRUE(request);
  EXPECT_EQ(request->back(), "job");
}

TEST_F(BrokerIntegrationTest, HeartbeatsArriveOnTimeAndSilentWorkersArePurged) {
  auto worker = Peer();
  const auto registered = std::chrono::steady_clock::now();
  worker->Send({"", "MDPW01", "\x01", "quiet"});
  const auto heartbeat = worker->Receive(2s);
  const auto first_beat = std::chrono::steady_clock::now() - registered;
  ASSERT_TRUE(heartbeat);
  EXPECT_EQ(*heartbeat, (Frames{"", "MDPW01", "\x04"}));
  EXPECT_GE(first_beat, 150ms);
  EXPECT_LE(first_beat, 700ms);
  // Silent for liveness (3) × 200 ms: purged, so mmi.service turns to 404.
  ASSERT_TRUE(WaitForMmi("quiet", "404", 5s));
  const auto purged_after = std::chrono::steady_clock::now() - registered;
  EXPECT_GE(purged_after, 550ms);
  EXPECT_LE(purged_after, 2000ms);
}

TEST_F(BrokerIntegrationTest, CapacityLimitsJobsInFlight) {
  auto worker = Peer();
  worker->Send({"", "CRW01", "\x01", "cap", CourierReady(3)});
  auto client = Peer();
  for (int i = 0; i < 10; ++i) client->Send({"", "CRC01", "\x01", Envelope("cap", JobId::Random()), "p"});
  std::vector<Frames> held;
  while (auto request = worker->ReceiveWhere(2, "\x02", 500ms)) held.push_back(*request);
  EXPECT_EQ(held.size(), 3u);
  worker->Send({"", "CRW01", "\x03", held[0][3], "done"});
  EXPECT_TRUE(worker->ReceiveWhere(2, "\x02", 2s));
  EXPECT_FALSE(worker->ReceiveWhere(2, "\x02", 300ms));
}

TEST_F(BrokerIntegrationTest, DeadlineExpiresWhileQueued) {
  auto client = Peer();
  const JobId id = JobId::Random();
  const auto sent = std::chrono::steady_clock::now();
  client->Send({"", "CRC01", "\x01", Envelope("nobody-home", id, 3, 300), "p"});
  const auto reply = client->Receive(3s);
  ASSERT_TRUE(reply);
  const auto error = detail::DecodeErrorBody(reply->back());
  EXPECT_EQ(error.code, ErrorCode::kDeadlineExceeded);
  EXPECT_EQ(error.job_id, id);
  EXPECT_GE(std::chrono::steady_clock::now() - sent, 250ms);
}

class BoundedQueueTest : public BrokerFixture {
 protected:
  void SetUp() override { StartBroker("[defaults]\nqueue_limit = 5\n"); }
};

TEST_F(BoundedQueueTest, FullQueueAnswersBusyAtOnce) {
  auto client = Peer();
  for (int i = 0; i < 5; ++i) client->Send({"", "CRC01", "\x01", Envelope("full", JobId::Random()), "p"});
  const JobId sixth = JobId::Random();
  client->Send({"", "CRC01", "\x01", Envelope("full", sixth), "p"});
  const auto reply = client->Receive(2s);
  ASSERT_TRUE(reply);
  const auto error = detail::DecodeErrorBody(reply->back());
  EXPECT_EQ(error.code, ErrorCode::kBusy);
  EXPECT_EQ(error.job_id, sixth);
}

// Sends `jobs` calls one at a time and counts which worker served each.
std::map<std::string, int> RunSequential(RawPeer& client, std::map<std::string, RawPeer*> workers,
                                         const std::string& service, int jobs) {
  std::map<std::string, int> counts;
  for (int i = 0; i < jobs; ++i) {
    client.Send({"", "CRC01", "\x01", BrokerFixture::Envelope(service, JobId::Random()), "p"});
    bool served = false;
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (!served && std::chrono::steady_clock::now() < deadline) {
      for (auto& [name, worker] : workers) {
        if (auto request = worker->Receive(0ms); request && (*request)[2] == "\x02") {
          worker->Send({"", "CRW01", "\x03", (*request)[3], name});
          ++counts[name];
          served = true;
        }
      }
    }
    if (!served) break;
    if (!client.ReceiveWhere(2, "\x03", 5s)) break;
  }
  return counts;
}

class StrategyTest : public BrokerFixture, public ::testing::WithParamInterface<std::string> {
 protected:
  void SetUp() override {
    StartBroker("heartbeat_interval = \"1s\"\n[services.work]\nstrategy = \"" + GetParam() + "\"\n");
  }
};

TEST_P(StrategyTest, DistributesAsConfigured) {
  const bool weighted = GetParam() == "weighted";
  auto heavy = Peer();
  auto light = Peer();
  heavy->Send({"", "CRW01", "\x01", "work", CourierReady(1, weighted ? 3 : 1)});
  light->Send({"", "CRW01", "\x01", "work", CourierReady(1, 1)});
  auto client = Peer();
  ASSERT_TRUE(WaitFor([&] {
    client->Send({"", "CRC01", "\x05", "q", detail::EncodeQuery("services")});
    const auto reply = client->ReceiveWhere(2, "\x06", 1s);
    return reply && reply->back().find("workers") != std::string::npos &&
           DecodeValue(reply->back()).AsArray().at(1).AsArray().at(0).At("workers").AsUint() == 2;
  }, 5s));
  const int jobs = 4000;
  auto counts = RunSequential(*client, {{"heavy", heavy.get()}, {"light", light.get()}}, "work", jobs);
  ASSERT_EQ(counts["heavy"] + counts["light"], jobs);
  const double ratio = static_cast<double>(counts["heavy"]) / std::max(counts["light"], 1);
  std::cout << GetParam() << ": heavy " << counts["heavy"] << ", light " << counts["light"] << "\n";
  if (weighted) {
    EXPECT_NEAR(ratio, 3.0, 0.3);
  } else {
    EXPECT_NEAR(ratio, 1.0, 0.25);
  }
}

INSTANTIATE_TEST_SUITE_P(Strategies, StrategyTest,
                         ::testing::Values("least_loaded", "round_robin", "random", "weighted"));

TEST_F(BrokerIntegrationTest, KilledWorkersJobsCompleteElsewhereNoneLostNoneTwice) {
  auto first = StartWorker("worker-a", {"--protocol", "courier", "--service", "slow", "--capacity", "4",
                                        "--delay-ms", "100", "--heartbeat-ms", "200"});
  auto client = Peer();
  std::set<std::string> outstanding;
  const int jobs = 60;
  for (int i = 0; i < jobs; ++i) {
    const JobId id = JobId::Random();
    outstanding.insert(std::string(id.View()));
    client->Send({"", "CRC01", "\x01", Envelope("slow", id, 3, 60000), "p"});
  }
  ASSERT_TRUE(first.WaitForLog("served 2", 10s)) << first.Log();
  first.Signal(SIGKILL);  // dies holding up to four jobs
  first.Kill();
  auto second = StartWorker("worker-b", {"--protocol", "courier", "--service", "slow", "--capacity", "4",
                                         "--delay-ms", "10", "--heartbeat-ms", "200"});
  std::map<std::string, int> answers;
  int replies = 0, exhausted = 0;
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (replies + exhausted < jobs && std::chrono::steady_clock::now() < deadline) {
    const auto message = client->Receive(1s);
    if (!message) continue;
    std::string id;
    if ((*message)[2] == "\x03") {
      id = std::string(detail::DecodeEnvelope((*message)[3]).job_id.View());
      ++replies;
    } else if ((*message)[2] == "\x04") {
      const auto error = detail::DecodeErrorBody((*message)[3]);
      EXPECT_EQ(error.code, ErrorCode::kAttemptsExhausted);
      id = std::string(error.job_id.View());
      ++exhausted;
    }
    ++answers[id];
  }
  EXPECT_EQ(replies + exhausted, jobs);
  for (const auto& id : outstanding) EXPECT_EQ(answers[id], 1) << "job answered " << answers[id] << " times";
  EXPECT_FALSE(client->Receive(300ms)) << "an extra answer arrived";
  client->Send({"", "CRC01", "\x05", "s", detail::EncodeQuery("stats")});
  const auto stats = client->ReceiveWhere(2, "\x06", 5s);
  ASSERT_TRUE(stats);
  const auto redelivered = DecodeValue(stats->back()).AsArray().at(1).At("redelivered").AsUint();
  EXPECT_GE(redelivered, 1u) << "the killed worker held no job: the test proved nothing";
  std::cout << "replies " << replies << ", attempts exhausted " << exhausted << ", redelivered " << redelivered << "\n";
}

}  // namespace
}  // namespace courier::test
