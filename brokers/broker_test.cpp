// The routing core, frame in / frame out, on a fake clock: no sockets, no sleeping.
#include "broker.hpp"
#include "broker_test_fixture.hpp"
#include "courier/curve.hpp"

#include <gtest/gtest.h>

#include <map>

#include "envelope_codec.hpp"
#include "frames.hpp"
#include "msgpack_reader.hpp"
#include "protocol.hpp"
#include "courier/value.hpp"
#include <set>
#include <sstream>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

namespace courier::broker {
namespace {

using namespace test;
using namespace std::chrono_literals;

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

// A call or send naming a service no worker has registered is answered no_such_service at
// once when the broker is past its start-up grace (3 heartbeats); jobs queued during the
// grace are answered (calls) or dead-lettered (sends) when it ends. Enqueued jobs and
// services that had a worker wait.
TEST_F(BrokerTest, ACallToAServiceNobodyServesIsAnsweredNoSuchServiceAfterTheStartUpGrace) {
  const JobId early_call = Submit("C1", "nosuch", ReplyMode::kCall);
  const JobId early_send = Submit("C1", "nosuch", ReplyMode::kSend);
  CourierReady("W1", "echo");
  Deliver({"W1", "", "CRW01", "\x05"});  // W1 leaves: echo was served, so it is not unknown
  Advance(2900ms);
  for (const auto& message : outbox_.Take("C1")) EXPECT_NE(message[3], "\x04") << "answered inside the grace";
  Advance(200ms);
  const auto replies = outbox_.Take("C1");
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(ErrorOf(replies[0]).code, ErrorCode::kNoSuchService);
  EXPECT_EQ(ErrorOf(replies[0]).job_id, early_call);
  const auto letters = DeadLetters();
  ASSERT_EQ(letters.size(), 1u) << "the accepted send is dead-lettered, not dropped";
  EXPECT_EQ(letters[0].At("code").AsUint(), static_cast<std::uint64_t>(ErrorCode::kNoSuchService));
  EXPECT_EQ(letters[0].At("job_id").AsBinary().bytes, std::string(early_send.View()));

  const JobId late = Submit("C2", "nosuch2");
  const auto at_once = outbox_.Take("C2");
  ASSERT_EQ(at_once.size(), 1u) << "past the grace the answer comes at once";
  EXPECT_EQ(ErrorOf(at_once[0]).code, ErrorCode::kNoSuchService);
  EXPECT_EQ(ErrorOf(at_once[0]).job_id, late);
  EXPECT_NE(ErrorOf(at_once[0]).message.find("nosuch2"), std::string::npos);
  EXPECT_EQ(Query("stats").At("unknown_service").AsUint(), 3u);

  Submit("C3", "echo");  // served before: waits for a worker
  EXPECT_TRUE(outbox_.Take("C3").empty());
  EXPECT_EQ(broker_->QueueDepth("echo"), 1u);
}

// A client cut off at max_client_bytes will read no answer: its queued calls go, its sends
// (accepted work) and other clients' jobs stay.
TEST_F(BrokerTest, ADroppedSlowClientsQueuedCallsGoAndItsSendsStay) {
  CourierReady("W1", "slow");
  Submit("C0", "slow");  // W1 (capacity 1) is busy with it
  Submit("C1", "slow");
  Submit("C1", "slow");
  Submit("C1", "slow", ReplyMode::kSend);
  Submit("C2", "slow");
  EXPECT_EQ(broker_->QueueDepth("slow"), 4u);
  broker_->OnSlowClientDropped("C1", At());
  EXPECT_EQ(broker_->QueueDepth("slow"), 2u);
  EXPECT_EQ(Query("stats").At("slow_clients_dropped").AsUint(), 1u);
  EXPECT_EQ(broker_->LiveJobs(), 3u);
}

TEST_F(BrokerTest, AnExpiredSendIsDeadLetteredLikeAnyOther) {
  CourierReady("W1", "busy");
  Submit("C0", "busy");  // W1 (capacity 1) is busy with it
  const JobId sent = Submit("C1", "busy", ReplyMode::kSend, 3, 500);
  Advance(600ms);
  const auto letters = DeadLetters();
  ASSERT_EQ(letters.size(), 1u);
  EXPECT_EQ(letters[0].At("code").AsUint(), static_cast<std::uint64_t>(ErrorCode::kDeadlineExceeded));
  EXPECT_EQ(letters[0].At("job_id").AsBinary().bytes, std::string(sent.View()));
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
  outbox_.unreachable.insert("W1");  // its connection closed with two jobs held
  broker_->OnPeerDisconnected(At());
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
  Deliver({"C1", "", "CRC01", "\x01", envelope, "p"});  // a retry on the same connection
  EXPECT_EQ(broker_->QueueDepth("work"), 1u);
  outbox_.unreachable.insert("C1");                     // C1 reconnected: its old connection is gone
  Deliver({"C2", "", "CRC01", "\x01", envelope, "p"});  // same job via the new connection
  EXPECT_EQ(broker_->QueueDepth("work"), 1u);
  CourierReady("W1", "work");
  EXPECT_EQ(AnswerAll("W1"), 1u);
  EXPECT_EQ(outbox_.Take("C2").size(), 1u);  // the new connection took the orphaned job over
  EXPECT_EQ(broker_->counters().foreign_job_ids, 0u);
}

TEST_F(BrokerTest, AnotherClientNamingAHeldJobIdIsRefusedAndNeverGetsTheReply) {
  const JobId id = JobId::Random();
  const std::string envelope = MakeEnvelope("work", id);
  Deliver({"VICTIM", "", "CRC01", "\x01", envelope, "p"});
  Deliver({"THIEF", "", "CRC01", "\x01", envelope, "p"});
  const auto refused = outbox_.Take("THIEF");
  ASSERT_EQ(refused.size(), 1u);
  ASSERT_EQ(refused[0][3], "\x04");
  const auto error = detail::DecodeErrorBody(refused[0][4]);
  EXPECT_EQ(error.job_id, id);
  EXPECT_EQ(error.code, ErrorCode::kBadRequest);
  EXPECT_NE(error.message.find("already in use by another client"), std::string::npos);
  EXPECT_EQ(broker_->counters().foreign_job_ids, 1u);
  outbox_.Take("VICTIM");  // the liveness probe (an empty-correlation PONG)
  CourierReady("W1", "work");
  EXPECT_EQ(AnswerAll("W1"), 1u);
  EXPECT_TRUE(outbox_.Take("THIEF").empty());
  const auto replies = outbox_.Take("VICTIM");
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(replies[0][3], "\x03");
}

TEST_F(BrokerTest, WithCurveAJobIdBelongsToTheSubmittingKey) {
  auto deliver_as = [&](const std::string& user, const Message& message) {
    std::vector<zmq::message_t> frames;
    for (const auto& frame : message) frames.emplace_back(frame.data(), frame.size());
    broker_->OnMessage(frames, At(), PeerRole::kClient, user);
  };
  const JobId id = JobId::Random();
  const std::string envelope = MakeEnvelope("work", id);
  deliver_as("client:alice", {"A1", "", "CRC01", "\x01", envelope, "p"});
  deliver_as("client:mallory", {"M1", "", "CRC01", "\x01", envelope, "p"});  // another key: refused
  ASSERT_EQ(outbox_.Take("M1").size(), 1u);
  outbox_.unreachable.insert("A1");
  deliver_as("client:mallory", {"M1", "", "CRC01", "\x01", envelope, "p"});  // still refused: keys decide
  ASSERT_EQ(outbox_.Take("M1").size(), 1u);
  deliver_as("client:alice", {"A2", "", "CRC01", "\x01", envelope, "p"});  // alice reconnected
  EXPECT_EQ(broker_->counters().foreign_job_ids, 2u);
  CourierReady("W1", "work");
  EXPECT_EQ(AnswerAll("W1"), 1u);
  EXPECT_TRUE(outbox_.Take("M1").empty());
  EXPECT_EQ(outbox_.Take("A2").size(), 1u);
}

TEST_F(BrokerTest, IdleServicesArePrunedAfterTheGraceAndNewNamesAreCappedPerPeer) {
  BrokerConfig config;
  config.service_grace = 2000ms;
  config.new_services_per_peer = 3;
  Reset(config);
  CourierReady("W1", "kept");
  for (int i = 0; i < 5; ++i) Submit("C", "phantom-" + std::to_string(i), ReplyMode::kCall, 1, 500);
  const auto answers = outbox_.Take("C");
  ASSERT_EQ(answers.size(), 2u);  // the 4th and 5th new names: refused busy
  for (const auto& answer : answers) {
    const auto error = detail::DecodeErrorBody(answer[4]);
    EXPECT_EQ(error.code, ErrorCode::kBusy);
    EXPECT_NE(error.message.find("new services"), std::string::npos) << error.message;
  }
  EXPECT_EQ(Query("stats").At("services").AsUint(), 4u);
  Advance(1000ms);  // the jobs expire: listed no more, but held for the grace
  outbox_.Take("C");
  EXPECT_EQ(Query("services").AsArray().size(), 1u);
  Advance(1100ms);
  EXPECT_EQ(Query("stats").At("services").AsUint(), 1u);  // only the worker's service is left
  EXPECT_EQ(Query("stats").At("services_pruned").AsUint(), 3u);
  Submit("D", "phantom-0", ReplyMode::kCall, 1, 500);  // a pruned name comes back as new (C is at its quota)
  EXPECT_EQ(broker_->QueueDepth("phantom-0"), 1u);
}

TEST_F(BrokerTest, ServiceNamesMustBePrintableUtf8) {
  EXPECT_EQ(ServiceNameProblem("echo"), "");
  EXPECT_EQ(ServiceNameProblem("caf\xc3\xa9.\xe2\x82\xac"), "");
  EXPECT_NE(ServiceNameProblem(""), "");
  EXPECT_NE(ServiceNameProblem(std::string(256, 'a')), "");
  EXPECT_NE(ServiceNameProblem("a\xff"), "");
  EXPECT_NE(ServiceNameProblem("\xc0\xaf"), "");          // overlong
  EXPECT_NE(ServiceNameProblem("\xed\xa0\x80"), "");      // surrogate
  EXPECT_NE(ServiceNameProblem("\xe2\x82"), "");          // truncated
  EXPECT_NE(ServiceNameProblem("a\nb"), "");
  EXPECT_NE(ServiceNameProblem("\xc2\x85"), "");          // C1 control (NEL)
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
    // lb_monitor covers every service at once: it is reported under "*".
    EXPECT_EQ(stage.At("service").AsString(), stage.At("stage").AsString() == "lb_monitor" ? "*" : "echo");
    counts[stage.At("stage").AsString()] = stage.At("count").AsUint();
  }
  EXPECT_EQ(counts["queue_wait"], 5u);
  EXPECT_EQ(counts["dispatch"], 5u);
  EXPECT_EQ(counts["lb_strategy"], 5u);  // one pick per dispatch
  EXPECT_GE(counts["lb_monitor"], 2u);   // every tick's heartbeat and expiry pass
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


// ---- Prompt loss detection (PROTOCOL.md §7.6) ------------------------------------------

TEST_F(BrokerTest, PeerDisconnectProbesWorkersHoldingJobsAndRequeuesTheGoneOnes) {
  CourierReady("W1", "work");
  CourierReady("IDLE", "work");
  const JobId id = Submit("C1", "work");
  ASSERT_EQ(RequestIds(outbox_.Take("W1")), std::vector<JobId>{id});
  outbox_.unreachable.insert("W1");  // its process died: the ROUTER has no route to it
  broker_->OnPeerDisconnected(At());
  EXPECT_EQ(broker_->WorkerCount("work"), 1u);
  const auto to_idle = outbox_.Take("IDLE");
  ASSERT_EQ(RequestIds(to_idle), std::vector<JobId>{id});  // redelivered at once
  EXPECT_EQ(detail::DecodeEnvelope(to_idle[0][4]).attempt, 2u);
  EXPECT_EQ(broker_->counters().workers_unreachable, 1u);
  EXPECT_EQ(broker_->counters().crashes, 1u);
  EXPECT_EQ(broker_->counters().redelivered, 1u);
  EXPECT_TRUE(outbox_.Take("C1").empty());
}

TEST_F(BrokerTest, PeerDisconnectProbesOnlyWorkersThatHoldJobsMdpIncluded) {
  Deliver({"MDP", "", "MDPW01", "\x01", "plain"});
  Deliver({"C1", "", "MDPC01", "plain", "body"});
  CourierReady("BUSY", "work");
  CourierReady("IDLE", "other");
  Submit("C1", "work");
  outbox_.sent.clear();
  broker_->OnPeerDisconnected(At());
  EXPECT_EQ(outbox_.Take("MDP"), (std::vector<Message>{{"MDP", "", "MDPW01", "\x04"}}));
  EXPECT_EQ(outbox_.Take("BUSY"), (std::vector<Message>{{"BUSY", "", "CRW01", "\x04"}}));
  EXPECT_TRUE(outbox_.Take("IDLE").empty());
}

TEST_F(BrokerTest, PeerDisconnectReprobesAt20And100And300Ms) {
  CourierReady("W1", "work");
  CourierReady("W2", "work");
  const JobId id = Submit("C1", "work");
  outbox_.Take("W1");
  EXPECT_EQ(broker_->next_probe(), SteadyTime::max());
  broker_->OnPeerDisconnected(At());
  EXPECT_EQ(outbox_.Take("W1").size(), 1u);  // probed at once, still reachable
  EXPECT_EQ(broker_->next_probe(), At().steady + 20ms);
  Advance(19ms);
  EXPECT_TRUE(outbox_.Take("W1").empty());
  // The ROUTER learns of the closed pipe only now: the re-probe finds it.
  outbox_.unreachable.insert("W1");
  Advance(1ms);
  EXPECT_EQ(RequestIds(outbox_.Take("W2")), std::vector<JobId>{id});
  EXPECT_EQ(broker_->WorkerCount("work"), 1u);
  EXPECT_EQ(broker_->next_probe(), At().steady + 80ms);
  Advance(80ms);
  EXPECT_EQ(outbox_.Take("W2").size(), 1u);  // the second re-probe (W2 holds the job now)
  EXPECT_EQ(broker_->next_probe(), At().steady + 200ms);
  Advance(200ms);
  EXPECT_EQ(outbox_.Take("W2").size(), 1u);
  EXPECT_EQ(broker_->next_probe(), SteadyTime::max());
  Advance(300ms);
  EXPECT_TRUE(outbox_.Take("W2").empty());
}

TEST_F(BrokerTest, ABurstOfDisconnectsSharesOneImmediateProbe) {
  CourierReady("W1", "work");
  Submit("C1", "work");
  outbox_.Take("W1");
  for (int i = 0; i < 50; ++i) broker_->OnPeerDisconnected(At());  // clients leaving together
  EXPECT_EQ(outbox_.Take("W1").size(), 1u);
  elapsed_ += 10ms;
  broker_->OnPeerDisconnected(At());
  EXPECT_EQ(outbox_.Take("W1").size(), 1u);
  EXPECT_EQ(broker_->next_probe(), At().steady + 20ms);  // the delays follow the latest close
}

TEST_F(BrokerTest, HeartbeatToAnUnreachableWorkerRemovesIt) {
  CourierReady("W1", "work");
  outbox_.unreachable.insert("W1");
  Advance(1000ms);  // the heartbeat send fails: gone long before expiry (3000 ms)
  EXPECT_EQ(broker_->WorkerCount("work"), 0u);
  EXPECT_EQ(broker_->counters().workers_unreachable, 1u);
  EXPECT_EQ(broker_->counters().workers_expired, 0u);
}

// ---- Crash counting and poison jobs -----------------------------------------------------

TEST_F(BrokerTest, PoisonJobIsDeadLetteredAtMaxCrashesAndTheClientTold) {
  CourierReady("W1", "work");
  CourierReady("W2", "work");
  const JobId poison = Submit("C1", "work");
  ASSERT_EQ(RequestIds(outbox_.Take("W1")), std::vector<JobId>{poison});
  outbox_.unreachable.insert("W1");
  broker_->OnPeerDisconnected(At());  // first crash: handed on
  ASSERT_EQ(RequestIds(outbox_.Take("W2")), std::vector<JobId>{poison});
  EXPECT_TRUE(outbox_.Take("C1").empty());
  Advance(3000ms);  // W2 silent: expired, second crash = max_crashes (2)
  const auto replies = outbox_.Take("C1");
  ASSERT_EQ(replies.size(), 1u);
  const auto error = ErrorOf(replies[0]);
  EXPECT_EQ(error.code, ErrorCode::kWorkerCrashed);
  EXPECT_EQ(error.job_id, poison);
  EXPECT_NE(error.message.find("poison job"), std::string::npos) << error.message;
  EXPECT_NE(error.message.find("2 worker crashes"), std::string::npos) << error.message;
  EXPECT_EQ(broker_->counters().crashes, 2u);
  EXPECT_EQ(broker_->counters().poison_jobs, 1u);
  EXPECT_EQ(broker_->counters().dead_lettered, 1u);
  const auto letters = DeadLetters();
  ASSERT_EQ(letters.size(), 1u);
  EXPECT_EQ(letters[0].At("code").AsUint(), static_cast<std::uint64_t>(ErrorCode::kWorkerCrashed));
  EXPECT_EQ(letters[0].At("job_id").AsBinary().bytes, std::string(poison.View()));
  EXPECT_NE(letters[0].At("message").AsString().find("poison job"), std::string::npos);
  const Value stats = Query("stats");
  EXPECT_EQ(stats.At("crashes").AsUint(), 2u);
  EXPECT_EQ(stats.At("poison_jobs").AsUint(), 1u);
  EXPECT_EQ(stats.At("workers_unreachable").AsUint(), 1u);
}

TEST_F(BrokerTest, AJobOnItsWayToAWorkerThatSaysGoodbyeIsHandedOnWithoutACrashOrAnAttempt) {
  // Scaling down: each worker drains and says DISCONNECT while a job it was just given is
  // still in flight to it. Three such goodbyes in a row (max_crashes is 2) lose nothing.
  CourierReady("W1", "work");
  const JobId id = Submit("C1", "work");
  ASSERT_EQ(RequestIds(outbox_.Take("W1")), std::vector<JobId>{id});
  const std::vector<std::string> workers{"W1", "W2", "W3", "W4"};
  for (std::size_t i = 1; i < workers.size(); ++i) {
    CourierReady(workers[i], "work");
    Deliver({workers[i - 1], "", "CRW01", "\x05"});
    const auto handed = outbox_.Take(workers[i]);
    ASSERT_EQ(RequestIds(handed), std::vector<JobId>{id}) << workers[i];
    EXPECT_EQ(detail::DecodeEnvelope(handed[0][4]).attempt, 1u);
  }
  EXPECT_TRUE(outbox_.Take("C1").empty());
  EXPECT_EQ(broker_->counters().crashes, 0u);
  EXPECT_EQ(broker_->counters().redelivered, 0u);
}

TEST_F(BrokerTest, AnMdpWorkerThatSaysGoodbyeHoldingAJobCostsItAnAttemptNotACrash) {
  Deliver({"W1", "", "MDPW01", "\x01", "echo"});
  Deliver({"W2", "", "MDPW01", "\x01", "echo"});
  Deliver({"C1", "", "MDPC01", "echo", "hello"});
  ASSERT_EQ(outbox_.Take("W1").size(), 1u);
  Deliver({"W1", "", "MDPW01", "\x05"});
  EXPECT_EQ(outbox_.Take("W2").size(), 1u);
  EXPECT_EQ(broker_->counters().crashes, 0u);
  EXPECT_EQ(broker_->counters().redelivered, 1u);
}

TEST_F(BrokerTest, WorkerCrashedErrorCountsACrashAndHandsTheJobOn) {
  CourierReady("W1", "work");
  CourierReady("W2", "work");
  const JobId id = Submit("C1", "work");
  ASSERT_EQ(RequestIds(outbox_.Take("W1")), std::vector<JobId>{id});
  Deliver({"W1", "", "CRW01", "\x06", detail::EncodeErrorBody(id, ErrorCode::kWorkerCrashed, "signal 11")});
  EXPECT_TRUE(outbox_.Take("C1").empty());
  const auto second = outbox_.Take("W2");
  ASSERT_EQ(RequestIds(second), std::vector<JobId>{id});
  EXPECT_EQ(detail::DecodeEnvelope(second[0][4]).attempt, 2u);
  EXPECT_EQ(broker_->WorkerCount("work"), 2u);  // the host survived its handler's process
  Deliver({"W2", "", "CRW01", "\x06", detail::EncodeErrorBody(id, ErrorCode::kWorkerCrashed, "signal 6")});
  const auto error = ErrorOf(outbox_.Take("C1").at(0));
  EXPECT_EQ(error.code, ErrorCode::kWorkerCrashed);
  EXPECT_EQ(broker_->counters().poison_jobs, 1u);
  EXPECT_EQ(broker_->LiveJobs(), 1u);  // only the dead letter, waiting for courier.errors
  EXPECT_TRUE(outbox_.Take("W1").empty());
}

TEST_F(BrokerTest, MaxCrashesIsPerServiceAndAttemptsStillBound) {
  BrokerConfig config;
  config.services["sturdy"].max_crashes = 5;
  config.services["fragile"].max_crashes = 1;
  Reset(config);
  CourierReady("S", "sturdy");
  CourierReady("F", "fragile");
  // sturdy: 5 crashes allowed, but max_attempts 2 ends it after the second loss.
  const JobId a = Submit("C1", "sturdy", ReplyMode::kCall, 2);
  Deliver({"S", "", "CRW01", "\x06", detail::EncodeErrorBody(a, ErrorCode::kWorkerCrashed, "x")});
  EXPECT_EQ(RequestIds(outbox_.Take("S")).size(), 2u);
  Deliver({"S", "", "CRW01", "\x06", detail::EncodeErrorBody(a, ErrorCode::kWorkerCrashed, "x")});
  EXPECT_EQ(ErrorOf(outbox_.Take("C1").at(0)).code, ErrorCode::kAttemptsExhausted);
  // fragile: the first crash makes it poison.
  const JobId b = Submit("C1", "fragile");
  Deliver({"F", "", "CRW01", "\x06", detail::EncodeErrorBody(b, ErrorCode::kWorkerCrashed, "x")});
  EXPECT_EQ(ErrorOf(outbox_.Take("C1").at(0)).code, ErrorCode::kWorkerCrashed);
  EXPECT_EQ(broker_->counters().poison_jobs, 1u);
  EXPECT_EQ(broker_->counters().crashes, 3u);
}

TEST_F(BrokerTest, ProtocolErrorRemovalChargesACrashOnHeldJobs) {
  CourierReady("W1", "work", 2);
  Submit("C1", "work");
  Submit("C1", "work");
  EXPECT_EQ(Requests(outbox_.Take("W1")), 2u);
  Deliver({"W1", "", "CRW01", "\x09"});  // unknown command: removed with DISCONNECT
  EXPECT_EQ(broker_->counters().crashes, 2u);
  EXPECT_EQ(broker_->QueueDepth("work"), 2u);
}

// ---- Key rejects -----------------------------------------------------------------------

TEST_F(BrokerTest, KeyRejectCountsAnAttemptAndGoesToAnotherWorker) {
  CourierReady("W1", "work");
  CourierReady("W2", "work");
  const JobId id = Submit("C1", "work");
  ASSERT_EQ(RequestIds(outbox_.Take("W1")), std::vector<JobId>{id});
  Deliver({"W1", "", "CRW01", "\x08", detail::EncodeReject(id, ErrorCode::kUnknownKey)});
  EXPECT_TRUE(outbox_.Take("W1").empty());
  const auto second = outbox_.Take("W2");
  ASSERT_EQ(RequestIds(second), std::vector<JobId>{id});
  EXPECT_EQ(detail::DecodeEnvelope(second[0][4]).attempt, 2u);
  EXPECT_EQ(broker_->counters().crashes, 0u);
}

TEST_F(BrokerTest, KeyRejectedJobWaitsForAnotherWorkerWhileOthersFlowToTheRejecter) {
  CourierReady("W1", "work");
  CourierReady("W2", "work");
  const JobId a = Submit("C1", "work");
  const JobId b = Submit("C1", "work");
  ASSERT_EQ(RequestIds(outbox_.Take("W1")), std::vector<JobId>{a});
  ASSERT_EQ(RequestIds(outbox_.Take("W2")), std::vector<JobId>{b});
  Deliver({"W1", "", "CRW01", "\x08", detail::EncodeReject(a, ErrorCode::kUnauthenticated)});
  EXPECT_TRUE(outbox_.Take("W1").empty());  // W1 has credit, but a waits for W2
  EXPECT_EQ(broker_->QueueDepth("work"), 1u);
  const JobId c = Submit("C1", "work");
  EXPECT_EQ(RequestIds(outbox_.Take("W1")), std::vector<JobId>{c});  // c is not held behind a
  Deliver({"W1", "", "CRW01", "\x03", MakeEnvelope("work", c), "reply c"});
  EXPECT_TRUE(outbox_.Take("W1").empty());  // W1's credit is back, and a still waits for W2
  EXPECT_EQ(broker_->QueueDepth("work"), 1u);
  Deliver({"W2", "", "CRW01", "\x03", MakeEnvelope("work", b), "reply b"});
  EXPECT_EQ(RequestIds(outbox_.Take("W2")), std::vector<JobId>{a});
  EXPECT_EQ(broker_->QueueDepth("work"), 0u);
}

TEST_F(BrokerTest, KeyRejectFromTheOnlyWorkerIsRetriedThenDeadLetteredWithItsCode) {
  CourierReady("W1", "work");
  const JobId id = Submit("C1", "work", ReplyMode::kCall, 2);
  ASSERT_EQ(RequestIds(outbox_.Take("W1")), std::vector<JobId>{id});
  Deliver({"W1", "", "CRW01", "\x08", detail::EncodeReject(id, ErrorCode::kUnknownKey)});
  const auto again = outbox_.Take("W1");  // nobody else takes the service's jobs
  ASSERT_EQ(RequestIds(again), std::vector<JobId>{id});
  EXPECT_EQ(detail::DecodeEnvelope(again[0][4]).attempt, 2u);
  Deliver({"W1", "", "CRW01", "\x08", detail::EncodeReject(id, ErrorCode::kUnknownKey)});
  const auto error = ErrorOf(outbox_.Take("C1").at(0));
  EXPECT_EQ(error.code, ErrorCode::kUnknownKey);
  EXPECT_EQ(error.job_id, id);
  EXPECT_EQ(error.message,
            "worker W1 (pid 0) could not open the payload sealed with key id 0 (unknown_key) on attempt 2 of 2");
  const auto letters = DeadLetters();
  ASSERT_EQ(letters.size(), 1u);
  EXPECT_EQ(letters[0].At("code").AsUint(), static_cast<std::uint64_t>(ErrorCode::kUnknownKey));
}

TEST_F(BrokerTest, KeyRejectedJobGoesBackToTheRejecterWhenTheOthersCloseTheirCredit) {
  CourierReady("W1", "work");
  CourierReady("W2", "work");
  const JobId a = Submit("C1", "work");
  ASSERT_EQ(RequestIds(outbox_.Take("W1")), std::vector<JobId>{a});
  Deliver({"W2", "", "CRW01", "\x07", detail::EncodeCredit(0)});  // W2 drains
  Deliver({"W1", "", "CRW01", "\x08", detail::EncodeReject(a, ErrorCode::kUnknownKey)});
  EXPECT_EQ(RequestIds(outbox_.Take("W1")), std::vector<JobId>{a});
}

TEST_F(BrokerTest, BusyRejectNeitherCountsAnAttemptNorAvoidsTheWorker) {
  CourierReady("W1", "work");
  const JobId id = Submit("C1", "work");
  outbox_.Take("W1");
  Deliver({"W1", "", "CRW01", "\x08", detail::EncodeReject(id, ErrorCode::kBusy)});
  const auto again = outbox_.Take("W1");
  ASSERT_EQ(RequestIds(again), std::vector<JobId>{id});
  EXPECT_EQ(detail::DecodeEnvelope(again[0][4]).attempt, 1u);
}

// ---- In-flight deadlines ---------------------------------------------------------------

TEST_F(BrokerTest, InFlightJobPastItsDeadlineIsAnsweredButStaysChargedUntilTheWorkerAnswers) {
  CourierReady("W1", "work");
  const JobId hung = Submit("C1", "work", ReplyMode::kCall, 3, 500);
  const JobId next = Submit("C1", "work");
  const auto requests = outbox_.Take("W1");
  ASSERT_EQ(RequestIds(requests), std::vector<JobId>{hung});
  Advance(499ms);
  EXPECT_TRUE(outbox_.Take("C1").empty());
  Advance(101ms);  // the next sweep
  const auto replies = outbox_.Take("C1");
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(ErrorOf(replies[0]).code, ErrorCode::kDeadlineExceeded);
  EXPECT_EQ(ErrorOf(replies[0]).job_id, hung);
  EXPECT_EQ(broker_->counters().expired, 1u);
  EXPECT_EQ(broker_->UnexpiredInFlight(), 0u);
  EXPECT_EQ(RequestIds(outbox_.Take("W1")), std::vector<JobId>{});  // W1 is still charged
  // A resend of the answered job is answered the same, not queued again.
  Deliver({"C1", "", "CRC01", "\x01", requests[0][4], "payload"});
  EXPECT_EQ(ErrorOf(outbox_.Take("C1").at(0)).code, ErrorCode::kDeadlineExceeded);
  Deliver({"W1", "", "CRW01", "\x03", requests[0][4], "too late"});
  EXPECT_TRUE(outbox_.Take("C1").empty());  // dropped
  EXPECT_EQ(broker_->counters().late_replies, 1u);
  EXPECT_EQ(RequestIds(outbox_.Take("W1")), std::vector<JobId>{next});  // the credit came back
}

TEST_F(BrokerTest, LostWorkersExpiredJobIsNotRedelivered) {
  CourierReady("W1", "work");
  CourierReady("W2", "work", 1);
  Deliver({"W2", "", "CRW01", "\x07", detail::EncodeCredit(0)});
  const JobId id = Submit("C1", "work", ReplyMode::kCall, 3, 500);
  ASSERT_EQ(RequestIds(outbox_.Take("W1")), std::vector<JobId>{id});
  Advance(600ms);
  EXPECT_EQ(ErrorOf(outbox_.Take("C1").at(0)).code, ErrorCode::kDeadlineExceeded);
  Deliver({"W2", "", "CRW01", "\x07", detail::EncodeCredit(1)});
  Deliver({"W1", "", "CRW01", "\x05"});  // lost while holding it
  EXPECT_TRUE(outbox_.Take("W2").empty());
  EXPECT_TRUE(outbox_.Take("C1").empty());
  EXPECT_EQ(broker_->LiveJobs(), 0u);
  EXPECT_EQ(broker_->counters().dead_lettered, 0u);
  EXPECT_EQ(broker_->counters().redelivered, 0u);
}

TEST_F(BrokerTest, InFlightDeadlinesLeaveWithTheirJobs) {
  CourierReady("W1", "work", 10);
  for (int i = 0; i < 10; ++i) Submit("C1", "work", ReplyMode::kCall, 3, 1000 + 100 * i);
  EXPECT_EQ(broker_->UnexpiredInFlight(), 10u);
  const auto requests = outbox_.Take("W1");
  // Answer the odd ones, reject two even ones back to the queue.
  for (std::size_t i = 1; i < requests.size(); i += 2) Deliver({"W1", "", "CRW01", "\x03", requests[i][4], "r"});
  EXPECT_EQ(broker_->UnexpiredInFlight(), 5u);
  Advance(1250ms);  // jobs 0 and 2 (1000, 1200 ms) are due
  std::vector<JobId> expired;
  for (const auto& message : outbox_.Take("C1")) {
    if (message[3] == "\x04") expired.push_back(ErrorOf(message).job_id);
  }
  EXPECT_EQ(expired, (std::vector<JobId>{detail::DecodeEnvelope(requests[0][4]).job_id,
                                         detail::DecodeEnvelope(requests[2][4]).job_id}));
  EXPECT_EQ(broker_->UnexpiredInFlight(), 3u);
}

TEST(SlotPoolTest, AChunkWhoseSlotsAreAllFreeIsGivenBackAndRefilledOnDemand) {
  SlotPool<Job> jobs;
  std::vector<std::uint32_t> slots;
  for (std::uint32_t i = 0; i < 3 * SlotPool<Job>::kChunk; ++i) slots.push_back(jobs.Acquire());
  // The second chunk empties while jobs in the first and third stay.
  for (std::uint32_t i = SlotPool<Job>::kChunk; i < 2 * SlotPool<Job>::kChunk; ++i) jobs.Release(slots[i]);
  EXPECT_FALSE(jobs.IsLive(SlotPool<Job>::kChunk));
  EXPECT_TRUE(jobs.IsLive(0));
  EXPECT_TRUE(jobs.IsLive(3 * SlotPool<Job>::kChunk - 1));
  EXPECT_EQ(jobs.live(), 2u * SlotPool<Job>::kChunk);
  // Its slots come back, on a fresh chunk, before the pool grows.
  const std::uint32_t again = jobs.Acquire();
  EXPECT_GE(again, SlotPool<Job>::kChunk);
  EXPECT_LT(again, 2 * SlotPool<Job>::kChunk);
  jobs[again].deadline_ms = 7;
  EXPECT_TRUE(jobs.IsLive(again));
  EXPECT_EQ(jobs.capacity(), 3u * SlotPool<Job>::kChunk);
}

// After a burst, a few long-lived jobs keep a table sized for them, not for the burst, and
// every one of them is still found.
TEST(JobIndexTest, ShrinksToTheJobsItStillHoldsAndFindsThemAll) {
  SlotPool<Job> jobs;
  JobIndex index(jobs, 42);
  std::vector<std::uint32_t> slots;
  for (int i = 0; i < 100000; ++i) {
    const std::uint32_t slot = jobs.Acquire();
    jobs[slot].id = JobId::Random();
    index.Insert(slot);
    slots.push_back(slot);
  }
  EXPECT_FALSE(index.Shrink()) << "a full table is not shrunk";
  std::vector<std::uint32_t> kept(slots.begin(), slots.begin() + 100);
  for (std::size_t i = 100; i < slots.size(); ++i) index.Erase(jobs[slots[i]].id);
  EXPECT_TRUE(index.Shrink());
  EXPECT_FALSE(index.Shrink()) << "once is enough";
  EXPECT_EQ(index.size(), 100u);
  for (const std::uint32_t slot : kept) EXPECT_EQ(index.Find(jobs[slot].id), slot);
  EXPECT_EQ(index.Find(jobs[slots[500]].id), kNone);
  // It grows again as before.
  for (std::size_t i = 100; i < 5000; ++i) index.Insert(slots[i]);
  for (std::size_t i = 0; i < 5000; ++i) ASSERT_EQ(index.Find(jobs[slots[i]].id), slots[i]);
}

TEST(InFlightDeadlinesTest, ShrinksAfterABurstAndStillPopsInOrder) {
  SlotPool<Job> jobs;
  InFlightDeadlines heap(jobs);
  std::vector<std::uint32_t> slots;
  for (int i = 0; i < 20000; ++i) {
    const std::uint32_t slot = jobs.Acquire();
    jobs[slot].deadline_ms = static_cast<std::uint64_t>(20000 - i);
    heap.Insert(slot);
    slots.push_back(slot);
  }
  EXPECT_FALSE(heap.Shrink());
  for (std::size_t i = 10; i < slots.size(); ++i) heap.Erase(slots[i]);
  EXPECT_TRUE(heap.Shrink());
  EXPECT_EQ(heap.size(), 10u);
  std::uint64_t last = 0;
  for (std::uint32_t slot = heap.PopExpired(1u << 20); slot != kNone; slot = heap.PopExpired(1u << 20)) {
    EXPECT_GT(jobs[slot].deadline_ms, last);
    last = jobs[slot].deadline_ms;
  }
  EXPECT_EQ(last, 20000u);
}

TEST(InFlightDeadlinesTest, PopsInDeadlineOrderAfterRandomErasures) {
  SlotPool<Job> jobs;
  InFlightDeadlines heap(jobs);
  std::mt19937_64 random(7);
  std::vector<std::uint32_t> slots;
  for (int i = 0; i < 2000; ++i) {
    const std::uint32_t slot = jobs.Acquire();
    jobs[slot].deadline_ms = random() % 500;
    heap.Insert(slot);
    slots.push_back(slot);
  }
  std::shuffle(slots.begin(), slots.end(), random);
  std::set<std::uint32_t> erased(slots.begin(), slots.begin() + 700);
  for (const std::uint32_t slot : erased) heap.Erase(slot);
  for (const std::uint32_t slot : erased) heap.Erase(slot);  // twice is harmless
  EXPECT_EQ(heap.size(), 1300u);
  std::uint64_t last = 0;
  std::size_t popped = 0;
  for (std::uint32_t slot = heap.PopExpired(250); slot != kNone; slot = heap.PopExpired(250)) {
    EXPECT_EQ(erased.count(slot), 0u);
    EXPECT_GE(jobs[slot].deadline_ms, last);
    EXPECT_LE(jobs[slot].deadline_ms, 250u);
    EXPECT_EQ(jobs[slot].deadline_pos, kNone);
    last = jobs[slot].deadline_ms;
    ++popped;
  }
  for (std::uint32_t slot = heap.PopExpired(1000); slot != kNone; slot = heap.PopExpired(1000)) {
    EXPECT_GE(jobs[slot].deadline_ms, last);
    last = jobs[slot].deadline_ms;
    ++popped;
  }
  EXPECT_EQ(popped, 1300u);
  EXPECT_EQ(heap.size(), 0u);
}

// ---- READY keys and stuck slots --------------------------------------------------------

TEST_F(BrokerTest, WorkersQueryShowsKeyFingerprintsAndStuckSlots) {
  CourierReady("W1", "work", 4, 1, {{1, std::string("\x01\x23\x45\x67\x89\xab\xcd\xef", 8)}, {7, std::string(8, '\0')}});
  Deliver({"W1", "", "CRW01", "\x07", detail::EncodeCredit(1), detail::EncodeCredit(3)});
  const Value workers = Query("workers");
  const Value& worker = workers.AsArray().at(0);
  EXPECT_EQ(worker.At("stuck").AsUint(), 3u);
  EXPECT_EQ(worker.At("capacity").AsUint(), 1u);
  const auto& keys = worker.At("keys").AsArray();
  ASSERT_EQ(keys.size(), 2u);
  EXPECT_EQ(keys[0].At("id").AsUint(), 1u);
  EXPECT_EQ(keys[0].At("fingerprint").AsString(), "0123456789abcdef");
  EXPECT_EQ(keys[1].At("fingerprint").AsString(), "0000000000000000");
  Deliver({"W1", "", "CRW01", "\x07", detail::EncodeCredit(2)});  // frame 4 absent: none stuck
  EXPECT_EQ(Query("workers").AsArray().at(0).At("stuck").AsUint(), 0u);
  Deliver({"M1", "", "MDPW01", "\x01", "plain"});
  const Value rows = Query("workers");
  for (const Value& row : rows.AsArray()) {
    if (row.At("protocol").AsString() == "mdp") {
      EXPECT_TRUE(row.At("keys").AsArray().empty());
    }
  }
}

TEST_F(BrokerTest, DifferentFingerprintsUnderOneKeyIdAreWarnedAbout) {
  std::ostringstream log;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(log);
  auto previous = spdlog::default_logger();
  spdlog::set_default_logger(std::make_shared<spdlog::logger>("capture", sink));
  CourierReady("W1", "work", 1, 1, {{1, std::string(8, 'a')}, {2, std::string(8, 'b')}});
  CourierReady("W2", "work", 1, 1, {{1, std::string(8, 'a')}});  // agrees
  CourierReady("W3", "other", 1, 1, {{1, std::string(8, 'z')}});  // another service: no matter
  EXPECT_EQ(broker_->counters().key_mismatches, 0u);
  CourierReady("W4", "work", 1, 1, {{2, std::string(8, 'c')}});
  spdlog::set_default_logger(previous);
  EXPECT_EQ(broker_->counters().key_mismatches, 2u) << "W4 differs from W1 under id 2, and shares no key with W2";
  EXPECT_NE(log.str().find("workers W1 (pid 0) and W4 (pid 0) of service 'work' hold different keys under id 2: "
                           "their jobs will fail to open on one of them"),
            std::string::npos)
      << log.str();
}

// Keyrings made apart have random key ids, so they share none: that is a mismatch too.
TEST_F(BrokerTest, WorkersOfOneServiceWithNoKeyInCommonAreWarnedAbout) {
  std::ostringstream log;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(log);
  auto previous = spdlog::default_logger();
  spdlog::set_default_logger(std::make_shared<spdlog::logger>("capture", sink));
  CourierReady("W1", "work", 1, 1, {{123456, std::string(8, 'a')}});
  CourierReady("W2", "work", 1, 1, {{123456, std::string(8, 'a')}, {123457, std::string(8, 'b')}});  // rotating
  EXPECT_EQ(broker_->counters().key_mismatches, 0u);
  CourierReady("W3", "work", 1, 1, {{987654, std::string(8, 'z')}});
  spdlog::set_default_logger(previous);
  EXPECT_EQ(broker_->counters().key_mismatches, 2u) << "W3 shares no key with W1, nor with W2";
  EXPECT_NE(log.str().find("workers W1 (pid 0) (key ids 123456) and W3 (pid 0) (key ids 987654) of service 'work' "
                           "hold no key in common"),
            std::string::npos)
      << log.str();
}

// Least privilege with CURVE (issue 15): the allow-list entry of a key binds it to a role,
// services and a capacity cap.
class BrokerAccessTest : public BrokerTest {
 protected:
  BrokerAccessTest() {
    const auto key = [](const char* name) { return GenerateCurveKeyPair(name).public_key; };
    std::vector<CurveAllowEntry> clients{
        {.name = "app", .public_key = key("app"), .role = CurveRole::kClient, .services = {}, .max_capacity = 0},
        {.name = "ops", .public_key = key("ops"), .role = CurveRole::kOperator, .services = {}, .max_capacity = 0}};
    std::vector<CurveAllowEntry> workers{
        {.name = "plain", .public_key = key("plain"), .role = CurveRole::kWorker, .services = {}, .max_capacity = 0},
        {.name = "sink", .public_key = key("sink"), .role = CurveRole::kWorker, .services = {"courier.errors"},
         .max_capacity = 0},
        {.name = "img", .public_key = key("img"), .role = CurveRole::kWorker, .services = {"img.*"},
         .max_capacity = 4}};
    broker_->UseAccessPolicy(AccessPolicy(std::move(clients), std::move(workers)));
  }

