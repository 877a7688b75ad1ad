// The socket-free parts of stored jobs: opening a kept reply, deciding a lookup over
// several brokers, Result's error mapping, and paging and merging `jobs` over brokers.
#include "client/stored_jobs.hpp"

#include <gtest/gtest.h>

#include <map>

#include "envelope_codec.hpp"

namespace courier::detail {
namespace {

using namespace std::chrono_literals;

const SteadyTime kStart = SteadyTime{} + 1000s;

// A reply for job `id` of `service` as a worker seals it (PROTOCOL.md §5.1).
Keyring::Sealed SealedReply(const Keyring& keyring, const JobId& id, std::string_view service, const Value& value,
                            ReplyMode mode = ReplyMode::kReply) {
  Envelope envelope;
  envelope.job_id = id;
  envelope.service = std::string(service);
  envelope.created_at_ms = 1;
  envelope.deadline_ms = 2;
  envelope.mode = mode;
  return keyring.Seal(envelope, EncodeValue(value));
}

// A QUERY_REPLY body [status, message] refusing the query.
std::string Refusal(ErrorCode code, std::string_view message) {
  std::string out("\x92", 1);
  out += static_cast<char>(code);  // codes below 128 are positive fixints
  out += static_cast<char>(0xa0 | message.size());
  out += message;
  return out;
}

QueryOutcome Answer(std::string body, SteadyTime sent = kStart, SteadyTime answered = kStart) {
  QueryOutcome outcome;
  outcome.body = std::move(body);
  outcome.sent = sent;
  outcome.answered = answered;
  return outcome;
}

QueryOutcome Failure(ErrorCode code, std::string message) {
  QueryOutcome outcome;
  outcome.error = Error(code, std::move(message));
  return outcome;
}

wire::JobRecord Record(const JobId& id, wire::JobState state) {
  wire::JobRecord record;
  record.id = id;
  record.service = "render";
  record.state = state;
  record.attempt = 1;
  record.max_attempts = 3;
  return record;
}

std::string RecordAnswer(const wire::JobRecord& record) {
  return wire::EncodeQueryReply(wire::EncodeJobRecord(record));
}

// ---- OpenReply -----------------------------------------------------------------------------

TEST(StoredJobsTest, OpenReplyOpensASealedReplyForTheJob) {
  const Keyring keyring = Keyring::Generate();
  const JobId id = JobId::Random();
  const auto sealed = SealedReply(keyring, id, "render", Value("frame"));
  EXPECT_EQ(DecodeValue(OpenReply(keyring, id, "render", sealed.envelope, sealed.payload)), Value("frame"));
}

TEST(StoredJobsTest, OpenReplyRejectsWhatAnyoneOnThePathCouldForge) {
  const Keyring keyring = Keyring::Generate();
  const JobId id = JobId::Random();
  auto code_of = [&](std::string_view envelope, std::string_view payload, std::string_view service = "render") {
    try {
      OpenReply(keyring, id, service, envelope, payload);
    } catch (const Error& error) {
      return error.code();
    }
    return ErrorCode::kInternal;  // opened: not expected here
  };
  // Not a reply (a request reflected back), another job, another service.
  const auto request = SealedReply(keyring, id, "render", Value(1), ReplyMode::kEnqueue);
  EXPECT_EQ(code_of(request.envelope, request.payload), ErrorCode::kUnauthenticated);
  const auto other_job = SealedReply(keyring, JobId::Random(), "render", Value(1));
  EXPECT_EQ(code_of(other_job.envelope, other_job.payload), ErrorCode::kUnauthenticated);
  const auto good = SealedReply(keyring, id, "render", Value(1));
  EXPECT_EQ(code_of(good.envelope, good.payload, "other"), ErrorCode::kUnauthenticated);
  // Unsealed (key id 0, cleartext payload).
  Envelope unsealed;
  unsealed.job_id = id;
  unsealed.service = "render";
  unsealed.deadline_ms = 2;
  unsealed.mode = ReplyMode::kReply;
  EXPECT_EQ(code_of(EncodeEnvelope(unsealed), EncodeValue(Value(1))), ErrorCode::kUnauthenticated);
  // Tampered payload; an envelope that does not decode.
  std::string tampered = good.payload;
  tampered[0] = static_cast<char>(tampered[0] ^ 1);
  EXPECT_EQ(code_of(good.envelope, tampered), ErrorCode::kUnauthenticated);
  EXPECT_EQ(code_of("not an envelope", good.payload), ErrorCode::kBadRequest);
}

// ---- JobLookup -----------------------------------------------------------------------------

TEST(StoredJobsTest, ALookupEveryBrokerDeniesIsNotFound) {
  const JobId id = JobId::Random();
  JobLookup lookup(id, {"tcp://a", "tcp://b"}, 0ms, kStart);
  EXPECT_EQ(lookup.OnAnswer(1, Answer(Refusal(ErrorCode::kNotFound, "no such job")), 0ms, kStart).kind,
            JobLookup::Step::Kind::kPending);
  EXPECT_EQ(lookup.OnAnswer(0, Answer(Refusal(ErrorCode::kNotFound, "no such job")), 0ms, kStart).kind,
            JobLookup::Step::Kind::kDone);
  ASSERT_TRUE(lookup.error());
  EXPECT_EQ(lookup.error()->code(), ErrorCode::kNotFound);
  EXPECT_NE(std::string(lookup.error()->what()).find(id.Hex()), std::string::npos);
  EXPECT_FALSE(lookup.record());
}

TEST(StoredJobsTest, TheFirstRecordDecidesALookupWithoutWaitingForTheOthers) {
  const JobId id = JobId::Random();
  JobLookup lookup(id, {"tcp://a", "tcp://b", "tcp://c"}, 0ms, kStart);
  EXPECT_EQ(lookup.OnAnswer(0, Answer(Refusal(ErrorCode::kNotFound, "no")), 0ms, kStart).kind,
            JobLookup::Step::Kind::kPending);
  EXPECT_EQ(lookup.OnAnswer(2, Answer(RecordAnswer(Record(id, wire::JobState::kRunning))), 0ms, kStart).kind,
            JobLookup::Step::Kind::kDone);
  ASSERT_TRUE(lookup.record());
  EXPECT_EQ(lookup.record_broker(), 2u);
  EXPECT_EQ(lookup.record()->state, wire::JobState::kRunning);
  EXPECT_FALSE(lookup.error());
  // A late answer changes nothing.
  EXPECT_EQ(lookup.OnAnswer(1, Failure(ErrorCode::kUnavailable, "late"), 0ms, kStart).kind,
            JobLookup::Step::Kind::kDone);
  EXPECT_EQ(lookup.record_broker(), 2u);
}

TEST(StoredJobsTest, ABrokerThatCouldNotSayMakesANotFoundLookupUnavailable) {
  const JobId id = JobId::Random();
  JobLookup lookup(id, {"tcp://a", "tcp://b"}, 0ms, kStart);
  lookup.OnAnswer(0, Failure(ErrorCode::kUnavailable, "broker tcp://a is down"), 0ms, kStart);
  lookup.OnAnswer(1, Answer(Refusal(ErrorCode::kNotFound, "no")), 0ms, kStart);
  ASSERT_TRUE(lookup.done());
  ASSERT_TRUE(lookup.error());
  // The job may be on the broker that did not answer.
  EXPECT_EQ(lookup.error()->code(), ErrorCode::kUnavailable);
  const std::string message = lookup.error()->what();
  EXPECT_NE(message.find("not on tcp://b"), std::string::npos) << message;
  EXPECT_NE(message.find("tcp://a: broker tcp://a is down"), std::string::npos) << message;
  // An answer about another job is a broker's mistake, not a record.
  JobLookup other(id, {"tcp://a"}, 0ms, kStart);
  other.OnAnswer(0, Answer(RecordAnswer(Record(JobId::Random(), wire::JobState::kDone))), 0ms, kStart);
  ASSERT_TRUE(other.error());
  EXPECT_EQ(other.error()->code(), ErrorCode::kBadRequest);
}

TEST(StoredJobsTest, ALongWaitAsksTheHoldingBrokerAgainUntilTheJobIsFinal) {
  const JobId id = JobId::Random();
  JobLookup lookup(id, {"tcp://a", "tcp://b"}, 90s, kStart);
  lookup.OnAnswer(0, Answer(Refusal(ErrorCode::kNotFound, "no")), 60s, kStart);
  // Broker b held the question its 60 s and the job is still running: 30 s are left.
  const SteadyTime later = kStart + 60s;
  const auto step = lookup.OnAnswer(1, Answer(RecordAnswer(Record(id, wire::JobState::kRunning)), kStart, later), 60s, later);
  ASSERT_EQ(step.kind, JobLookup::Step::Kind::kAskAgain);
  EXPECT_EQ(step.broker, 1u);
  EXPECT_EQ(step.wait, 30s);
  EXPECT_FALSE(lookup.done());
  const SteadyTime final_time = later + 10s;
  EXPECT_EQ(lookup.OnAnswer(1, Answer(RecordAnswer(Record(id, wire::JobState::kDone)), later, final_time), 30s,
                            final_time)
                .kind,
            JobLookup::Step::Kind::kDone);
  EXPECT_EQ(lookup.record()->state, wire::JobState::kDone);
}

TEST(StoredJobsTest, ABrokerThatAnswersAWaitingQuestionAtOnceIsNotAskedInALoop) {
  const JobId id = JobId::Random();
  JobLookup lookup(id, {"tcp://a"}, 10s, kStart);
  const auto step =
      lookup.OnAnswer(0, Answer(RecordAnswer(Record(id, wire::JobState::kQueued)), kStart, kStart + 1ms), 10s,
                      kStart + 1ms);
  EXPECT_EQ(step.kind, JobLookup::Step::Kind::kDone);
  EXPECT_EQ(lookup.record()->state, wire::JobState::kQueued);
}

// ---- records and Result --------------------------------------------------------------------

TEST(StoredJobsTest, ADoneRecordsReplyIsOpenedIntoTheResult) {
  const Keyring keyring = Keyring::Generate();
  const JobId id = JobId::Random();
  wire::JobRecord record = Record(id, wire::JobState::kDone);
  const auto sealed = SealedReply(keyring, id, "render", Value::Object({{"frame", 7}}));
  record.reply = {sealed.envelope, sealed.payload};
  record.since_ms = 1700000000000;
  record.expires_ms = 1700003600000;
  const JobStatus status = ToJobStatus(record, "tcp://a", &keyring);
  EXPECT_EQ(status.id, id);
  EXPECT_EQ(status.state, JobState::kDone);
  EXPECT_EQ(status.service, "render");
  EXPECT_EQ(status.broker, "tcp://a");
  EXPECT_EQ(status.since_ms, 1700000000000u);
  EXPECT_EQ(status.expires_ms, 1700003600000u);
  ASSERT_TRUE(status.result);
  EXPECT_EQ(status.result->At("frame").AsUint(), 7u);
  EXPECT_FALSE(status.error);
  EXPECT_EQ(ResultOf(status, 1s).At("frame").AsUint(), 7u);

  // A kept reply that is not a Courier reply, or whose envelope was swapped, is refused.
  wire::JobRecord one_frame = record;
  one_frame.reply = {sealed.payload};
  EXPECT_THROW(
      {
        try {
          ToJobStatus(one_frame, "tcp://a", &keyring);
        } catch (const Error& error) {
          EXPECT_EQ(error.code(), ErrorCode::kBadRequest);
          throw;
        }
      },
      Error);
  wire::JobRecord swapped = record;
  const auto other = SealedReply(keyring, JobId::Random(), "render", Value(1));
  swapped.reply = {other.envelope, other.payload};
  try {
    ToJobStatus(swapped, "tcp://a", &keyring);
    ADD_FAILURE() << "a reply of another job was accepted";
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), ErrorCode::kUnauthenticated);
  }
  // Without a keyring (list rows carry no reply) nothing is opened.
  EXPECT_FALSE(ToJobStatus(Record(id, wire::JobState::kDone), "tcp://a", nullptr).result);
}

