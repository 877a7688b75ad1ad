// ClientCore on a fake clock and a fake transport: routing, retries, failover, deadlines,
// duplicates and queries, frame in / frame out.
#include "client/client_core.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <deque>
#include <map>

#include "courier/keyring.hpp"
#include "envelope_codec.hpp"
#include "frames.hpp"
#include "protocol.hpp"
#include "client/stored_jobs.hpp"
#include "wire/job_records.hpp"

namespace courier::detail {
namespace {

using namespace std::chrono_literals;

struct Sent {
  std::size_t broker;
  std::vector<std::string> frames;
  ClientCommand command() const { return static_cast<ClientCommand>(frames.at(2).at(0)); }
};

class FakeTransport final : public Transport {
 public:
  bool Send(std::size_t broker, std::span<const std::string_view> frames) override {
    if (full.count(broker) != 0) return false;
    Sent sent{broker, {}};
    for (auto frame : frames) sent.frames.emplace_back(frame);
    log.push_back(std::move(sent));
    return true;
  }
  void Redial(std::size_t broker) override { ++redials[broker]; }

  // Returns: the SUBMITs sent so far, and forgets them.
  std::vector<Sent> TakeSubmits() {
    std::vector<Sent> out;
    for (auto& sent : log) {
      if (sent.command() == ClientCommand::kSubmit) out.push_back(sent);
    }
    log.clear();
    return out;
  }
  std::vector<Sent> log;
  std::map<std::size_t, int> redials;
  std::set<std::size_t> full;
};

struct Captured {
  std::vector<JobOutcome> outcomes;
  JobCompletion Completion() {
    return [this](JobOutcome&& outcome) { outcomes.push_back(std::move(outcome)); };
  }
};

class ClientCoreTest : public ::testing::Test {
 protected:
  void Make(std::size_t brokers, std::uint32_t retries = 3) {
    std::vector<std::string> endpoints;
    for (std::size_t i = 0; i < brokers; ++i) endpoints.push_back("tcp://b" + std::to_string(i));
    CoreOptions options;
    options.failover_timeout = 3000ms;
    options.heartbeat_interval = 1000ms;
    options.retry.max_retries = retries;
    options.retry.initial_backoff = 50ms;
    options.retry.max_backoff = 1000ms;
    options.retry.jitter = 0;
    core_ = std::make_unique<ClientCore>(endpoints, options, transport_, now_);
  }

  JobRequest Job(ReplyMode mode = ReplyMode::kCall, std::chrono::milliseconds deadline = 10s,
                 std::uint32_t max_retries = 3) {
    Envelope envelope;
    envelope.job_id = JobId::Random();
    envelope.service = "echo";
    envelope.created_at_ms = 1;
    envelope.deadline_ms = 2;
    envelope.mode = mode;
    const auto sealed = keyring_.Seal(envelope, "\x01");
    JobRequest job;
    job.id = envelope.job_id;
    job.service = "echo";
    job.mode = mode;
    job.envelope = sealed.envelope;
    job.payload = sealed.payload;
    job.deadline = now_ + deadline;
    job.max_retries = max_retries;
    job.done = captured_.Completion();
    return job;
  }

  void Deliver(std::size_t broker, std::vector<std::string> frames) {
    std::vector<std::string_view> views(frames.begin(), frames.end());
    core_->OnMessage(broker, views, now_);
  }
  static std::string Cmd(ClientCommand command) { return std::string(1, static_cast<char>(command)); }
  void Reply(std::size_t broker, const JobId& id, std::string payload = "reply") {
    Envelope envelope;
    envelope.job_id = id;
    envelope.service = "echo";
    envelope.deadline_ms = 5;
    envelope.mode = ReplyMode::kReply;
    Deliver(broker, {"", std::string(kCourierClient), Cmd(ClientCommand::kReply), EncodeEnvelope(envelope), payload});
  }
  void Fail(std::size_t broker, const JobId& id, ErrorCode code) {
    Deliver(broker, {"", std::string(kCourierClient), Cmd(ClientCommand::kError),
                     EncodeErrorBody(id, code, std::string(ToString(code)))});
  }
  void Accept(std::size_t broker, const JobId& id) {
    Deliver(broker, {"", std::string(kCourierClient), Cmd(ClientCommand::kAccept), std::string(id.View())});
  }
  // Answers every PING sent so far with a PONG, as a live broker would.
  void Pong(std::size_t broker) {
    for (const Sent& sent : transport_.log) {
      if (sent.broker == broker && sent.command() == ClientCommand::kPing) {
        Deliver(broker, {"", std::string(kCourierClient), Cmd(ClientCommand::kPong), sent.frames.at(3)});
      }
    }
  }
  void Advance(std::chrono::milliseconds by) {
    now_ += by;
    core_->OnTick(now_);
  }

