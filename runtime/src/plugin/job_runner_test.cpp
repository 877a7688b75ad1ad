// The per-job pipeline without sockets: every error path gets its code, nothing bad
// reaches the handler, duplicates of non-idempotent jobs run once.
#include "job_runner.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <stdexcept>
#include <thread>

#include <unistd.h>

#include "envelope_codec.hpp"
#include "frames.hpp"

namespace courier::detail {
namespace {

using ::testing::HasSubstr;

std::atomic<int> g_calls{0};

class Probe {
 public:
  static constexpr std::string_view kName = "probe";
  Value Handle(const Value& request) const {
    ++g_calls;
    const std::string& action = request.At("action").AsString();
    if (action == "throw") throw std::runtime_error("boom");
    if (action == "local") throw Error(ErrorCode::kConfig, "local code");
    if (action == "busy") throw Error(ErrorCode::kBusy, "try later");
    if (action == "sleep") std::this_thread::sleep_for(std::chrono::milliseconds(request.At("ms").AsInt()));
    return request;
  }
};

class RecordingReporter final : public ErrorReporter {
 public:
  void Report(const ErrorRecord& record) noexcept override { records.push_back(record); }
  std::vector<ErrorRecord> records;
};

class JobRunnerTest : public ::testing::Test {
 protected:
  JobRunnerTest() : runner_(keyring_, stats_, reporter_, 1 << 20) {
    service_.name = "probe";
    service_.stats_index = stats_.AddService("probe");
    service_.instance = std::make_unique<ServiceModel<Probe>>(ConfigSection::Empty());
    service_.schema = PayloadSchema::Parse(
        "[request]\ntype = \"map\"\n[request.fields.action]\ntype = \"string\"\nrequired = true\n", "probe.toml");
    g_calls = 0;
  }

  Envelope MakeEnvelope(std::uint64_t deadline_ms = 0) {
    Envelope envelope;
    envelope.job_id = JobId::Random();
    envelope.service = "probe";
    envelope.created_at_ms = NowUnixMs();
    envelope.deadline_ms = deadline_ms != 0 ? deadline_ms : NowUnixMs() + 10000;
    return envelope;
  }

  JobInput Sealed(const Value& request, const Keyring& keyring, Envelope envelope) {
    Keyring::Sealed sealed = keyring.Seal(envelope, EncodeValue(request));
    JobInput job;
    job.seq = ++seq_;
    job.broker = "tcp://test";
    job.envelope_bytes = sealed.envelope;
    job.payload = sealed.payload;
    job.envelope = DecodeEnvelope(job.envelope_bytes).ToEnvelope();
    return job;
  }
  JobInput Sealed(const Value& request) { return Sealed(request, keyring_, MakeEnvelope()); }

  JobInput Unsealed(const std::string& plaintext) {
    JobInput job;
    job.seq = ++seq_;
    job.envelope = MakeEnvelope();
    job.envelope_bytes = EncodeEnvelope(job.envelope);
    job.payload = plaintext;
    return job;
  }

  // Runs one job expecting exactly one output.
  JobOutput RunOne(JobInput job) {
    std::vector<JobOutput> outputs = runner_.Run(service_, job);
    EXPECT_EQ(outputs.size(), 1u);
    return outputs.empty() ? JobOutput{} : outputs.front();
  }

  ErrorBody ExpectError(const JobOutput& output, ErrorCode code) {
    EXPECT_EQ(output.command, WorkerCommand::kError);
    const ErrorBody body = DecodeErrorBody(output.body1);
    EXPECT_EQ(body.code, code) << body.message;
    return body;
  }

  void ExpectReject(const JobOutput& output, ErrorCode code) {
    EXPECT_EQ(output.command, WorkerCommand::kReject);
    if (output.command == WorkerCommand::kReject) {
      EXPECT_EQ(DecodeReject(output.body1).code, code);
    }
  }

  Value OpenReply(const JobOutput& output) {
    EXPECT_EQ(output.command, WorkerCommand::kReply);
    const EnvelopeView envelope = DecodeEnvelope(output.body1);
    EXPECT_EQ(envelope.mode, ReplyMode::kReply);
    if (envelope.key_id == kUnsealedKeyId) return DecodeValue(output.body2);
    return DecodeValue(keyring_.Open(output.body1, output.body2));
  }