TEST(StoredJobsTest, ResultMapsFailuresAndPendingStatesToErrors) {
  const JobId id = JobId::Random();
  auto code_and_message = [](const JobStatus& status, std::chrono::milliseconds wait) {
    try {
      ResultOf(status, wait);
    } catch (const Error& error) {
      return std::make_pair(error.code(), std::string(error.what()));
    }
    return std::make_pair(ErrorCode::kInternal, std::string("no error"));
  };
  wire::JobRecord failed = Record(id, wire::JobState::kFailed);
  failed.code = ErrorCode::kHandlerError;
  failed.message = "image too large";
  const JobStatus failed_status = ToJobStatus(failed, "tcp://a", nullptr);
  ASSERT_TRUE(failed_status.error);
  EXPECT_EQ(code_and_message(failed_status, 1s), std::make_pair(ErrorCode::kHandlerError, std::string("image too large")));

  wire::JobRecord dead = Record(id, wire::JobState::kDead);
  dead.code = ErrorCode::kAttemptsExhausted;
  dead.message = "";
  EXPECT_EQ(code_and_message(ToJobStatus(dead, "tcp://a", nullptr), 1s),
            std::make_pair(ErrorCode::kAttemptsExhausted, std::string("attempts_exhausted")));

  const auto queued = code_and_message(ToJobStatus(Record(id, wire::JobState::kQueued), "tcp://a", nullptr), 5s);
  EXPECT_EQ(queued.first, ErrorCode::kDeadlineExceeded);
  EXPECT_EQ(queued.second, "job " + id.Hex() + " still queued after 5 s");
  const auto running =
      code_and_message(ToJobStatus(Record(id, wire::JobState::kRunning), "tcp://a", nullptr), 1500ms);
  EXPECT_EQ(running.first, ErrorCode::kDeadlineExceeded);
  EXPECT_EQ(running.second, "job " + id.Hex() + " still running after 1500 ms");
  // Done, but nothing opened (a record from a listing).
  EXPECT_EQ(code_and_message(ToJobStatus(Record(id, wire::JobState::kDone), "tcp://a", nullptr), 1s).first,
            ErrorCode::kBadRequest);
}

