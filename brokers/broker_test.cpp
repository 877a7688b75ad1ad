// The routing core, frame in / frame out, on a fake clock: no sockets, no sleeping.
#include "broker.hpp"

#include <gtest/gtest.h>

#include <map>

#include "envelope_codec.hpp"
#include "frames.hpp"
#include "msgpack_reader.hpp"
#include "protocol.hpp"
#include "courier/value.hpp"
#include <set>

namespace courier::broker {
namespace {

using Message = std::vector<std::string>;
using namespace std::chrono_literals;

class FakeOutbox final : public Outbox {
 public:
  SendResult Send(std::span<zmq::message_t> frames) override {
    Message message;
    for (auto& frame : frames) message.emplace_back(frame.to_string());
    if (unreachable.count(message[0]) != 0) return SendResult::kUnreachable;
    sent.push_back(std::move(message));
    return SendResult::kSent;
  }
  // Returns and forgets every message sent to `peer`.
  std::vector<Message> Take(const std::string& peer) {
    std::vector<Message> taken;
    std::erase_if(sent, [&](const Message& message) {
      if (message[0] != peer) return false;
      taken.push_back(message);
      return true;
    });
    return taken;
  }
  std::vector<Message> sent;
  std::set<std::string> unreachable;
};



class BrokerTest : public ::testing::Test {
 protected:
  BrokerTest() { Reset(BrokerConfig{}); }

  void Reset(BrokerConfig config) {
    config.heartbeat_interval = 1000ms;
    config.heartbeat_liveness = 3;
    broker_ = std::make_unique<Broker>(std::move(config), outbox_, 42);
  }

  Now At() const { return Now{start_ + elapsed_, 1'800'000'000'000ULL + static_cast<std::uint64_t>(elapsed_.count())}; }
  void Advance(std::chrono::milliseconds by) {
    elapsed_ += by;
    broker_->OnTick(At());
  }

  void Deliver(const Message& message) {
    std::vector<zmq::message_t> frames;
    for (const auto& frame : message) frames.emplace_back(frame.data(), frame.size());
    broker_->OnMessage(frames, At());
  }

  void CourierReady(const std::string& id, const std::string& service, std::uint32_t capacity = 1,
                    std::uint32_t weight = 1) {
    detail::ReadyInfo info;
    info.capacity = capacity;
    info.weight = weight;
    info.host = "test";
    info.instance = id;
    Deliver({id, "", "CRW01", "\x01", service, detail::EncodeReadyInfo(info)});
  }

  std::string MakeEnvelope(const std::string& service, JobId id, ReplyMode mode = ReplyMode::kCall,
                           std::uint32_t max_attempts = 3, std::uint64_t deadline_in_ms = 30000) {
    Envelope envelope;
    envelope.job_id = id;
    envelope.service = service;
    envelope.created_at_ms = At().unix_ms;
    envelope.deadline_ms = At().unix_ms + deadline_in_ms;
    envelope.max_attempts = max_attempts;
    envelope.mode = mode;
    return detail::EncodeEnvelope(envelope);
  }

  JobId Submit(const std::string& client, const std::string& service, ReplyMode mode = ReplyMode::kCall,
               std::uint32_t max_attempts = 3, std::uint64_t deadline_in_ms = 30000) {
    const JobId id = JobId::Random();
    Deliver({client, "", "CRC01", "\x01", MakeEnvelope(service, id, mode, max_attempts, deadline_in_ms), "payload"});
    return id;
  }

  // Replies to every REQUEST the worker got, as a Courier worker.
  std::size_t AnswerAll(const std::string& worker) {
    std::size_t answered = 0;
    for (const auto& message : outbox_.Take(worker)) {
      if (message.size() == 6 && message[3] == "\x02") {
        Deliver({worker, "", "CRW01", "\x03", message[4], "reply"});
        ++answered;
      }
    }
    return answered;
  }

  static std::size_t Requests(const std::vector<Message>& messages) {
    return std::count_if(messages.begin(), messages.end(),
                         [](const Message& m) { return m.size() >= 4 && m[3] == "\x02"; });
  }