  SteadyTime now_ = SteadyTime{} + 1000s;
  FakeTransport transport_;
  Keyring keyring_ = Keyring::Generate();
  Captured captured_;
  std::unique_ptr<ClientCore> core_;
};

TEST_F(ClientCoreTest, BackoffGrowsCapsAndJitters) {
  RetryPolicy policy;
  policy.initial_backoff = 100ms;
  policy.max_backoff = 1000ms;
  policy.multiplier = 2;
  policy.jitter = 0;
  EXPECT_EQ(Backoff(policy, 0, 0.9), 100ms);
  EXPECT_EQ(Backoff(policy, 1, 0.9), 200ms);
  EXPECT_EQ(Backoff(policy, 3, 0.9), 800ms);
  EXPECT_EQ(Backoff(policy, 4, 0.9), 1000ms);
  EXPECT_EQ(Backoff(policy, 1000, 0.9), 1000ms);
  policy.jitter = 0.5;
  EXPECT_EQ(Backoff(policy, 0, 0.0), 50ms);
  EXPECT_EQ(Backoff(policy, 0, 0.5), 100ms);
  EXPECT_EQ(Backoff(policy, 0, 1.0), 150ms);
}

TEST_F(ClientCoreTest, SendsSubmitFramesAndCompletesOnReply) {
  Make(1);
  JobRequest job = Job();
  const JobId id = job.id;
  const std::string envelope = job.envelope, payload = job.payload;
  core_->Submit(std::move(job), now_);
  auto submits = transport_.TakeSubmits();
  ASSERT_EQ(submits.size(), 1u);
  EXPECT_EQ(submits[0].frames, (std::vector<std::string>{"", "CRC01", "\x01", envelope, payload}));
  EXPECT_EQ(core_->assigned(0), 1u);
  Reply(0, id, "hello");
  ASSERT_EQ(captured_.outcomes.size(), 1u);
  EXPECT_FALSE(captured_.outcomes[0].error);
  EXPECT_EQ(captured_.outcomes[0].reply_payload, "hello");
  EXPECT_EQ(captured_.outcomes[0].sends, 1u);
  EXPECT_EQ(core_->pending_jobs(), 0u);
  EXPECT_EQ(core_->assigned(0), 0u);
  // A second answer to the same job is dropped.
  Reply(0, id);
  EXPECT_EQ(captured_.outcomes.size(), 1u);
  EXPECT_EQ(core_->counters().duplicates_dropped, 1u);
}

TEST_F(ClientCoreTest, SendCompletesOnAccept) {
  Make(1);
  JobRequest job = Job(ReplyMode::kSend);
  const JobId id = job.id;
  core_->Submit(std::move(job), now_);
  Accept(0, id);
  ASSERT_EQ(captured_.outcomes.size(), 1u);
  EXPECT_FALSE(captured_.outcomes[0].error);
}

TEST_F(ClientCoreTest, EnqueueCompletesOnAcceptAndNeverOnAReply) {
  Make(1);
  JobRequest job = Job(ReplyMode::kEnqueue);
  const JobId id = job.id;
  core_->Submit(std::move(job), now_);
  const auto submits = transport_.TakeSubmits();
  ASSERT_EQ(submits.size(), 1u);
  EXPECT_EQ(DecodeEnvelope(submits[0].frames.at(3)).mode, ReplyMode::kEnqueue);
  Reply(0, id);  // the broker keeps an enqueued job's reply; one arriving here is not ours
  EXPECT_TRUE(captured_.outcomes.empty());
  EXPECT_EQ(core_->counters().duplicates_dropped, 1u);
  Accept(0, id);  // stored
  ASSERT_EQ(captured_.outcomes.size(), 1u);
  EXPECT_FALSE(captured_.outcomes[0].error);
  EXPECT_EQ(captured_.outcomes[0].broker, 0u);
  EXPECT_TRUE(captured_.outcomes[0].reply_envelope.empty());
  EXPECT_EQ(core_->pending_jobs(), 0u);
  EXPECT_EQ(core_->assigned(0), 0u);
  // A call is never completed by an ACCEPT.
  JobRequest call = Job(ReplyMode::kCall);
  const JobId call_id = call.id;
  core_->Submit(std::move(call), now_);
  Accept(0, call_id);
  EXPECT_EQ(captured_.outcomes.size(), 1u);
  EXPECT_EQ(core_->pending_jobs(), 1u);
}

TEST_F(ClientCoreTest, AnEnqueueJobIsResentLikeASendUntilItIsStored) {
  Make(2);
  core_->OnTick(now_);
  Pong(1);  // only broker 1 is known up: it gets both jobs
  JobRequest stored = Job(ReplyMode::kEnqueue, 30s);
  JobRequest unstored = Job(ReplyMode::kEnqueue, 30s);
  const JobId stored_id = stored.id, unstored_id = unstored.id;
  const std::string unstored_envelope = unstored.envelope, unstored_payload = unstored.payload;
  core_->Submit(std::move(stored), now_);
  core_->Submit(std::move(unstored), now_);
  for (const auto& sent : transport_.TakeSubmits()) EXPECT_EQ(sent.broker, 1u);
  Accept(1, stored_id);
  ASSERT_EQ(captured_.outcomes.size(), 1u);
  // Broker 1 falls silent; broker 0 answers its pings.
  for (int i = 0; i < 3; ++i) {
    Advance(1000ms);
    Pong(0);
    transport_.log.erase(std::remove_if(transport_.log.begin(), transport_.log.end(),
                                        [](const Sent& s) { return s.command() == ClientCommand::kPing; }),
                         transport_.log.end());
  }
  ASSERT_EQ(core_->health(1), BrokerHealth::kDown);
  // Only the job not yet stored goes again, with the same bytes; the stored one is in
  // broker 1's store and is not sent twice.
  const auto resent = transport_.TakeSubmits();
  ASSERT_EQ(resent.size(), 1u);
  EXPECT_EQ(resent[0].broker, 0u);
  EXPECT_EQ(resent[0].frames.at(3), unstored_envelope);
  EXPECT_EQ(resent[0].frames.at(4), unstored_payload);
  EXPECT_EQ(core_->counters().failovers, 1u);
  Accept(0, unstored_id);
  ASSERT_EQ(captured_.outcomes.size(), 2u);
  EXPECT_EQ(captured_.outcomes[1].broker, 0u);
  EXPECT_EQ(captured_.outcomes[1].sends, 2u);
}

TEST_F(ClientCoreTest, AQueryWithABodySendsThatBody) {
  Make(1);
  const JobId id = JobId::Random();
  std::vector<QueryOutcome> outcomes;
  QueryRequest query;
  query.name = "job";
  query.body = wire::EncodeQuery(wire::JobQuery{.id = id, .wait_ms = 250});
  query.broker = 0;
  query.deadline = now_ + 3s;
  query.done = [&](QueryOutcome&& outcome) { outcomes.push_back(std::move(outcome)); };
  core_->Query(query, now_);
  ASSERT_EQ(transport_.log.size(), 1u);
  const Sent sent = transport_.log[0];
  EXPECT_EQ(sent.command(), ClientCommand::kQuery);
  EXPECT_EQ(sent.frames.at(4), query.body);
  const wire::JobQuery decoded = wire::DecodeJobQuery(sent.frames.at(4));
  EXPECT_EQ(decoded.id, id);
  EXPECT_EQ(decoded.wait_ms, 250u);
  // A broker restart resends it, body and all.
  Deliver(0, {"", "CRC01", Cmd(ClientCommand::kPong), std::string(8, '\0'), "AAAAAAAA"});
  Deliver(0, {"", "CRC01", Cmd(ClientCommand::kPong), std::string(8, '\0'), "BBBBBBBB"});
  ASSERT_EQ(transport_.log.size(), 2u);
  EXPECT_EQ(transport_.log[1].frames.at(3), sent.frames.at(3));
  EXPECT_EQ(transport_.log[1].frames.at(4), query.body);
  Deliver(0, {"", "CRC01", Cmd(ClientCommand::kQueryReply), sent.frames.at(3), "answer"});
  ASSERT_EQ(outcomes.size(), 1u);
  EXPECT_EQ(outcomes[0].body, "answer");
}

TEST_F(ClientCoreTest, AWaitingJobQueryLastsItsWaitPlusTheFailoverTimeout) {
  Make(1);
  core_->OnTick(now_);
  Pong(0);
  transport_.log.clear();
  const JobId id = JobId::Random();
  QueryRequest query = JobQueryRequest(id, 5000ms, 0, 3000ms, now_);
  EXPECT_EQ(query.deadline, now_ + 8000ms);
  EXPECT_EQ(query.broker, 0u);
  EXPECT_EQ(wire::DecodeJobQuery(query.body).wait_ms, 5000u);
  std::vector<QueryOutcome> outcomes;
  query.done = [&](QueryOutcome&& outcome) { outcomes.push_back(std::move(outcome)); };
  core_->Query(std::move(query), now_);
  // The broker holds the question and answers pings meanwhile: it stays up, and the
  // question does not time out at failover_timeout.
  for (int i = 0; i < 7; ++i) {
    Advance(1000ms);
    Pong(0);
  }
  Advance(999ms);
  EXPECT_TRUE(outcomes.empty());
  EXPECT_EQ(core_->health(0), BrokerHealth::kUp);
  Advance(1ms);
  ASSERT_EQ(outcomes.size(), 1u);
  ASSERT_TRUE(outcomes[0].error);
  EXPECT_EQ(outcomes[0].error->code(), ErrorCode::kUnavailable);
  // A wait past the protocol's cap asks for the cap, and waits as long.
  const QueryRequest longer = JobQueryRequest(id, 10min, 0, 3000ms, now_);
  EXPECT_EQ(wire::DecodeJobQuery(longer.body).wait_ms, wire::kMaxJobWaitMs);
  EXPECT_EQ(longer.deadline, now_ + 63s);
  EXPECT_EQ(JobQueryRequest(id, 0ms, 0, 3000ms, now_).deadline, now_ + 3s);
}

TEST_F(ClientCoreTest, RoundRobinsOverHealthyBrokersPreferringUpOnes) {
  Make(3);
  for (int i = 0; i < 6; ++i) core_->Submit(Job(), now_);
  std::map<std::size_t, int> per_broker;
  for (const auto& sent : transport_.TakeSubmits()) ++per_broker[sent.broker];
  EXPECT_EQ(per_broker, (std::map<std::size_t, int>{{0, 2}, {1, 2}, {2, 2}}));
  // Once broker 1 is known up and the others are not, it gets everything.
  core_->OnTick(now_);
  Pong(1);
  for (int i = 0; i < 4; ++i) core_->Submit(Job(), now_);
  for (const auto& sent : transport_.TakeSubmits()) EXPECT_EQ(sent.broker, 1u);
}

TEST_F(ClientCoreTest, RetriesBusyWithSameBytesThenSucceeds) {
  Make(1);
  JobRequest job = Job();
  const JobId id = job.id;
  const std::string envelope = job.envelope;
  core_->Submit(std::move(job), now_);
  transport_.TakeSubmits();
  Fail(0, id, ErrorCode::kBusy);
  EXPECT_TRUE(captured_.outcomes.empty());
  EXPECT_TRUE(transport_.TakeSubmits().empty());
  Advance(49ms);
  EXPECT_TRUE(transport_.TakeSubmits().empty());
  Advance(1ms);
  auto resent = transport_.TakeSubmits();
  ASSERT_EQ(resent.size(), 1u);
  EXPECT_EQ(resent[0].frames[3], envelope);  // same id, same sealed bytes
  Fail(0, id, ErrorCode::kBusy);
  Advance(100ms);
  ASSERT_EQ(transport_.TakeSubmits().size(), 1u);
  Reply(0, id);
  ASSERT_EQ(captured_.outcomes.size(), 1u);
  EXPECT_FALSE(captured_.outcomes[0].error);
  EXPECT_EQ(captured_.outcomes[0].retries, 2u);
  EXPECT_EQ(captured_.outcomes[0].sends, 3u);
  EXPECT_EQ(core_->counters().retries, 2u);
}

TEST_F(ClientCoreTest, GivesUpAfterMaxRetriesWithTheLastError) {
  Make(1);
  JobRequest job = Job(ReplyMode::kCall, 100s, 2);
  const JobId id = job.id;
  core_->Submit(std::move(job), now_);
  for (int i = 0; i < 3; ++i) {
    Fail(0, id, ErrorCode::kWorkerLost);
    Advance(1000ms);
  }
  ASSERT_EQ(captured_.outcomes.size(), 1u);
  ASSERT_TRUE(captured_.outcomes[0].error);
  EXPECT_EQ(captured_.outcomes[0].error->code(), ErrorCode::kWorkerLost);
  EXPECT_EQ(captured_.outcomes[0].sends, 3u);
}

TEST_F(ClientCoreTest, NeverRetriesHandlerErrors) {
  Make(2);
  JobRequest job = Job();
  const JobId id = job.id;
  core_->Submit(std::move(job), now_);
  const auto first = transport_.TakeSubmits();
  ASSERT_EQ(first.size(), 1u);
  Fail(first[0].broker, id, ErrorCode::kHandlerError);
  ASSERT_EQ(captured_.outcomes.size(), 1u);
  EXPECT_EQ(captured_.outcomes[0].error->code(), ErrorCode::kHandlerError);
  Advance(5000ms);
  EXPECT_TRUE(transport_.TakeSubmits().empty());
}

TEST_F(ClientCoreTest, ARetryThatWouldPassTheDeadlineFailsNow) {
  Make(1);
  JobRequest job = Job(ReplyMode::kCall, 40ms);
  const JobId id = job.id;
  core_->Submit(std::move(job), now_);
  Fail(0, id, ErrorCode::kBusy);  // backoff 50 ms > 40 ms left
  ASSERT_EQ(captured_.outcomes.size(), 1u);
  EXPECT_EQ(captured_.outcomes[0].error->code(), ErrorCode::kBusy);
}

TEST_F(ClientCoreTest, DeadlineFailsAJobNoBrokerAnswers) {
  Make(1);
  core_->OnTick(now_);
  Pong(0);  // the broker is up, but never answers the job
  core_->Submit(Job(ReplyMode::kCall, 500ms), now_);
  Advance(499ms);
  Pong(0);
  EXPECT_TRUE(captured_.outcomes.empty());
  Advance(1ms);
  ASSERT_EQ(captured_.outcomes.size(), 1u);
  EXPECT_EQ(captured_.outcomes[0].error->code(), ErrorCode::kDeadlineExceeded);
  EXPECT_EQ(core_->counters().deadline_expired, 1u);
}

TEST_F(ClientCoreTest, DeadlineWithABrokerNeverHeardFromIsUnavailable) {
  Make(1);
  core_->Submit(Job(ReplyMode::kCall, 500ms), now_);
  Advance(500ms);
  ASSERT_EQ(captured_.outcomes.size(), 1u);
  EXPECT_EQ(captured_.outcomes[0].error->code(), ErrorCode::kUnavailable);
}

TEST_F(ClientCoreTest, NoBrokerAtAllFailsUnavailableAfterRetries) {
  Make(1, 2);
  core_->Submit(Job(ReplyMode::kCall, 30s, 2), now_);
  Advance(3000ms);  // silent: marked down; the job has nowhere to go
  EXPECT_EQ(core_->health(0), BrokerHealth::kDown);
  EXPECT_TRUE(captured_.outcomes.empty());
  Advance(50ms);
  Advance(100ms);
  ASSERT_EQ(captured_.outcomes.size(), 1u);
  EXPECT_EQ(captured_.outcomes[0].error->code(), ErrorCode::kUnavailable);
  EXPECT_LT(now_ - (SteadyTime{} + 1000s), 4s);
}

TEST_F(ClientCoreTest, FailsOverASilentBrokersJobsKeepingTheirIds) {
  Make(2);
  core_->OnTick(now_);
  Pong(0);
  Pong(1);
  std::vector<JobId> ids;
  for (int i = 0; i < 10; ++i) {
    JobRequest job = Job(ReplyMode::kCall, 30s);
    ids.push_back(job.id);
    core_->Submit(std::move(job), now_);
  }
  std::map<std::string, std::size_t> first_broker;
  for (const auto& sent : transport_.TakeSubmits()) first_broker[sent.frames[3]] = sent.broker;
  EXPECT_EQ(core_->assigned(0), 5u);
  EXPECT_EQ(core_->assigned(1), 5u);
  // Broker 1 dies: only broker 0 keeps answering pings.
  for (int i = 0; i < 3; ++i) {
    Advance(1000ms);
    Pong(0);
    transport_.log.erase(std::remove_if(transport_.log.begin(), transport_.log.end(),
                                        [](const Sent& s) { return s.command() == ClientCommand::kPing; }),
                         transport_.log.end());
  }
  EXPECT_EQ(core_->health(1), BrokerHealth::kDown);
  EXPECT_EQ(transport_.redials[1], 1);
  const auto resent = transport_.TakeSubmits();
  ASSERT_EQ(resent.size(), 5u);
  for (const auto& sent : resent) {
    EXPECT_EQ(sent.broker, 0u);
    EXPECT_EQ(first_broker.at(sent.frames[3]), 1u);  // the same envelope bytes that went to 1
  }
  EXPECT_EQ(core_->counters().failovers, 5u);
  // Everything answered once, even when the dead broker's answers show up late.
  for (const JobId& id : ids) Reply(0, id);
  for (const JobId& id : ids) Reply(1, id);
  EXPECT_EQ(captured_.outcomes.size(), 10u);
  EXPECT_EQ(core_->counters().duplicates_dropped, 10u);
  // Broker 1 comes back: it is used again.
  Deliver(1, {"", "CRC01", Cmd(ClientCommand::kPong), std::string(8, '\0')});
  EXPECT_EQ(core_->health(1), BrokerHealth::kUp);
}

TEST_F(ClientCoreTest, AClosedConnectionFailsOverAtOnceWithoutWaitingForSilence) {
  Make(2);
  core_->OnTick(now_);
  Pong(0);
  Pong(1);
  for (int i = 0; i < 10; ++i) core_->Submit(Job(ReplyMode::kCall, 30s), now_);
  std::map<std::string, std::size_t> first_broker;
  for (const auto& sent : transport_.TakeSubmits()) first_broker[sent.frames[3]] = sent.broker;
  ASSERT_EQ(core_->assigned(1), 5u);
  // No time passes: the transport saw broker 1's connection close.
  core_->OnDisconnected(1, now_);
  EXPECT_EQ(core_->health(1), BrokerHealth::kDown);
  EXPECT_EQ(transport_.redials[1], 1);
  const auto resent = transport_.TakeSubmits();
  ASSERT_EQ(resent.size(), 5u);
  for (const auto& sent : resent) {
    EXPECT_EQ(sent.broker, 0u);
    EXPECT_EQ(first_broker.at(sent.frames[3]), 1u);
  }
  EXPECT_EQ(core_->counters().failovers, 5u);
  EXPECT_EQ(core_->counters().disconnects, 1u);
  // Closed again while already down (the redial is refused): nothing more happens.
  core_->OnDisconnected(1, now_);
  EXPECT_EQ(transport_.redials[1], 1);
  EXPECT_TRUE(transport_.TakeSubmits().empty());
}

TEST_F(ClientCoreTest, ALoneBrokersClosedConnectionLeavesItsJobsForItsReturn) {
  Make(1);
  core_->OnTick(now_);
  Pong(0);
  core_->Submit(Job(ReplyMode::kCall, 30s), now_);
  ASSERT_EQ(transport_.TakeSubmits().size(), 1u);
  core_->OnDisconnected(0, now_);  // most likely restarting: nowhere else to send the job
  EXPECT_EQ(core_->health(0), BrokerHealth::kUp);
  EXPECT_EQ(core_->assigned(0), 1u);
  EXPECT_TRUE(transport_.TakeSubmits().empty());
  EXPECT_TRUE(captured_.outcomes.empty());
}

TEST_F(ClientCoreTest, AConnectionThatNeverAnsweredClosingDoesNotRedialInALoop) {
  Make(1);
  core_->Submit(Job(ReplyMode::kCall, 30s), now_);
  ASSERT_EQ(core_->health(0), BrokerHealth::kConnecting);
  core_->OnDisconnected(0, now_);  // e.g. a CURVE handshake the broker refused
  EXPECT_EQ(core_->health(0), BrokerHealth::kConnecting);
  EXPECT_EQ(transport_.redials[0], 0);
  EXPECT_EQ(core_->counters().failovers, 0u);
}

TEST_F(ClientCoreTest, ResendsAtOnceWhenABrokerRestarted) {
  Make(1);
  auto pong = [&](std::string incarnation) {
    Deliver(0, {"", "CRC01", Cmd(ClientCommand::kPong), std::string(8, '\0'), std::move(incarnation)});
  };
  pong("AAAAAAAA");
  JobRequest job = Job();
  const JobId id = job.id;
  const std::string envelope = job.envelope;
  core_->Submit(std::move(job), now_);
  ASSERT_EQ(transport_.TakeSubmits().size(), 1u);
  pong("AAAAAAAA");  // same broker process: nothing to do
  EXPECT_TRUE(transport_.TakeSubmits().empty());
  pong("BBBBBBBB");  // it restarted and forgot the job
  const auto resent = transport_.TakeSubmits();
  ASSERT_EQ(resent.size(), 1u);
  EXPECT_EQ(resent[0].frames[3], envelope);
  EXPECT_EQ(core_->counters().broker_restarts, 1u);
  EXPECT_EQ(core_->assigned(0), 1u);
  Reply(0, id);
  EXPECT_EQ(captured_.outcomes.size(), 1u);
  // A 4-frame PONG (an older broker) changes nothing.
  Deliver(0, {"", "CRC01", Cmd(ClientCommand::kPong), std::string(8, '\0')});
  EXPECT_EQ(core_->counters().broker_restarts, 1u);
}

TEST_F(ClientCoreTest, SeesARestartWhileTheRestartedBrokerKeepsAnswering) {
  // A broker restarted faster than failover_timeout: the transport reconnected by itself,
  // and the new process answers new jobs, so the broker is never quiet. It is pinged every
  // interval anyway while it holds jobs, and its new incarnation gets the forgotten job
  // resent within an interval.
  Make(1);
  auto pong = [&](std::string incarnation) {
    for (const Sent& sent : transport_.log) {
      if (sent.command() == ClientCommand::kPing) {
        Deliver(0, {"", "CRC01", Cmd(ClientCommand::kPong), sent.frames.at(3), incarnation});
      }
    }
    transport_.log.erase(std::remove_if(transport_.log.begin(), transport_.log.end(),
                                        [](const Sent& s) { return s.command() == ClientCommand::kPing; }),
                         transport_.log.end());
  };
  core_->OnTick(now_);
  pong("AAAAAAAA");
  JobRequest forgotten = Job(ReplyMode::kCall, 30s);
  const JobId forgotten_id = forgotten.id;
  const std::string forgotten_envelope = forgotten.envelope;
  core_->Submit(std::move(forgotten), now_);
  ASSERT_EQ(transport_.TakeSubmits().size(), 1u);
  // The broker restarts; from now on it answers every new job at once, every 100 ms.
  bool resent = false;
  for (int step = 0; step < 20 && !resent; ++step) {
    JobRequest job = Job(ReplyMode::kCall, 30s);
    const JobId id = job.id;
    core_->Submit(std::move(job), now_);
    Advance(100ms);
    Reply(0, id);
    pong("BBBBBBBB");
    for (const Sent& sent : transport_.TakeSubmits()) resent = resent || sent.frames[3] == forgotten_envelope;
  }
  EXPECT_TRUE(resent) << "the forgotten job was never resent";
  EXPECT_EQ(core_->counters().broker_restarts, 1u);
  EXPECT_EQ(core_->health(0), BrokerHealth::kUp);
  Reply(0, forgotten_id);
  EXPECT_EQ(core_->pending_jobs(), 0u);
  // With nothing outstanding, a talking broker is not pinged: only a quiet one is.
  Deliver(0, {"", "CRC01", Cmd(ClientCommand::kPong), std::string(8, '\0'), "BBBBBBBB"});
  transport_.log.clear();
  Advance(900ms);
  EXPECT_TRUE(transport_.log.empty());
}

TEST_F(ClientCoreTest, IgnoresATransientErrorFromABrokerNoLongerHoldingTheJob) {
  Make(2);
  core_->OnTick(now_);
  Pong(0);
  Pong(1);
  JobRequest job = Job();
  const JobId id = job.id;
  core_->Submit(std::move(job), now_);
  const std::size_t holder = transport_.TakeSubmits().at(0).broker;
  Fail(1 - holder, id, ErrorCode::kBusy);
  EXPECT_EQ(core_->counters().retries, 0u);
  EXPECT_TRUE(captured_.outcomes.empty());
}

TEST_F(ClientCoreTest, RetryPrefersAnotherBroker) {
  Make(2);
  core_->OnTick(now_);
  Pong(0);
  Pong(1);
  JobRequest job = Job();
  const JobId id = job.id;
  core_->Submit(std::move(job), now_);
  const std::size_t first = transport_.TakeSubmits().at(0).broker;
  Fail(first, id, ErrorCode::kShuttingDown);
  Advance(50ms);
  const auto retry = transport_.TakeSubmits();
  ASSERT_EQ(retry.size(), 1u);
  EXPECT_NE(retry[0].broker, first);
}

TEST_F(ClientCoreTest, AFullPipeMovesTheJobToAnotherBroker) {
  Make(2);
  transport_.full.insert(0);
  core_->Submit(Job(), now_);
  core_->Submit(Job(), now_);
  for (const auto& sent : transport_.TakeSubmits()) EXPECT_EQ(sent.broker, 1u);
}

TEST_F(ClientCoreTest, RejectsADuplicatePendingId) {
  Make(1);
  JobRequest job = Job();
  JobRequest twin = Job();
  twin.id = job.id;
  core_->Submit(std::move(job), now_);
  core_->Submit(std::move(twin), now_);
  ASSERT_EQ(captured_.outcomes.size(), 1u);
  EXPECT_EQ(captured_.outcomes[0].error->code(), ErrorCode::kBadRequest);
  EXPECT_EQ(core_->pending_jobs(), 1u);
}

TEST_F(ClientCoreTest, MalformedInputIsCountedNotFatal) {
  Make(1);
  Deliver(0, {"x"});
  Deliver(0, {"", "MDPC01", Cmd(ClientCommand::kReply), "a", "b"});
  Deliver(0, {"", "CRC01", Cmd(ClientCommand::kReply), "not an envelope", "b"});
  Deliver(0, {"", "CRC01", Cmd(ClientCommand::kError), "\xc1"});
  Deliver(0, {"", "CRC01", Cmd(ClientCommand::kAccept), "short"});
  EXPECT_EQ(core_->counters().malformed, 5u);
}

TEST_F(ClientCoreTest, PingsEveryIntervalAndMarksUpOnAnyTraffic) {
  Make(1);
  core_->OnTick(now_);
  ASSERT_EQ(transport_.log.size(), 1u);
  EXPECT_EQ(transport_.log[0].command(), ClientCommand::kPing);
  EXPECT_EQ(core_->health(0), BrokerHealth::kConnecting);
  Pong(0);
  EXPECT_EQ(core_->health(0), BrokerHealth::kUp);
  transport_.log.clear();
  Advance(999ms);
  EXPECT_TRUE(transport_.log.empty());
  Advance(1ms);
  EXPECT_EQ(transport_.log.size(), 1u);
  EXPECT_LE(core_->NextWakeup(), now_ + 1000ms);
}

TEST_F(ClientCoreTest, QueriesMatchByCorrelationAndTimeOut) {
  Make(2);
  std::vector<QueryOutcome> outcomes;
  QueryRequest query;
  query.kind = QueryKind::kQuery;
  query.name = "services";
  query.broker = 1;
  query.deadline = now_ + 3s;
  query.done = [&](QueryOutcome&& outcome) { outcomes.push_back(std::move(outcome)); };
  core_->Query(query, now_);
  ASSERT_EQ(transport_.log.size(), 1u);
  const Sent sent = transport_.log[0];
  EXPECT_EQ(sent.broker, 1u);
  EXPECT_EQ(sent.command(), ClientCommand::kQuery);
  EXPECT_EQ(DecodeQueryName(sent.frames.at(4)), "services");
  Deliver(1, {"", "CRC01", Cmd(ClientCommand::kQueryReply), sent.frames[3], "body"});
  ASSERT_EQ(outcomes.size(), 1u);
  EXPECT_EQ(outcomes[0].body, "body");

  core_->Query(query, now_);
  Advance(3000ms);
  ASSERT_EQ(outcomes.size(), 2u);
  ASSERT_TRUE(outcomes[1].error);
  EXPECT_EQ(outcomes[1].error->code(), ErrorCode::kUnavailable);
}

TEST_F(ClientCoreTest, FailAllAnswersEverything) {
  Make(1);
  core_->Submit(Job(), now_);
  core_->Submit(Job(), now_);
  core_->FailAll(ErrorCode::kCancelled, "bye", now_);
  ASSERT_EQ(captured_.outcomes.size(), 2u);
  for (const auto& outcome : captured_.outcomes) EXPECT_EQ(outcome.error->code(), ErrorCode::kCancelled);
  EXPECT_EQ(core_->pending_jobs(), 0u);
}

}  // namespace
}  // namespace courier::detail