TEST(StoredJobsTest, PublicStateNamesMatchTheWire) {
  for (const JobState state : {JobState::kQueued, JobState::kRunning, JobState::kDone, JobState::kFailed, JobState::kDead}) {
    EXPECT_EQ(ParseJobState(ToString(state)), state);
  }
  EXPECT_EQ(ToString(JobState::kDead), "dead");
  EXPECT_FALSE(ParseJobState("finished"));
  EXPECT_TRUE(IsFinished(JobState::kFailed));
  EXPECT_FALSE(IsFinished(JobState::kRunning));
}

// ---- jobs over several brokers -------------------------------------------------------------

// A broker holding `since` (one stored job per entry, in acceptance order) that answers
// `jobs` queries in pages of at most `page` rows; its cursor is the row index + 1.
struct FakeJobsBroker {
  std::vector<std::uint64_t> since;
  std::size_t page = 2;
  std::vector<wire::JobsQuery> asked;

  std::string Answer(std::string_view body) {
    const wire::JobsQuery query = wire::DecodeJobsQuery(body);
    asked.push_back(query);
    wire::JobsPage out;
    std::size_t i = query.after;
    for (; i < since.size() && out.rows.size() < std::min<std::size_t>(page, query.limit); ++i) {
      wire::JobRecord record;
      record.id = JobId::Random();
      record.service = "render";
      record.state = wire::JobState::kQueued;
      record.since_ms = since[i];
      out.rows.push_back(record);
    }
    out.next = i < since.size() ? i : 0;
    return wire::EncodeQueryReply(wire::EncodeJobsPage(out));
  }
};