  static detail::ErrorBody ErrorOf(const Message& message) {
    EXPECT_EQ(message.size(), 5u);
    EXPECT_EQ(message[3], "\x04");
    return detail::DecodeErrorBody(message[4]);
  }

  FakeOutbox outbox_;
  std::unique_ptr<Broker> broker_;
  SteadyTime start_ = std::chrono::steady_clock::now();
  std::chrono::milliseconds elapsed_{0};
};

TEST_F(BrokerTest, MdpRequestReplyUsesExactFrames) {
  Deliver({"W1", "", "MDPW01", "\x01", "echo"});
  Deliver({"C1", "", "MDPC01", "echo", "hello", "world"});
  auto to_worker = outbox_.Take("W1");
  ASSERT_EQ(to_worker.size(), 1u);
  EXPECT_EQ(to_worker[0], (Message{"W1", "", "MDPW01", "\x02", "C1", "", "hello", "world"}));
  Deliver({"W1", "", "MDPW01", "\x03", "C1", "", "hello", "world"});
  auto to_client = outbox_.Take("C1");
  ASSERT_EQ(to_client.size(), 1u);
  EXPECT_EQ(to_client[0], (Message{"C1", "", "MDPC01", "echo", "hello", "world"}));
  EXPECT_EQ(broker_->LiveJobs(), 0u);
}

TEST_F(BrokerTest, MmiServiceAnswers200Then404WhenLastWorkerLeaves) {
  Deliver({"C1", "", "MDPC01", "mmi.service", "echo"});
  EXPECT_EQ(outbox_.Take("C1").at(0), (Message{"C1", "", "MDPC01", "mmi.service", "404"}));
  Deliver({"W1", "", "MDPW01", "\x01", "echo"});
  Deliver({"C1", "", "MDPC01", "mmi.service", "echo"});
  EXPECT_EQ(outbox_.Take("C1").at(0).back(), "200");
  Deliver({"W1", "", "MDPW01", "\x05"});
  Deliver({"C1", "", "MDPC01", "mmi.service", "echo"});
  EXPECT_EQ(outbox_.Take("C1").at(0).back(), "404");
  Deliver({"C1", "", "MDPC01", "mmi.workers", "echo"});
  EXPECT_EQ(outbox_.Take("C1").at(0), (Message{"C1", "", "MDPC01", "mmi.workers", "501"}));
}

TEST_F(BrokerTest, ProtocolErrorsGetDisconnect) {
  const Message disconnect{"W1", "", "MDPW01", "\x05"};
  Deliver({"W1", "", "MDPW01", "\x04"});  // HEARTBEAT before READY
  EXPECT_EQ(outbox_.Take("W1").at(0), disconnect);
  Deliver({"W1", "", "MDPW01", "\x03", "C1", "", "x"});  // REPLY before READY
  EXPECT_EQ(outbox_.Take("W1").at(0), disconnect);
  Deliver({"W1", "", "MDPW01", "\x01", "mmi.service"});  // READY for mmi.*
  EXPECT_EQ(outbox_.Take("W1").at(0), disconnect);
  Deliver({"W1", "", "MDPW01", "\x01", "echo"});
  Deliver({"W1", "", "MDPW01", "\x01", "echo"});  // second READY
  EXPECT_EQ(outbox_.Take("W1").at(0), disconnect);
  EXPECT_EQ(broker_->WorkerCount("echo"), 0u);
  EXPECT_EQ(broker_->counters().protocol_errors, 4u);
}

TEST_F(BrokerTest, RequestsQueueUntilAWorkerRegisters) {
  Deliver({"C1", "", "MDPC01", "late", "job"});
  EXPECT_EQ(broker_->QueueDepth("late"), 1u);
  Deliver({"W1", "", "MDPW01", "\x01", "late"});
  EXPECT_EQ(Requests(outbox_.Take("W1")), 1u);
  EXPECT_EQ(broker_->QueueDepth("late"), 0u);
}

TEST_F(BrokerTest, HeartbeatsIdleWorkersAndPurgesSilentOnes) {
  Deliver({"W1", "", "MDPW01", "\x01", "echo"});
  Advance(999ms);
  EXPECT_TRUE(outbox_.Take("W1").empty());
  Advance(1ms);
  EXPECT_EQ(outbox_.Take("W1").at(0), (Message{"W1", "", "MDPW01", "\x04"}));
  Deliver({"W1", "", "MDPW01", "\x04"});  // refreshes expiry at 1000 ms
  Advance(2999ms);
  EXPECT_EQ(broker_->WorkerCount("echo"), 1u);
  Advance(1ms);
  EXPECT_EQ(broker_->WorkerCount("echo"), 0u);
  EXPECT_EQ(broker_->counters().workers_expired, 1u);
}

TEST_F(BrokerTest, BusyWorkersStillGetHeartbeats) {
  CourierReady("W1", "slow");
  Submit("C1", "slow");
  EXPECT_EQ(Requests(outbox_.Take("W1")), 1u);
  Advance(1000ms);
  const auto messages = outbox_.Take("W1");
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_EQ(messages[0][3], "\x04");
}

TEST_F(BrokerTest, CourierCallRoundTripForwardsReplyFramesUnchanged) {
  CourierReady("W1", "echo");
  const JobId id = Submit("C1", "echo");
  const auto requests = outbox_.Take("W1");
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0][2], "CRW01");
  EXPECT_EQ(requests[0][5], "payload");
  EXPECT_EQ(detail::DecodeEnvelope(requests[0][4]).job_id, id);
  Deliver({"W1", "", "CRW01", "\x03", requests[0][4], "sealed reply"});
  const auto replies = outbox_.Take("C1");
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(replies[0], (Message{"C1", "", "CRC01", "\x03", requests[0][4], "sealed reply"}));
}

