// Stored jobs in the routing core (PROTOCOL.md §6.5, §6.6, §9.1), frame in / frame out on
// a fake clock: the store ops it emits, ACCEPT only after the commit, restart, lookups and
// Titanic. The store itself is job_store_test.cpp's.
#include <gtest/gtest.h>

#include "broker_test_fixture.hpp"
#include "wire/job_records.hpp"

namespace courier::broker {
namespace {

using namespace test;
using namespace std::chrono_literals;
using Kind = StoreOp::Kind;

class StoredJobsTest : public BrokerTest {
 protected:
  StoredJobsTest() { broker_->UseStore(); }

  // Commits (or fails) what the core asked for. Returns: the ops of the batch.
  std::vector<StoreOp> Commit(CommitResult::Status status = CommitResult::Status::kOk) {
    std::vector<StoreOp> ops = broker_->TakeStoreOps();
    broker_->OnStoreCommitted(CommitResult{status, status == CommitResult::Status::kOk ? "" : "store full"}, At());
    return ops;
  }
  static std::vector<Kind> Kinds(const std::vector<StoreOp>& ops) {
    std::vector<Kind> kinds;
    for (const auto& op : ops) kinds.push_back(op.kind);
    return kinds;
  }
  static bool IsAccept(const Message& message, const JobId& id) {
    return message.size() == 5 && message[3] == "\x02" && message[4] == std::string(id.View());
  }
};

TEST_F(StoredJobsTest, ASendJobIsAcceptedAndDispatchedOnlyAfterItsCommit) {
  CourierReady("W1", "echo");
  const JobId id = Submit("C1", "echo", ReplyMode::kSend);
  EXPECT_TRUE(outbox_.Take("C1").empty()) << "ACCEPT before the job was stored";
  EXPECT_EQ(Requests(outbox_.Take("W1")), 0u) << "dispatched before the job was stored";
  const auto ops = Commit();
  ASSERT_EQ(Kinds(ops), std::vector<Kind>{Kind::kAddJob});
  EXPECT_EQ(ops[0].job.id, id);
  EXPECT_EQ(ops[0].durability, Durability::kFsync);
  const auto to_client = outbox_.Take("C1");
  ASSERT_EQ(to_client.size(), 1u);
  EXPECT_TRUE(IsAccept(to_client[0], id));
  EXPECT_EQ(Requests(outbox_.Take("W1")), 1u);
  // The dispatch is recorded; the answer removes the job from the store.
  EXPECT_EQ(Kinds(broker_->TakeStoreOps()), std::vector<Kind>{Kind::kDispatched});
  Deliver({"W1", "", "CRW01", "\x03", MakeEnvelope("echo", id, ReplyMode::kReply), "reply"});
  EXPECT_EQ(Kinds(broker_->TakeStoreOps()), std::vector<Kind>{Kind::kRemoveJob});
  EXPECT_EQ(broker_->LiveJobs(), 0u);
}

TEST_F(StoredJobsTest, ACallIsNeverStored) {
  CourierReady("W1", "echo");
  Submit("C1", "echo", ReplyMode::kCall);
  EXPECT_EQ(Requests(outbox_.Take("W1")), 1u);
  EXPECT_TRUE(broker_->TakeStoreOps().empty());
}

TEST_F(StoredJobsTest, AFailedCommitRefusesItsJobsBusyAndForgetsThem) {
  CourierReady("W1", "echo");
  const JobId id = Submit("C1", "echo", ReplyMode::kEnqueue);
  Commit(CommitResult::Status::kFull);
  const auto to_client = outbox_.Take("C1");
  ASSERT_EQ(to_client.size(), 1u);
  const auto error = ErrorOf(to_client[0]);
  EXPECT_EQ(error.job_id, id);
  EXPECT_EQ(error.code, ErrorCode::kBusy);
  EXPECT_EQ(Requests(outbox_.Take("W1")), 0u);
  EXPECT_EQ(broker_->LiveJobs(), 0u);
  EXPECT_EQ(broker_->QueueDepth("echo"), 0u);
  EXPECT_EQ(broker_->counters().store_refusals, 1u);
  // Nothing of the refused job is left to write (its add was rolled back).
  EXPECT_TRUE(broker_->TakeStoreOps().empty());
}

TEST_F(StoredJobsTest, AResendWhileTheCommitIsPendingIsAcceptedOnceAfterIt) {
  const JobId id = JobId::Random();
  const std::string envelope = MakeEnvelope("echo", id, ReplyMode::kSend);
  Deliver({"C1", "", "CRC01", "\x01", envelope, "payload"});
  Deliver({"C1", "", "CRC01", "\x01", envelope, "payload"});
  EXPECT_TRUE(outbox_.Take("C1").empty());
  EXPECT_EQ(Kinds(Commit()), std::vector<Kind>{Kind::kAddJob});
  EXPECT_EQ(outbox_.Take("C1").size(), 1u);
}

TEST_F(StoredJobsTest, AnAcceptThatMeetsAFullPipeWaitsForTheNextTurnInsteadOfBeingDropped) {
  const JobId id = Submit("C1", "echo", ReplyMode::kSend);
  outbox_.full.insert("C1");
  Commit();
  broker_->FlushDeferredAccepts();
  EXPECT_TRUE(outbox_.Take("C1").empty());
  outbox_.full.clear();
  broker_->FlushDeferredAccepts();
  const auto to_client = outbox_.Take("C1");
  ASSERT_EQ(to_client.size(), 1u);
  EXPECT_TRUE(IsAccept(to_client[0], id));
  EXPECT_EQ(broker_->counters().client_sends_full, 0u);
  // A client that went away meanwhile: its waiting ACCEPT is dropped, not retried forever.
  Submit("C2", "echo", ReplyMode::kSend);
  outbox_.full.insert("C2");
  Commit();
  outbox_.full.clear();
  outbox_.unreachable.insert("C2");
  broker_->FlushDeferredAccepts();
  broker_->FlushDeferredAccepts();
  EXPECT_EQ(broker_->counters().unreachable_clients, 1u);
}

TEST_F(StoredJobsTest, MemoryDurabilityAcceptsAtOnceAndWritesNoJob) {
  BrokerConfig config;
  config.defaults.durability = Durability::kMemory;
  Reset(config);
  broker_->UseStore();
  const JobId id = Submit("C1", "echo", ReplyMode::kSend);
  const auto to_client = outbox_.Take("C1");
  ASSERT_EQ(to_client.size(), 1u);
  EXPECT_TRUE(IsAccept(to_client[0], id));
  EXPECT_TRUE(broker_->TakeStoreOps().empty());
}

TEST_F(StoredJobsTest, AnEnqueuedJobsReplyIsKeptAndAWaitingLookupIsAnsweredFromTheStore) {
  CourierReady("W1", "echo");
  const JobId id = Submit("C1", "echo", ReplyMode::kEnqueue);
  Commit();
  outbox_.Take("C1");
  // Running: answered from memory at once.
  Deliver({"Q", "", "CRC01", "\x05", "q1", wire::EncodeQuery(wire::JobQuery{.id = id, .wait_ms = 0})});
  auto answers = outbox_.Take("Q");
  ASSERT_EQ(answers.size(), 1u);
  const wire::JobRecord running = wire::DecodeJobRecord(wire::QueryResult(answers[0][5]));
  EXPECT_EQ(running.state, wire::JobState::kRunning);
  EXPECT_EQ(running.worker, "W1 (pid 0)");
  // Waiting: parked until the reply.
  Deliver({"Q", "", "CRC01", "\x05", "q2", wire::EncodeQuery(wire::JobQuery{.id = id, .wait_ms = 5000})});
  EXPECT_TRUE(outbox_.Take("Q").empty());
  broker_->TakeStoreOps();
  Deliver({"W1", "", "CRW01", "\x03", MakeEnvelope("echo", id, ReplyMode::kReply), "sealed reply"});
  const auto ops = broker_->TakeStoreOps();
  ASSERT_EQ(Kinds(ops), (std::vector<Kind>{Kind::kAddResult, Kind::kRemoveJob}));
  EXPECT_EQ(ops[0].result.state, wire::JobState::kDone);
  EXPECT_EQ(ops[0].result.reply.at(1), "sealed reply");
  EXPECT_EQ(ops[0].result.expires_ms, At().unix_ms + 3600 * 1000);
  const auto lookups = broker_->TakeLookups();
  ASSERT_EQ(lookups.size(), 1u);
  EXPECT_EQ(lookups[0].correlation, "q2");
  broker_->AnswerLookup(lookups[0], std::optional<wire::JobRecord>(ops[0].result));
  answers = outbox_.Take("Q");
  ASSERT_EQ(answers.size(), 1u);
  EXPECT_EQ(wire::DecodeJobRecord(wire::QueryResult(answers[0][5])).reply.at(1), "sealed reply");
}

TEST_F(StoredJobsTest, AWaitThatRunsOutAnswersTheStateThen) {
  const JobId id = Submit("C1", "echo", ReplyMode::kEnqueue);
  Commit();
  Deliver({"Q", "", "CRC01", "\x05", "q", wire::EncodeQuery(wire::JobQuery{.id = id, .wait_ms = 1000})});
  Advance(900ms);
  EXPECT_TRUE(outbox_.Take("Q").empty());
  Advance(200ms);
  const auto answers = outbox_.Take("Q");
  ASSERT_EQ(answers.size(), 1u);
  EXPECT_EQ(wire::DecodeJobRecord(wire::QueryResult(answers[0][5])).state, wire::JobState::kQueued);
}

TEST_F(StoredJobsTest, FailuresAndDeadLettersOfEnqueuedJobsAreKeptAsResults) {
  CourierReady("W1", "echo");
  const JobId failed = Submit("C1", "echo", ReplyMode::kEnqueue);
  Commit();
  broker_->TakeStoreOps();
  Deliver({"W1", "", "CRW01", "\x06", detail::EncodeErrorBody(failed, ErrorCode::kHandlerError, "boom")});
  auto ops = broker_->TakeStoreOps();
  ASSERT_GE(ops.size(), 2u);
  EXPECT_EQ(ops[0].kind, Kind::kAddResult);
  EXPECT_EQ(ops[0].result.state, wire::JobState::kFailed);
  EXPECT_EQ(ops[0].result.code, ErrorCode::kHandlerError);

  const JobId dead = Submit("C1", "echo", ReplyMode::kEnqueue, 1);
  Commit();
  broker_->TakeStoreOps();
  // Its handler crashes with it: attempt 1 of 1 spent.
  Deliver({"W1", "", "CRW01", "\x06", detail::EncodeErrorBody(dead, ErrorCode::kWorkerCrashed, "signal 9")});
  ops = broker_->TakeStoreOps();
  const auto result = std::find_if(ops.begin(), ops.end(), [](const StoreOp& op) { return op.kind == Kind::kAddResult; });
  ASSERT_NE(result, ops.end());
  EXPECT_EQ(result->result.id, dead);
  EXPECT_EQ(result->result.state, wire::JobState::kDead);
  // The dead letter to courier.errors is stored too.
  EXPECT_TRUE(std::any_of(ops.begin(), ops.end(), [](const StoreOp& op) {
    return op.kind == Kind::kAddJob && op.job.service == "courier.errors";
  }));
}

TEST_F(StoredJobsTest, RestoredJobsKeepTheirOrderAndHeldOnesComeBackWithTheNextAttempt) {
  BrokerConfig config;
  Reset(config);
  broker_->UseStore();
  auto stored = [&](bool dispatched, std::uint32_t attempt, std::uint32_t max_attempts, std::uint64_t seq) {
    StoredJob job;
    job.id = JobId::Random();
    job.seq = seq;
    job.service = "echo";
    job.mode = ReplyMode::kEnqueue;
    job.envelope = MakeEnvelope("echo", job.id, ReplyMode::kEnqueue, max_attempts);
    job.payload = "payload";
    job.attempt = attempt;
    job.max_attempts = max_attempts;
    job.deadline_ms = At().unix_ms + 30000;
    job.dispatched = dispatched;
    return job;
  };
  StoredJob queued = stored(false, 1, 3, 1);
  StoredJob held = stored(true, 1, 3, 2);
  StoredJob spent = stored(true, 3, 3, 3);
  const JobId queued_id = queued.id;
  const JobId held_id = held.id;
  const JobId spent_id = spent.id;
  broker_->Restore(std::move(queued), At());
  broker_->Restore(std::move(held), At());
  broker_->Restore(std::move(spent), At());
  broker_->FinishRestore(3, At());
  EXPECT_EQ(broker_->counters().restored_jobs, 3u);
  EXPECT_EQ(broker_->QueueDepth("echo"), 2u);
  const auto letters = DeadLetters();
  ASSERT_EQ(letters.size(), 1u);
  EXPECT_EQ(letters[0].At("job_id").AsBinary().bytes, std::string(spent_id.View()));
  CourierReady("W1", "echo", 10);
  const auto requests = outbox_.Take("W1");
  ASSERT_EQ(RequestIds(requests), (std::vector<JobId>{queued_id, held_id}));
  EXPECT_EQ(detail::DecodeEnvelope(requests[0][4]).attempt, 1u);
  EXPECT_EQ(detail::DecodeEnvelope(requests[1][4]).attempt, 2u);
  // New jobs sort after the restored ones.
  Submit("C1", "echo", ReplyMode::kSend);
  const auto ops = broker_->TakeStoreOps();
  const auto added = std::find_if(ops.begin(), ops.end(), [](const StoreOp& op) {
    return op.kind == Kind::kAddJob && op.job.service == "echo";
  });
  ASSERT_NE(added, ops.end());
  EXPECT_GT(added->job.seq, 3u);
}

TEST_F(StoredJobsTest, ADrainKeepsStoredJobsForTheNextStart) {
  CourierReady("W1", "echo");
  Submit("C1", "echo", ReplyMode::kSend);
  Commit();
  Submit("C1", "echo", ReplyMode::kSend);
  Commit();
  outbox_.Take("C1");
  broker_->TakeStoreOps();
  broker_->BeginDrain(At());
  EXPECT_EQ(broker_->QueueDepth("echo"), 1u) << "a queued stored job was failed by the drain";
  broker_->DisconnectAll();
  EXPECT_TRUE(outbox_.Take("C1").empty());
  for (const auto& op : broker_->TakeStoreOps()) EXPECT_NE(op.kind, Kind::kRemoveJob);
}

TEST_F(StoredJobsTest, TitanicRequestReplyAndClose) {
  Deliver({"T", "", "MDPC01", "titanic.request", "echo", "hello"});
  EXPECT_TRUE(outbox_.Take("T").empty()) << "200 before the request was stored";
  const auto ops = Commit();
  ASSERT_EQ(Kinds(ops), std::vector<Kind>{Kind::kAddJob});
  EXPECT_EQ(ops[0].job.origin, StoredOrigin::kTitanic);
  auto answer = outbox_.Take("T");
  ASSERT_EQ(answer.size(), 1u);
  ASSERT_EQ(answer[0].size(), 6u);
  EXPECT_EQ(answer[0][3], "titanic.request");
  EXPECT_EQ(answer[0][4], "200");
  const std::string id = answer[0][5];
  EXPECT_EQ(JobId::FromHex(id), ops[0].job.id);

  Deliver({"T", "", "MDPC01", "titanic.reply", id});
  EXPECT_EQ(outbox_.Take("T").at(0), (Message{"T", "", "MDPC01", "titanic.reply", "300"}));
  // An MDP worker answers; the result goes to the store, not to the requester.
  Deliver({"W1", "", "MDPW01", "\x01", "echo"});
  auto request = outbox_.Take("W1");
  ASSERT_EQ(request.size(), 1u);
  EXPECT_EQ(request[0].back(), "hello");
  Deliver({"W1", "", "MDPW01", "\x03", "T", "", "HELLO"});
  EXPECT_TRUE(outbox_.Take("T").empty());
  const auto stored = broker_->TakeStoreOps();
  const auto result = std::find_if(stored.begin(), stored.end(), [](const StoreOp& op) { return op.kind == Kind::kAddResult; });
  ASSERT_NE(result, stored.end());
  EXPECT_EQ(result->result.reply, std::vector<std::string>{"HELLO"});

  Deliver({"T", "", "MDPC01", "titanic.reply", id});
  const auto lookups = broker_->TakeLookups();
  ASSERT_EQ(lookups.size(), 1u);
  broker_->AnswerLookup(lookups[0], std::optional<wire::JobRecord>(result->result));
  EXPECT_EQ(outbox_.Take("T").at(0), (Message{"T", "", "MDPC01", "titanic.reply", "200", "HELLO"}));
  broker_->AnswerLookup(lookups[0], std::optional<wire::JobRecord>{});
  EXPECT_EQ(outbox_.Take("T").at(0), (Message{"T", "", "MDPC01", "titanic.reply", "400"}));

  Deliver({"T", "", "MDPC01", "titanic.request", "courier.errors", "list"});
  EXPECT_EQ(outbox_.Take("T").at(0).at(4), "500");

  Deliver({"T", "", "MDPC01", "titanic.close", id});
  EXPECT_EQ(outbox_.Take("T").at(0), (Message{"T", "", "MDPC01", "titanic.close", "200"}));
  EXPECT_EQ(Kinds(broker_->TakeStoreOps()), std::vector<Kind>{Kind::kRemoveResult});
}

}  // namespace
}  // namespace courier::broker