// Runs Client::Jobs's loop against fake brokers (nullptr: a broker that does not answer).
std::vector<JobsCursor> RunJobs(std::vector<FakeJobsBroker*> brokers, const JobsFilter& filter) {
  std::vector<JobsCursor> cursors(brokers.size());
  for (std::size_t i = 0; i < brokers.size(); ++i) cursors[i].broker = "tcp://b" + std::to_string(i);
  for (int round = 0; round < 100; ++round) {
    bool asked = false;
    for (std::size_t i = 0; i < brokers.size(); ++i) {
      const auto body = NextJobsQuery(cursors[i], filter);
      if (!body) continue;
      asked = true;
      AddJobsAnswer(cursors[i],
                    brokers[i] != nullptr ? Answer(brokers[i]->Answer(*body)) : Failure(ErrorCode::kUnavailable, "no answer"),
                    filter);
    }
    if (!asked) break;
  }
  return cursors;
}

std::vector<std::uint64_t> Since(const std::vector<JobStatus>& rows) {
  std::vector<std::uint64_t> out;
  for (const auto& row : rows) out.push_back(row.since_ms);
  return out;
}

TEST(StoredJobsTest, JobsFollowsEachBrokersPagesAndMergesUpToTheLimit) {
  FakeJobsBroker a{.since = {10, 20, 30, 40, 50}};
  FakeJobsBroker b{.since = {15, 25, 60}};
  JobsFilter filter;
  filter.service = "render";
  filter.state = JobState::kQueued;
  filter.limit = 6;
  const auto cursors = RunJobs({&a, &b}, filter);
  // a: pages of 2 from 0, 2, 4 (the last page has next 0); b: 0, 2.
  ASSERT_EQ(a.asked.size(), 3u);
  EXPECT_EQ(a.asked[0].after, 0u);
  EXPECT_EQ(a.asked[0].limit, 6u);
  EXPECT_EQ(a.asked[0].service, "render");
  EXPECT_EQ(a.asked[0].state, wire::JobState::kQueued);
  EXPECT_EQ(a.asked[1].after, 2u);
  EXPECT_EQ(a.asked[1].limit, 4u);
  EXPECT_EQ(a.asked[2].after, 4u);
  ASSERT_EQ(b.asked.size(), 2u);
  const auto rows = MergeJobs(cursors, filter.limit);
  EXPECT_EQ(Since(rows), (std::vector<std::uint64_t>{10, 15, 20, 25, 30, 40}));
  EXPECT_EQ(rows[0].broker, "tcp://b0");
  EXPECT_EQ(rows[1].broker, "tcp://b1");
}