TEST_F(BrokerTest, FireAndForgetIsAcceptedAndItsReplyNotForwarded) {
  CourierReady("W1", "echo");
  const JobId id = Submit("C1", "echo", ReplyMode::kSend);
  const auto accepts = outbox_.Take("C1");
  ASSERT_EQ(accepts.size(), 1u);
  EXPECT_EQ(accepts[0], (Message{"C1", "", "CRC01", "\x02", std::string(id.View())}));
  EXPECT_EQ(AnswerAll("W1"), 1u);
  EXPECT_TRUE(outbox_.Take("C1").empty());
  EXPECT_EQ(broker_->LiveJobs(), 0u);
}

TEST_F(BrokerTest, CapacityBoundsJobsInFlightPerWorker) {
  CourierReady("W1", "work", 3);
  for (int i = 0; i < 10; ++i) Submit("C1", "work");
  EXPECT_EQ(Requests(outbox_.Take("W1")), 3u);
  EXPECT_EQ(broker_->QueueDepth("work"), 7u);
  // Each reply frees one credit, and exactly one more job flows.
  auto more = outbox_.sent;
  ASSERT_TRUE(more.empty());
  CourierReady("W2", "work", 2);
  EXPECT_EQ(Requests(outbox_.Take("W2")), 2u);
  EXPECT_EQ(broker_->QueueDepth("work"), 5u);
}

TEST_F(BrokerTest, CreditUpdateChangesCapacity) {
  CourierReady("W1", "work", 1);
  for (int i = 0; i < 5; ++i) Submit("C1", "work");
  EXPECT_EQ(Requests(outbox_.Take("W1")), 1u);
  Deliver({"W1", "", "CRW01", "\x07", detail::EncodeCredit(4)});
  EXPECT_EQ(Requests(outbox_.Take("W1")), 3u);
}

TEST_F(BrokerTest, FullQueueAnswersBusyAtOnce) {
  BrokerConfig config;
  config.defaults.queue_limit = 2;
  Reset(config);
  Submit("C1", "nobody");
  Submit("C1", "nobody");
  EXPECT_TRUE(outbox_.Take("C1").empty());
  const JobId third = Submit("C1", "nobody");
  const auto replies = outbox_.Take("C1");
  ASSERT_EQ(replies.size(), 1u);
  const auto error = ErrorOf(replies[0]);
  EXPECT_EQ(error.code, ErrorCode::kBusy);
  EXPECT_EQ(error.job_id, third);
  EXPECT_EQ(broker_->QueueDepth("nobody"), 2u);
}

