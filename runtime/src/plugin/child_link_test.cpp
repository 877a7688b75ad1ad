// The host ↔ handler child frames: every field survives a round trip, frames are found in
// a byte stream however it is split, and a broken frame is refused, never half-read.
#include "child_link.hpp"

#include <gtest/gtest.h>

#include "courier/error.hpp"
#include "envelope_codec.hpp"

namespace courier::detail {
namespace {

JobInput SampleJob() {
  Envelope envelope;
  envelope.job_id = JobId::Random();
  envelope.service = "resize";
  envelope.deadline_ms = NowUnixMs() + 5000;
  envelope.attempt = 2;
  JobInput job;
  job.seq = 42;
  job.service = 3;
  job.envelope_bytes = EncodeEnvelope(envelope);
  job.broker = "tcp://127.0.0.1:5555";
  job.sender = "client-a";
  job.payload = std::string("\0payload\xff", 9);
  job.envelope = envelope;
  return job;
}

TEST(ChildLinkTest, AJobRoundTrips) {
  const JobInput job = SampleJob();
  const std::string frame = EncodeChildJob(job);
  ASSERT_EQ(CompleteChildFrame(frame, 1 << 20), frame.size());
  const JobInput back = DecodeChildJob(frame);
  EXPECT_EQ(back.seq, 42u);
  EXPECT_EQ(back.service, 3u);
  EXPECT_EQ(back.envelope_bytes, job.envelope_bytes);
  EXPECT_EQ(back.broker, job.broker);
  EXPECT_EQ(back.sender, job.sender);
  EXPECT_EQ(back.Payload(), job.payload);
  EXPECT_EQ(back.envelope.job_id, job.envelope.job_id);
  EXPECT_EQ(back.envelope.attempt, 2u);
}

TEST(ChildLinkTest, ADoneFrameCarriesOutputsSamplesAndRecords) {
  ChildDone done;
  done.seq = 7;
  done.outputs.push_back(JobOutput{7, WorkerCommand::kReply, "envelope", "payload"});
  done.outputs.push_back(JobOutput{9, WorkerCommand::kError, "error body", ""});
  done.samples.push_back(StageSample{1, Stage::kHandle, false, 12345});
  done.samples.push_back(StageSample{1, Stage::kOpen, true, 0});
  ErrorRecord record;
  record.job_id = JobId::Random();
  record.service = "resize";
  record.broker = "tcp://b";
  record.sender = "client-a";
  record.attempt = 3;
  record.trace_id.fill(0xab);
  record.stage = Stage::kVerify;
  record.code = ErrorCode::kInvalidPayload;
  record.message = "width: must be at most 4096";
  record.at_ms = 1764300000123;
  done.records.push_back(record);

  const ChildDone back = DecodeChildDone(EncodeChildDone(done));
  EXPECT_EQ(back.seq, 7u);
  ASSERT_EQ(back.outputs.size(), 2u);
  EXPECT_EQ(back.outputs[0].command, WorkerCommand::kReply);
  EXPECT_EQ(back.outputs[0].body2, "payload");
  EXPECT_EQ(back.outputs[1].seq, 9u);
  ASSERT_EQ(back.samples.size(), 2u);
  EXPECT_EQ(back.samples[0].ns, 12345u);
  EXPECT_TRUE(back.samples[1].error);
  ASSERT_EQ(back.records.size(), 1u);
  EXPECT_EQ(back.records[0].job_id, record.job_id);
  EXPECT_EQ(back.records[0].trace_id, record.trace_id);
  EXPECT_EQ(back.records[0].code, ErrorCode::kInvalidPayload);
  EXPECT_EQ(back.records[0].message, record.message);
  EXPECT_EQ(back.records[0].at_ms, record.at_ms);
}

TEST(ChildLinkTest, FramesAreFoundInAStreamSplitAnywhere) {
  const std::string stream = EncodeChildJob(SampleJob()) + EncodeChildJob(SampleJob());
  const std::size_t first = *CompleteChildFrame(stream, 1 << 20);
  for (std::size_t cut = 0; cut < first; ++cut) {
    EXPECT_FALSE(CompleteChildFrame(std::string_view(stream).substr(0, cut), 1 << 20)) << cut;
  }
  EXPECT_EQ(CompleteChildFrame(std::string_view(stream).substr(first), 1 << 20), stream.size() - first);
}

TEST(ChildLinkTest, BrokenFramesAreRefused) {
  const std::string frame = EncodeChildJob(SampleJob());
  EXPECT_THROW(CompleteChildFrame(frame, 16), Error);                  // longer than allowed
  EXPECT_THROW(DecodeChildDone(frame), Error);                         // the wrong kind
  EXPECT_THROW(DecodeChildJob(frame.substr(0, frame.size() - 1)), Error);  // cut short
  std::string trailing = frame + "x";
  EXPECT_THROW(DecodeChildJob(trailing), Error);
}

}  // namespace
}  // namespace courier::detail