  std::uint64_t Count(Stage stage, bool errors = false) {
    const StageSummary s = stats_.Snapshot()[static_cast<std::size_t>(stage)];
    return errors ? s.errors : s.count;
  }

  Keyring keyring_ = Keyring::Generate();
  StageStats stats_;
  RecordingReporter reporter_;
  JobRunner runner_;
  ServiceRuntime service_;
  std::uint64_t seq_ = 0;
};

TEST_F(JobRunnerTest, RepliesSealedWithTheSameJobIdentity) {
  const Value request = Value::Object({{"action", "echo"}, {"x", 1}});
  JobInput job = Sealed(request);
  const JobOutput output = RunOne(job);
  EXPECT_EQ(output.seq, job.seq);
  EXPECT_EQ(OpenReply(output), request);
  const EnvelopeView reply = DecodeEnvelope(output.body1);
  EXPECT_EQ(reply.job_id, job.envelope.job_id);
  EXPECT_EQ(reply.service, "probe");
  EXPECT_EQ(reply.deadline_ms, job.envelope.deadline_ms);
  EXPECT_NE(reply.nonce, job.envelope.nonce);
  for (Stage stage : {Stage::kOpen, Stage::kParse, Stage::kVerify, Stage::kHandle, Stage::kConvert, Stage::kSeal}) {
    EXPECT_EQ(Count(stage), 1u) << ToString(stage);
  }
  EXPECT_TRUE(reporter_.records.empty());
}

TEST_F(JobRunnerTest, TamperedPayloadIsRejectedUnauthenticatedAndNeverHandled) {
  JobInput job = Sealed(Value::Object({{"action", "echo"}}));
  job.payload[0] = static_cast<char>(job.payload[0] ^ 1);
  ExpectReject(RunOne(job), ErrorCode::kUnauthenticated);
  EXPECT_EQ(g_calls, 0);
  EXPECT_EQ(Count(Stage::kOpen, true), 1u);
  ASSERT_EQ(reporter_.records.size(), 1u);
  EXPECT_EQ(reporter_.records[0].stage, Stage::kOpen);
  EXPECT_EQ(reporter_.records[0].job_id, job.envelope.job_id);
}

TEST_F(JobRunnerTest, UnknownKeyIsReported) {
  Keyring other;
  other.AddKey(7, std::string(32, 'k'));
  other.SetActive(7);
  ExpectReject(RunOne(Sealed(Value::Object({{"action", "echo"}}), other, MakeEnvelope())), ErrorCode::kUnknownKey);
  EXPECT_EQ(g_calls, 0);
}

// A host whose key file was replaced on disk (a rotation, or another process winning the
// race to create it) opens the payload with what is on disk instead of rejecting it.
TEST(JobRunnerKeysTest, AKeyFileThatChangedIsReadAgainBeforeRejecting) {
  const std::filesystem::path dir = std::filesystem::temp_directory_path() /
                                    ("courier-keysource-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::filesystem::path file = dir / "keyring.toml";
  std::filesystem::remove(file);
  Keyring::Generate().Save(file);
  auto keys = KeySource::FromFile(file);
  StageStats stats;
  RecordingReporter reporter;
  JobRunner runner(*keys, stats, reporter, 1 << 20);
  ServiceRuntime service;
  service.name = "probe";
  service.stats_index = stats.AddService("probe");
  service.instance = std::make_unique<ServiceModel<Probe>>(ConfigSection::Empty());

  Keyring winner = Keyring::Generate();  // the file another process wrote
  std::filesystem::remove(file);
  winner.Save(file);
  Envelope envelope;
  envelope.job_id = JobId::Random();
  envelope.service = "probe";
  envelope.deadline_ms = NowUnixMs() + 10000;
  Keyring::Sealed sealed = winner.Seal(envelope, EncodeValue(Value::Object({{"action", "echo"}})));
  JobInput job;
  job.envelope_bytes = sealed.envelope;
  job.payload = sealed.payload;
  job.envelope = DecodeEnvelope(job.envelope_bytes).ToEnvelope();
  const std::vector<JobOutput> outputs = runner.Run(service, job);
  ASSERT_EQ(outputs.size(), 1u);
  EXPECT_EQ(outputs[0].command, WorkerCommand::kReply);
  EXPECT_EQ(keys->Current()->Fingerprint(winner.active_key_id()), winner.Fingerprint(winner.active_key_id()));
  std::filesystem::remove_all(dir);
}

TEST_F(JobRunnerTest, UnsealedPayloadsNeedAllowUnsealed) {
  const std::string plaintext = EncodeValue(Value::Object({{"action", "echo"}}));
  ExpectError(RunOne(Unsealed(plaintext)), ErrorCode::kUnauthenticated);
  service_.settings.allow_unsealed = true;
  const JobOutput output = RunOne(Unsealed(plaintext));
  EXPECT_EQ(DecodeEnvelope(output.body1).key_id, kUnsealedKeyId);
  EXPECT_EQ(output.body2, plaintext);  // unsealed request, unsealed reply
}

TEST_F(JobRunnerTest, UndecodablePayloadIsBadRequest) {
  service_.settings.allow_unsealed = true;
  ExpectError(RunOne(Unsealed("\xc1")), ErrorCode::kBadRequest);
  ExpectError(RunOne(Unsealed(std::string("\xdb\xff\xff\xff\xff", 5))), ErrorCode::kBadRequest);
  EXPECT_EQ(g_calls, 0);
  EXPECT_EQ(Count(Stage::kParse, true), 2u);
}

TEST_F(JobRunnerTest, SchemaViolationIsInvalidPayloadAndNeverHandled) {
  const ErrorBody body = ExpectError(RunOne(Sealed(Value::Object({{"x", 1}}))), ErrorCode::kInvalidPayload);
  EXPECT_EQ(body.message, "request.action: required field is missing");
  EXPECT_EQ(g_calls, 0);
  EXPECT_EQ(Count(Stage::kVerify, true), 1u);
}

TEST_F(JobRunnerTest, HandlerExceptionsBecomeHandlerErrors) {
  EXPECT_EQ(ExpectError(RunOne(Sealed(Value::Object({{"action", "throw"}}))), ErrorCode::kHandlerError).message,
            "boom");
  // Local-only codes never cross the wire.
  ExpectError(RunOne(Sealed(Value::Object({{"action", "local"}}))), ErrorCode::kHandlerError);
  // Wire codes chosen by the handler are kept.
  ExpectError(RunOne(Sealed(Value::Object({{"action", "busy"}}))), ErrorCode::kBusy);
  EXPECT_EQ(Count(Stage::kHandle, true), 3u);
  ASSERT_EQ(reporter_.records.size(), 3u);
  EXPECT_EQ(reporter_.records[0].stage, Stage::kHandle);
  EXPECT_EQ(reporter_.records[0].message, "boom");
}

TEST_F(JobRunnerTest, ReplyBreakingItsSchemaIsInvalidReplyAndNeverSent) {
  service_.schema = PayloadSchema::Parse(
      "[request]\ntype = \"map\"\n[reply]\ntype = \"map\"\n[reply.fields.x]\ntype = \"integer\"\nmin = 0\n",
      "probe.toml");
  service_.verify_replies = true;
  EXPECT_EQ(OpenReply(RunOne(Sealed(Value::Object({{"action", "echo"}, {"x", 3}})))).At("x").AsInt(), 3);
  const ErrorBody body =
      ExpectError(RunOne(Sealed(Value::Object({{"action", "echo"}, {"x", -3}}))), ErrorCode::kInvalidReply);
  EXPECT_EQ(body.message, "reply.x: expected an integer >= 0, got -3");
  EXPECT_EQ(g_calls, 2);  // the handler ran; its reply did not leave
  EXPECT_EQ(Count(Stage::kReplyVerify), 1u);
  EXPECT_EQ(Count(Stage::kReplyVerify, true), 1u);
  EXPECT_EQ(Count(Stage::kErrorCapture), 1u);
  ASSERT_EQ(reporter_.records.size(), 1u);
  EXPECT_EQ(reporter_.records[0].stage, Stage::kReplyVerify);
  EXPECT_EQ(reporter_.records[0].code, ErrorCode::kInvalidReply);
  EXPECT_THAT(reporter_.records[0].message, HasSubstr("reply.x"));

  service_.verify_replies = false;  // verify_replies = false: the host sends what it got
  EXPECT_EQ(OpenReply(RunOne(Sealed(Value::Object({{"action", "echo"}, {"x", -3}})))).At("x").AsInt(), -3);
  EXPECT_EQ(Count(Stage::kReplyVerify), 1u);
}

TEST_F(JobRunnerTest, SealedJobsTimeTheirKeyLookupAndFailuresTheirCapture) {
  RunOne(Sealed(Value::Object({{"action", "echo"}})));
  RunOne(Sealed(Value::Object({{"action", "echo"}})));
  EXPECT_EQ(Count(Stage::kKey), 2u);
  service_.settings.allow_unsealed = true;
  RunOne(Unsealed(EncodeValue(Value::Object({{"action", "echo"}}))));
  EXPECT_EQ(Count(Stage::kKey), 2u);  // nothing to look up
  EXPECT_EQ(Count(Stage::kErrorCapture), 0u);
  ExpectError(RunOne(Sealed(Value::Object({{"action", "throw"}}))), ErrorCode::kHandlerError);
  EXPECT_EQ(Count(Stage::kErrorCapture), 1u);
}

TEST_F(JobRunnerTest, ExpiredJobsAreNotRun) {
  ExpectError(RunOne(Sealed(Value::Object({{"action", "echo"}}), keyring_, MakeEnvelope(NowUnixMs() - 1))),
              ErrorCode::kDeadlineExceeded);
  EXPECT_EQ(g_calls, 0);
}

TEST_F(JobRunnerTest, LateHandlersAnswerDeadlineExceeded) {
  const ErrorBody body = ExpectError(
      RunOne(Sealed(Value::Object({{"action", "sleep"}, {"ms", 60}}), keyring_, MakeEnvelope(NowUnixMs() + 20))),
      ErrorCode::kDeadlineExceeded);
  EXPECT_THAT(body.message, HasSubstr("after the job's deadline"));
  EXPECT_EQ(g_calls, 1);
}

TEST_F(JobRunnerTest, DuplicatesOfNonIdempotentJobsRunOnce) {
  service_.idempotent = false;
  service_.cache = std::make_unique<ReplyCache<DuplicateWaiter>>(std::chrono::minutes(5), 100);
  const Value request = Value::Object({{"action", "echo"}, {"n", 1}});
  JobInput first = Sealed(request);
  JobInput second = first;
  second.seq = ++seq_;
  const JobOutput a = RunOne(first);
  const JobOutput b = RunOne(second);
  EXPECT_EQ(g_calls, 1);
  EXPECT_EQ(b.seq, second.seq);
  EXPECT_EQ(OpenReply(a), OpenReply(b));
  EXPECT_EQ(service_.cache->hits(), 1u);
}

TEST_F(JobRunnerTest, DuplicatesOfAFailedNonIdempotentJobGetTheSameError) {
  service_.idempotent = false;
  service_.cache = std::make_unique<ReplyCache<DuplicateWaiter>>(std::chrono::minutes(5), 100);
  JobInput first = Sealed(Value::Object({{"action", "throw"}}));
  JobInput second = first;
  second.seq = ++seq_;
  EXPECT_EQ(ExpectError(RunOne(first), ErrorCode::kHandlerError).message, "boom");
  EXPECT_EQ(ExpectError(RunOne(second), ErrorCode::kHandlerError).message, "boom");
  EXPECT_EQ(g_calls, 1);
}

TEST_F(JobRunnerTest, ADuplicateArrivingWhileTheJobRunsIsAnsweredByIt) {
  service_.idempotent = false;
  service_.cache = std::make_unique<ReplyCache<DuplicateWaiter>>(std::chrono::minutes(5), 100);
  JobInput first = Sealed(Value::Object({{"action", "sleep"}, {"ms", 300}}));
  JobInput second = first;
  second.seq = ++seq_;
  std::vector<JobOutput> first_outputs;
  std::thread runner([&] { first_outputs = runner_.Run(service_, first); });
  ASSERT_TRUE([&] {
    for (int i = 0; i < 200 && service_.cache->size() == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    return service_.cache->size() == 1;
  }());
  EXPECT_TRUE(runner_.Run(service_, second).empty());  // waits for the first run
  runner.join();
  ASSERT_EQ(first_outputs.size(), 2u);
  EXPECT_EQ(first_outputs[0].seq, first.seq);
  EXPECT_EQ(first_outputs[1].seq, second.seq);
  EXPECT_EQ(OpenReply(first_outputs[0]), OpenReply(first_outputs[1]));
  EXPECT_EQ(g_calls, 1);
}

}  // namespace
}  // namespace courier::detail