TEST_F(BrokerTest, QueuedJobPastItsDeadlineIsDroppedAndClientTold) {
  const JobId id = Submit("C1", "nobody", ReplyMode::kCall, 3, 500);
  Advance(499ms);
  EXPECT_TRUE(outbox_.Take("C1").empty());
  Advance(101ms);
  const auto replies = outbox_.Take("C1");
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(ErrorOf(replies[0]).code, ErrorCode::kDeadlineExceeded);
  EXPECT_EQ(ErrorOf(replies[0]).job_id, id);
  EXPECT_EQ(broker_->QueueDepth("nobody"), 0u);
  EXPECT_EQ(broker_->LiveJobs(), 0u);
  CourierReady("W1", "nobody");
  EXPECT_EQ(Requests(outbox_.Take("W1")), 0u);  // an expired job is never dispatched
}

TEST_F(BrokerTest, SubmitAlreadyPastDeadlineIsRefused) {
  CourierReady("W1", "echo");
  const JobId id = JobId::Random();
  Envelope envelope;
  envelope.job_id = id;
  envelope.service = "echo";
  envelope.deadline_ms = At().unix_ms - 1;
  Deliver({"C1", "", "CRC01", "\x01", detail::EncodeEnvelope(envelope), "p"});
  EXPECT_EQ(ErrorOf(outbox_.Take("C1").at(0)).code, ErrorCode::kDeadlineExceeded);
  EXPECT_EQ(Requests(outbox_.Take("W1")), 0u);
}

TEST_F(BrokerTest, LostWorkersJobsAreRedeliveredWithAttemptCounted) {
  CourierReady("W1", "work", 2);
  const JobId a = Submit("C1", "work");
  Submit("C1", "work");
  EXPECT_EQ(Requests(outbox_.Take("W1")), 2u);
  Deliver({"W1", "", "CRW01", "\x05"});  // disconnect with two jobs held
  EXPECT_EQ(broker_->QueueDepth("work"), 2u);
  CourierReady("W2", "work", 2);
  const auto requests = outbox_.Take("W2");
  ASSERT_EQ(requests.size(), 2u);
  const auto first = detail::DecodeEnvelope(requests[0][4]);
  EXPECT_EQ(first.job_id, a);  // back at the front, in order
  EXPECT_EQ(first.attempt, 2u);
  EXPECT_EQ(broker_->counters().redelivered, 2u);
  for (const auto& request : requests) Deliver({"W2", "", "CRW01", "\x03", request[4], "reply"});
  EXPECT_EQ(outbox_.Take("C1").size(), 2u);
}

TEST_F(BrokerTest, ExhaustedJobIsDeadLetteredToErrorSinkAndClientTold) {
  CourierReady("W1", "work");
  const JobId id = Submit("C1", "work", ReplyMode::kCall, 1);
  EXPECT_EQ(Requests(outbox_.Take("W1")), 1u);
  Advance(3000ms);  // W1 silent → expired
  const auto replies = outbox_.Take("C1");
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(ErrorOf(replies[0]).code, ErrorCode::kAttemptsExhausted);
  EXPECT_EQ(broker_->counters().dead_lettered, 1u);
  EXPECT_EQ(broker_->QueueDepth("courier.errors"), 1u);  // buffered until the sink appears
  CourierReady("SINK", "courier.errors");
  const auto to_sink = outbox_.Take("SINK");
  ASSERT_EQ(Requests(to_sink), 1u);
  const auto envelope = detail::DecodeEnvelope(to_sink[0][4]);
  EXPECT_EQ(envelope.key_id, kUnsealedKeyId);
  EXPECT_EQ(envelope.mode, ReplyMode::kSend);
  const Value report = DecodeValue(to_sink[0][5]);
  const Value& entry = report.At("reports").AsArray().at(0);
  EXPECT_EQ(entry.At("job_id").AsBinary().bytes, std::string(id.View()));
  EXPECT_EQ(entry.At("payload").AsBinary().bytes, "payload");
  EXPECT_EQ(entry.At("code").AsUint(), static_cast<std::uint64_t>(ErrorCode::kAttemptsExhausted));
  EXPECT_EQ(entry.At("reporter").AsString(), "broker");
}