  void DeliverAs(PeerRole role, const std::string& user, const Message& message) {
    std::vector<zmq::message_t> frames;
    for (const auto& frame : message) frames.emplace_back(frame.data(), frame.size());
    broker_->OnMessage(frames, At(), role, user);
  }

  void ReadyAs(const std::string& user, const std::string& id, const std::string& service, std::uint32_t capacity) {
    detail::ReadyInfo info;
    info.capacity = capacity;
    info.weight = 1;
    DeliverAs(PeerRole::kWorker, user, {id, "", "CRW01", "\x01", service, detail::EncodeReadyInfo(info)});
  }

  // Returns: the query reply's [status, body] to a query `name` from `user`.
  Value QueryAs(const std::string& user, const std::string& name) {
    DeliverAs(PeerRole::kClient, user, {"Q", "", "CRC01", "\x05", "q", detail::EncodeQuery(name)});
    const auto replies = outbox_.Take("Q");
    EXPECT_EQ(replies.size(), 1u);
    return replies.empty() ? Value() : DecodeValue(replies.back()[5]);
  }

  static bool IsDisconnect(const std::vector<Message>& messages) {
    return !messages.empty() && messages.back().size() == 4 && messages.back()[3] == "\x05";
  }
};

TEST_F(BrokerAccessTest, BuiltinServicesTakeOnlyKeysThatListThem) {
  ReadyAs("worker:plain", "EVIL", "courier.errors", 100);
  EXPECT_TRUE(IsDisconnect(outbox_.Take("EVIL")));
  ReadyAs("worker:plain", "EVIL2", "courier.metrics", 1);
  EXPECT_TRUE(IsDisconnect(outbox_.Take("EVIL2")));
  EXPECT_EQ(broker_->WorkerCount("courier.errors"), 0u);
  EXPECT_EQ(broker_->WorkerCount("courier.metrics"), 0u);
  EXPECT_EQ(broker_->counters().refused_peers, 2u);
  EXPECT_EQ(broker_->counters().protocol_errors, 2u);
  ReadyAs("worker:plain", "W1", "echo", 1);  // any ordinary service
  EXPECT_EQ(broker_->WorkerCount("echo"), 1u);
  ReadyAs("worker:sink", "SINK", "courier.errors", 10);
  EXPECT_EQ(broker_->WorkerCount("courier.errors"), 1u);
  ReadyAs("worker:sink", "SINK2", "echo", 1);  // a key that lists services serves only those
  EXPECT_TRUE(IsDisconnect(outbox_.Take("SINK2")));
  EXPECT_EQ(broker_->WorkerCount("echo"), 1u);
}

TEST_F(BrokerAccessTest, WithoutCurveBuiltinServicesStayOpen) {
  broker_->UseAccessPolicy(AccessPolicy{});
  CourierReady("SINK", "courier.errors", 10);
  EXPECT_EQ(broker_->WorkerCount("courier.errors"), 1u);
  EXPECT_EQ(Query("stats").At("refused_peers").AsUint(), 0u);
}

TEST_F(BrokerAccessTest, ServicePatternsAndCapacityCaps) {
  ReadyAs("worker:img", "I1", "img.resize", 500);
  ASSERT_EQ(broker_->WorkerCount("img.resize"), 1u);
  ReadyAs("worker:img", "I2", "echo", 1);
  EXPECT_TRUE(IsDisconnect(outbox_.Take("I2")));
  for (int i = 0; i < 10; ++i) Submit("C1", "img.resize");
  EXPECT_EQ(Requests(outbox_.Take("I1")), 4u);  // capacity 500 claimed, 4 allowed
  const Value workers = QueryAs("client:ops", "workers").AsArray().at(1);
  EXPECT_EQ(workers.AsArray().at(0).At("capacity").AsUint(), 4u);
  // A CREDIT past the cap is clamped too.
  DeliverAs(PeerRole::kWorker, "worker:img", {"I1", "", "CRW01", "\x07", detail::EncodeCredit(1000)});
  EXPECT_EQ(Requests(outbox_.Take("I1")), 0u);
  EXPECT_EQ(QueryAs("client:ops", "workers").AsArray().at(1).AsArray().at(0).At("capacity").AsUint(), 4u);
}

TEST_F(BrokerAccessTest, ManagementQueriesNeedAnOperatorKey) {
  for (const char* name : {"stats", "services", "workers", "jobs"}) {
    const Value refused = QueryAs("client:app", name);
    EXPECT_EQ(refused.AsArray().at(0).AsUint(), static_cast<std::uint64_t>(ErrorCode::kUnauthorized)) << name;
    EXPECT_NE(refused.AsArray().at(1).AsString().find("operator"), std::string::npos) << name;
    EXPECT_EQ(QueryAs("client:ops", name).AsArray().at(0).AsUint(), 0u) << name;
  }
  // The job query by id stays open to clients: the id is the capability.
  EXPECT_NE(QueryAs("client:app", "job").AsArray().at(0).AsUint(),
            static_cast<std::uint64_t>(ErrorCode::kUnauthorized));
}

TEST_F(BrokerAccessTest, ErrorSinkQueriesNeedAnOperatorKeyReportsDoNot) {
  ReadyAs("worker:sink", "SINK", "courier.errors", 10);
  const JobId query = JobId::Random();
  DeliverAs(PeerRole::kClient, "client:app", {"C1", "", "CRC01", "\x01", MakeEnvelope("courier.errors", query), "q"});
  auto replies = outbox_.Take("C1");
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(ErrorOf(replies[0]).code, ErrorCode::kUnauthorized);
  EXPECT_EQ(ErrorOf(replies[0]).job_id, query);
  DeliverAs(PeerRole::kClient, "client:app",
            {"C1", "", "CRC01", "\x01", MakeEnvelope("courier.errors", JobId::Random(), ReplyMode::kEnqueue), "q"});
  EXPECT_EQ(ErrorOf(outbox_.Take("C1").at(0)).code, ErrorCode::kUnauthorized);
  DeliverAs(PeerRole::kClient, "client:app", {"M1", "", "MDPC01", "courier.errors", "q"});  // plain MDP: dropped
  EXPECT_EQ(Requests(outbox_.Take("SINK")), 0u);
  const JobId report = JobId::Random();
  DeliverAs(PeerRole::kClient, "client:app",
            {"C1", "", "CRC01", "\x01", MakeEnvelope("courier.errors", report, ReplyMode::kSend), "r"});
  EXPECT_EQ(outbox_.Take("C1").at(0)[3], "\x02");  // ACCEPT
  DeliverAs(PeerRole::kClient, "client:ops", {"C2", "", "CRC01", "\x01", MakeEnvelope("courier.errors", query), "q"});
  EXPECT_TRUE(outbox_.Take("C2").empty());
  EXPECT_EQ(Requests(outbox_.Take("SINK")), 2u);  // the report and the operator's query
  EXPECT_EQ(broker_->counters().refused_peers, 3u);
}

}  // namespace
}  // namespace courier::broker
