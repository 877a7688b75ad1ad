#include "wire/job_records.hpp"

#include <gtest/gtest.h>

namespace courier::wire {
namespace {

JobId SampleId() {
  JobId id;
  for (std::size_t i = 0; i < id.bytes.size(); ++i) id.bytes[i] = static_cast<std::uint8_t>(i);
  return id;
}

std::string Hex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (const char c : bytes) {
    if (!out.empty()) out += ' ';
    out += kDigits[(static_cast<unsigned char>(c) >> 4) & 0xf];
    out += kDigits[static_cast<unsigned char>(c) & 0xf];
  }
  return out;
}

// The example of schemas/PROTOCOL.md §9.1, byte for byte.
TEST(JobRecordsWireTest, JobQueryMatchesTheProtocolExample) {
  const std::string body = EncodeQuery(JobQuery{.id = SampleId(), .wait_ms = 5000});
  EXPECT_EQ(Hex(body),
            "92 a3 6a 6f 62 82 a2 69 64 c4 10 00 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f "
            "a7 77 61 69 74 5f 6d 73 cd 13 88");
  const JobQuery decoded = DecodeJobQuery(body);
  EXPECT_EQ(decoded.id, SampleId());
  EXPECT_EQ(decoded.wait_ms, 5000u);
}

TEST(JobRecordsWireTest, JobQueryWaitIsClampedAndIdMustBe16Bytes) {
  EXPECT_EQ(DecodeJobQuery(EncodeQuery(JobQuery{.id = SampleId(), .wait_ms = 10'000'000})).wait_ms, kMaxJobWaitMs);
  // ["job", {"id": bin 3}]
  const std::string short_id("\x92\xa3job\x81\xa2id\xc4\x03\x01\x02\x03", 14);
  EXPECT_THROW(DecodeJobQuery(short_id), Error);
  // ["job"] without arguments, and a query of another name.
  EXPECT_THROW(DecodeJobQuery(std::string("\x91\xa3job", 5)), Error);
  EXPECT_THROW(DecodeJobQuery(EncodeQuery(JobsQuery{})), Error);
}

TEST(JobRecordsWireTest, JobsQueryRoundTripsAndClampsItsLimit) {
  JobsQuery query;
  query.service = "echo";
  query.state = JobState::kFailed;
  query.limit = 5000;
  query.after = 42;
  const JobsQuery decoded = DecodeJobsQuery(EncodeQuery(query));
  EXPECT_EQ(decoded.service, "echo");
  EXPECT_EQ(decoded.state, JobState::kFailed);
  EXPECT_EQ(decoded.limit, kMaxJobsPage);
  EXPECT_EQ(decoded.after, 42u);
  EXPECT_FALSE(DecodeJobsQuery(EncodeQuery(JobsQuery{})).state.has_value());
  // An unknown state is refused, not read as "every state".
  const std::string bad("\x92\xa4jobs\x81\xa5state\xa4nope", 18);
  EXPECT_THROW(DecodeJobsQuery(bad), Error);
}

TEST(JobRecordsWireTest, RecordsAndPagesRoundTrip) {
  JobRecord done;
  done.id = SampleId();
  done.service = "echo";
  done.state = JobState::kDone;
  done.attempt = 2;
  done.max_attempts = 3;
  done.since_ms = 1700000000000;
  done.expires_ms = 1700003600000;
  done.reply = {std::string("\x9c\x01", 2), std::string("\x00\xff", 2)};
  const JobRecord decoded = DecodeJobRecord(EncodeJobRecord(done));
  EXPECT_EQ(decoded.id, done.id);
  EXPECT_EQ(decoded.state, JobState::kDone);
  EXPECT_EQ(decoded.attempt, 2u);
  EXPECT_EQ(decoded.reply, done.reply);
  EXPECT_TRUE(decoded.durable);

  JobRecord dead = done;
  dead.state = JobState::kDead;
  dead.code = ErrorCode::kAttemptsExhausted;
  dead.message = "worker lost on attempt 3 of 3";
  dead.reply.clear();
  JobsPage page{.rows = {done, dead}, .next = 7};
  const JobsPage back = DecodeJobsPage(EncodeJobsPage(page));
  ASSERT_EQ(back.rows.size(), 2u);
  EXPECT_EQ(back.rows[1].code, ErrorCode::kAttemptsExhausted);
  EXPECT_EQ(back.rows[1].message, dead.message);
  EXPECT_EQ(back.next, 7u);
}

TEST(JobRecordsWireTest, QueryReplyCarriesTheResultOrTheBrokersError) {
  const std::string record = EncodeJobRecord(JobRecord{.id = SampleId(), .service = "echo"});
  EXPECT_EQ(QueryResult(EncodeQueryReply(record)), record);
  // [18, "no job ..."]
  const std::string not_found("\x92\x12\xa6no job", 9);
  try {
    QueryResult(not_found);
    FAIL() << "expected not_found";
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), ErrorCode::kNotFound);
  }
}

TEST(JobRecordsWireTest, StateNamesRoundTrip) {
  for (const auto state : {JobState::kQueued, JobState::kRunning, JobState::kDone, JobState::kFailed, JobState::kDead}) {
    EXPECT_EQ(ParseJobState(ToString(state)), state);
  }
  EXPECT_FALSE(ParseJobState("Done").has_value());
}

}  // namespace
}  // namespace courier::wire