TEST_F(BrokerTest, DeadLetterNamesTheSubmittersCurveKeyAsSender) {
  CourierReady("W1", "work", 2);
  const JobId id = JobId::Random();
  {
    const Message submit{"C1", "", "CRC01", "\x01", MakeEnvelope("work", id, ReplyMode::kCall, 1), "payload"};
    std::vector<zmq::message_t> frames;
    for (const auto& frame : submit) frames.emplace_back(frame.data(), frame.size());
    broker_->OnMessage(frames, At(), PeerRole::kClient, "client:billing-7");
  }
  Submit("C2", "work", ReplyMode::kCall, 1);  // no CURVE: no sender
  EXPECT_EQ(Requests(outbox_.Take("W1")), 2u);
  Advance(3000ms);  // W1 silent → both jobs exhausted
  CourierReady("SINK", "courier.errors", 10);
  std::map<std::string, std::string> senders;  // job id → sender
  for (const auto& message : outbox_.Take("SINK")) {
    if (message.size() != 6 || message[3] != "\x02") continue;
    const Value report = DecodeValue(message[5]);
    const Value& entry = report.At("reports").AsArray().at(0);
    senders[entry.At("job_id").AsBinary().bytes] = entry.At("sender").AsString();
  }
  ASSERT_EQ(senders.size(), 2u);
  EXPECT_EQ(senders[std::string(id.View())], "billing-7");
  for (const auto& [job, sender] : senders) {
    if (job != std::string(id.View())) {
      EXPECT_EQ(sender, "");
    }
  }
}

TEST_F(BrokerTest, AWorkerKeyMayOnlySendReports) {
  const auto deliver_as_worker = [&](const Message& message) {
    std::vector<zmq::message_t> frames;
    for (const auto& frame : message) frames.emplace_back(frame.data(), frame.size());
    broker_->OnMessage(frames, At(), PeerRole::kWorker, "worker:host-1");
  };
  const JobId job = JobId::Random();
  deliver_as_worker({"H1", "", "CRC01", "\x01", MakeEnvelope("echo", job), "payload"});
  auto replies = outbox_.Take("H1");
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(ErrorOf(replies[0]).code, ErrorCode::kUnauthorized);
  EXPECT_EQ(ErrorOf(replies[0]).job_id, job);  // named, so the client fails it at once
  // A query of the error sink (mode call) is a client's business too.
  deliver_as_worker({"H1", "", "CRC01", "\x01", MakeEnvelope("courier.errors", JobId::Random()), "{}"});
  replies = outbox_.Take("H1");
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(ErrorOf(replies[0]).code, ErrorCode::kUnauthorized);
  // Reports (mode send to courier.errors or courier.metrics) are accepted.
  const JobId report = JobId::Random();
  deliver_as_worker({"H1", "", "CRC01", "\x01", MakeEnvelope("courier.metrics", report, ReplyMode::kSend), "{}"});
  replies = outbox_.Take("H1");
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(replies[0], (Message{"H1", "", "CRC01", "\x02", std::string(report.View())}));
  EXPECT_EQ(broker_->QueueDepth("courier.metrics"), 1u);
  EXPECT_EQ(broker_->counters().refused_peers, 2u);
}

TEST_F(BrokerTest, UnreachableWorkerIsDroppedAndJobGoesElsewhere) {
  CourierReady("W1", "work");
  CourierReady("W2", "work");
  outbox_.unreachable.insert("W1");
  outbox_.unreachable.insert("W2");
  Submit("C1", "work");
  EXPECT_EQ(broker_->WorkerCount("work"), 0u);
  EXPECT_EQ(broker_->QueueDepth("work"), 1u);
  outbox_.unreachable.clear();
  CourierReady("W3", "work");
  EXPECT_EQ(Requests(outbox_.Take("W3")), 1u);
}