TEST(StoredJobsTest, JobsStopsAskingABrokerOnceItHasTheLimit) {
  FakeJobsBroker a{.since = {1, 2, 3, 4, 5, 6, 7, 8}, .page = 3};
  JobsFilter filter;
  filter.limit = 4;
  const auto cursors = RunJobs({&a}, filter);
  ASSERT_EQ(a.asked.size(), 2u);
  EXPECT_EQ(a.asked[1].limit, 1u);
  EXPECT_EQ(Since(MergeJobs(cursors, filter.limit)), (std::vector<std::uint64_t>{1, 2, 3, 4}));
  // A limit past the protocol's page size asks for full pages.
  JobsFilter big;
  big.limit = 5000;
  const auto body = NextJobsQuery(JobsCursor{}, big);
  ASSERT_TRUE(body);
  EXPECT_EQ(wire::DecodeJobsQuery(*body).limit, wire::kMaxJobsPage);
}

TEST(StoredJobsTest, JobsLeavesOutABrokerThatDoesNotAnswerAndFailsOnlyIfNoneDoes) {
  FakeJobsBroker b{.since = {5, 6}};
  JobsFilter filter;
  const auto cursors = RunJobs({nullptr, &b}, filter);
  ASSERT_TRUE(cursors[0].error);
  EXPECT_EQ(Since(MergeJobs(cursors, filter.limit)), (std::vector<std::uint64_t>{5, 6}));

  const auto none = RunJobs({nullptr, nullptr}, filter);
  try {
    MergeJobs(none, filter.limit);
    ADD_FAILURE() << "no broker answered, yet Jobs did not fail";
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), ErrorCode::kUnavailable);
    EXPECT_NE(std::string(error.what()).find("tcp://b0"), std::string::npos);
  }
  // A refusal (an older broker without the query) is that broker's answer.
  JobsCursor refused;
  refused.broker = "tcp://old";
  AddJobsAnswer(refused, Answer(Refusal(ErrorCode::kBadRequest, "unknown query")), filter);
  ASSERT_TRUE(refused.error);
  EXPECT_EQ(refused.error->code(), ErrorCode::kBadRequest);
  EXPECT_TRUE(refused.finished);
}

}  // namespace
}  // namespace courier::detail