TEST_F(BrokerTest, ResubmittedJobIdIsNotQueuedTwice) {
  const JobId id = JobId::Random();
  const std::string envelope = MakeEnvelope("work", id);
  Deliver({"C1", "", "CRC01", "\x01", envelope, "p"});
  Deliver({"C2", "", "CRC01", "\x01", envelope, "p"});  // same job via a new connection
  EXPECT_EQ(broker_->QueueDepth("work"), 1u);
  CourierReady("W1", "work");
  EXPECT_EQ(AnswerAll("W1"), 1u);
  EXPECT_TRUE(outbox_.Take("C1").empty());
  EXPECT_EQ(outbox_.Take("C2").size(), 1u);  // the latest connection gets the answer
}

TEST_F(BrokerTest, LateReplyAfterRedeliveryIsDropped) {
  CourierReady("W1", "work");
  Submit("C1", "work");
  const auto first = outbox_.Take("W1");
  CourierReady("W2", "work");
  Deliver({"W1", "", "CRW01", "\x05"});
  const auto second = outbox_.Take("W2");
  ASSERT_EQ(Requests(second), 1u);
  Deliver({"W2", "", "CRW01", "\x03", second[0][4], "r2"});
  EXPECT_EQ(outbox_.Take("C1").size(), 1u);
  Deliver({"W2", "", "CRW01", "\x03", second[0][4], "r2 again"});
  EXPECT_TRUE(outbox_.Take("C1").empty());
  EXPECT_EQ(broker_->counters().late_replies, 1u);
}

TEST_F(BrokerTest, WorkerErrorIsForwardedToClient) {
  CourierReady("W1", "work");
  const JobId id = Submit("C1", "work");
  outbox_.Take("W1");
  Deliver({"W1", "", "CRW01", "\x06", detail::EncodeErrorBody(id, ErrorCode::kHandlerError, "boom")});
  const auto error = ErrorOf(outbox_.Take("C1").at(0));
  EXPECT_EQ(error.code, ErrorCode::kHandlerError);
  EXPECT_EQ(error.message, "boom");
}

TEST_F(BrokerTest, RejectRequeuesWithoutCountingAnAttempt) {
  CourierReady("W1", "work");
  const JobId id = Submit("C1", "work");
  outbox_.Take("W1");
  Deliver({"W1", "", "CRW01", "\x07", detail::EncodeCredit(0)});
  Deliver({"W1", "", "CRW01", "\x08", detail::EncodeReject(id, ErrorCode::kShuttingDown)});
  EXPECT_TRUE(outbox_.Take("W1").empty());  // a draining worker gets nothing new
  CourierReady("W2", "work");
  const auto requests = outbox_.Take("W2");
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(detail::DecodeEnvelope(requests[0][4]).attempt, 1u);
}



TEST_F(BrokerTest, WeightedStrategyGivesThreeToOne) {
  BrokerConfig config;
  config.defaults.strategy = Strategy::kWeighted;
  Reset(config);
  CourierReady("HEAVY", "work", 1, 3);
  CourierReady("LIGHT", "work", 1, 1);
  std::map<std::string, int> counts;
  for (int i = 0; i < 4000; ++i) {
    Submit("C1", "work");
    for (const auto* worker : {"HEAVY", "LIGHT"}) counts[worker] += static_cast<int>(AnswerAll(worker));
  }
  EXPECT_EQ(counts["HEAVY"], 3000);
  EXPECT_EQ(counts["LIGHT"], 1000);
}

TEST_F(BrokerTest, RoundRobinAlternatesAndRandomUsesEveryone) {
  for (const Strategy strategy : {Strategy::kRoundRobin, Strategy::kRandom, Strategy::kLeastLoaded}) {
    BrokerConfig config;
    config.defaults.strategy = strategy;
    Reset(config);
    outbox_.sent.clear();
    for (const auto* worker : {"A", "B", "C"}) CourierReady(worker, "work", 1);
    std::map<std::string, int> counts;
    for (int i = 0; i < 3000; ++i) {
      Submit("C1", "work");
      for (const auto* worker : {"A", "B", "C"}) counts[worker] += static_cast<int>(AnswerAll(worker));
    }
    for (const auto* worker : {"A", "B", "C"}) {
      if (strategy == Strategy::kRandom) {
        EXPECT_NEAR(counts[worker], 1000, 150) << worker;
      } else {
        EXPECT_EQ(counts[worker], 1000) << ToString(strategy) << " " << worker;
      }
    }
    Deliver({"A", "", "CRW01", "\x05"});
    Deliver({"B", "", "CRW01", "\x05"});
    Deliver({"C", "", "CRW01", "\x05"});
  }
}

TEST_F(BrokerTest, LeastLoadedPrefersTheWorkerWithMostFreeCredit) {
  CourierReady("BIG", "work", 4);
  CourierReady("SMALL", "work", 1);
  for (int i = 0; i < 5; ++i) Submit("C1", "work");
  EXPECT_EQ(Requests(outbox_.Take("BIG")), 4u);
  EXPECT_EQ(Requests(outbox_.Take("SMALL")), 1u);
}

TEST_F(BrokerTest, MalformedInputIsCountedAndNeverFatal) {
  Deliver({"X"});
  Deliver({"X", "not empty", "CRC01"});
  Deliver({"X", "", "NOPE01", "\x01"});
  Deliver({"X", "", "CRC01", "\x01", "not an envelope", "p"});
  Deliver({"X", "", "CRC01", "\x01"});
  Deliver({"X", "", "CRC01", "\x7f"});
  Deliver({"X", "", "CRW01", "\x01", "svc", "\xc1"});  // bad ready info
  Deliver({"X", "", "CRW01", "\x09"});
  const auto& counters = broker_->counters();
  EXPECT_GE(counters.malformed + counters.unknown_command + counters.protocol_errors, 7u);
  // Still serving.
  CourierReady("W1", "echo");
  Submit("C1", "echo");
  EXPECT_EQ(AnswerAll("W1"), 1u);
}

TEST_F(BrokerTest, OversizedSubmitIsAnsweredTooLarge) {
  BrokerConfig config;
  config.max_message_bytes = 1024;
  Reset(config);
  const JobId id = JobId::Random();
  Deliver({"C1", "", "CRC01", "\x01", MakeEnvelope("echo", id), std::string(2000, 'x')});
  const auto error = ErrorOf(outbox_.Take("C1").at(0));
  EXPECT_EQ(error.code, ErrorCode::kTooLarge);
  EXPECT_EQ(error.job_id, id);
  EXPECT_EQ(broker_->counters().oversized, 1u);
}

TEST_F(BrokerTest, QueriesDescribeServicesWorkersAndStats) {
  CourierReady("W1", "echo", 5);
  Submit("C1", "echo");
  Deliver({"C1", "", "CRC01", "\x05", "q1", detail::EncodeQuery("services")});
  auto reply = outbox_.Take("C1").back();
  ASSERT_EQ(reply.size(), 6u);
  EXPECT_EQ(reply[4], "q1");
  Value body = DecodeValue(reply[5]);
  EXPECT_EQ(body.AsArray().at(0).AsUint(), 0u);
  const Value& service = body.AsArray().at(1).AsArray().at(0);
  EXPECT_EQ(service.At("name").AsString(), "echo");
  EXPECT_EQ(service.At("workers").AsUint(), 1u);
  EXPECT_EQ(service.At("in_flight").AsUint(), 1u);
  Deliver({"C1", "", "CRC01", "\x05", "q2", detail::EncodeQuery("workers")});
  body = DecodeValue(outbox_.Take("C1").back()[5]);
  EXPECT_EQ(body.AsArray().at(1).AsArray().at(0).At("capacity").AsUint(), 5u);
  Deliver({"C1", "", "CRC01", "\x05", "q3", detail::EncodeQuery("stats")});
  body = DecodeValue(outbox_.Take("C1").back()[5]);
  EXPECT_EQ(body.AsArray().at(1).At("jobs_accepted").AsUint(), 1u);
  Deliver({"C1", "", "CRC01", "\x05", "q4", detail::EncodeQuery("nope")});
  body = DecodeValue(outbox_.Take("C1").back()[5]);
  EXPECT_EQ(body.AsArray().at(0).AsUint(), static_cast<std::uint64_t>(ErrorCode::kBadRequest));
}

TEST_F(BrokerTest, PingIsAnsweredWithPong) {
  Deliver({"C1", "", "CRC01", "\x07", "abc"});
  EXPECT_EQ(outbox_.Take("C1").at(0), (Message{"C1", "", "CRC01", "\x08", "abc", broker_->incarnation()}));
  EXPECT_EQ(broker_->incarnation().size(), 8u);
}

TEST_F(BrokerTest, DrainRefusesNewJobsAnswersQueuedOnesAndLetsInFlightFinish) {
  CourierReady("W1", "work", 1);
  const JobId running = Submit("C1", "work");
  const JobId queued = Submit("C1", "work");
  const auto requests = outbox_.Take("W1");
  ASSERT_EQ(requests.size(), 1u);
  broker_->BeginDrain(At());
  EXPECT_FALSE(broker_->Drained());
  const auto refused = outbox_.Take("C1");
  ASSERT_EQ(refused.size(), 1u);
  EXPECT_EQ(ErrorOf(refused[0]).code, ErrorCode::kShuttingDown);
  EXPECT_EQ(ErrorOf(refused[0]).job_id, queued);
  const JobId late = Submit("C2", "work");
  EXPECT_EQ(ErrorOf(outbox_.Take("C2").at(0)).job_id, late);
  Deliver({"W1", "", "CRW01", "\x03", requests[0][4], "done"});
  const auto replies = outbox_.Take("C1");
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(replies[0][3], "\x03");
  EXPECT_TRUE(broker_->Drained());
  (void)running;
}

TEST_F(BrokerTest, ReportsItsStageTimingsToTheCollectorOnceASecond) {
  CourierReady("W1", "echo", 10);
  for (int i = 0; i < 5; ++i) Submit("C1", "echo");
  elapsed_ += 3ms;
  EXPECT_EQ(AnswerAll("W1"), 5u);
  Advance(1000ms);  // no collector yet: nothing is queued for it
  EXPECT_EQ(broker_->QueueDepth("courier.metrics"), 0u);
  CourierReady("COLLECTOR", "courier.metrics");
  Advance(1000ms);
  const auto to_collector = outbox_.Take("COLLECTOR");
  ASSERT_EQ(Requests(to_collector), 1u);
  EXPECT_EQ(detail::DecodeEnvelope(to_collector.back()[4]).mode, ReplyMode::kSend);
  const Value report = DecodeValue(to_collector.back()[5]);
  EXPECT_EQ(report.At("process").AsString(), "broker");
  std::map<std::string, std::uint64_t> counts;
  for (const Value& stage : report.At("stages").AsArray()) {
    EXPECT_EQ(stage.At("service").AsString(), "echo");
    counts[stage.At("stage").AsString()] = stage.At("count").AsUint();
  }
  EXPECT_EQ(counts["queue_wait"], 5u);
  EXPECT_EQ(counts["dispatch"], 5u);
}

TEST_F(BrokerTest, MdpClientJobServedByCourierWorkerGetsPayloadBack) {
  CourierReady("W1", "echo");
  Deliver({"C1", "", "MDPC01", "echo", "plain body"});
  const auto requests = outbox_.Take("W1");
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(detail::DecodeEnvelope(requests[0][4]).key_id, kUnsealedKeyId);
  EXPECT_EQ(requests[0][5], "plain body");
  Deliver({"W1", "", "CRW01", "\x03", requests[0][4], "plain reply"});
  EXPECT_EQ(outbox_.Take("C1").at(0), (Message{"C1", "", "MDPC01", "echo", "plain reply"}));
}

TEST_F(BrokerTest, MemoryIsReturnedAfterABurstDrains) {
  CourierReady("W1", "work", 100);
  for (int round = 0; round < 50; ++round) {
    for (int i = 0; i < 100; ++i) Submit("C1", "work");
    EXPECT_EQ(AnswerAll("W1"), 100u);
    outbox_.Take("C1");
  }
  EXPECT_EQ(broker_->LiveJobs(), 0u);
}

}  // namespace
}  // namespace courier::broker
