// The service as the worker host drives it: Handle(request, job) with Values.
#include "error_sink_service.hpp"

#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <random>

#include "envelope_codec.hpp"
#include "reporting/report_codec.hpp"

namespace courier::sink {
namespace {

namespace fs = std::filesystem;

class ErrorSinkServiceTest : public ::testing::Test {
 protected:
  ErrorSinkServiceTest() {
    std::random_device random;
    dir_ = fs::temp_directory_path() / ("courier-sink-test-" + std::to_string(::getpid()) + "-" + std::to_string(random()));
    fs::create_directories(dir_);
    service_ = std::make_unique<ErrorSinkService>(ConfigSection::Parse(
        "db = \"" + (dir_ / "errors.db").string() + "\"\nbrokers = [\"tcp://127.0.0.1:1\"]\nreplay_wait = \"200ms\"\n",
        "test"));
  }
  ~ErrorSinkServiceTest() override {
    service_.reset();
    fs::remove_all(dir_);
  }

  Value Call(const Value& request) { return service_->Handle(request, JobContext()); }
  Value Store(std::vector<ErrorReport> reports) {
    detail::ErrorBatch batch;
    batch.reports = std::move(reports);
    return Call(DecodeValue(detail::EncodeErrorBatch(batch)));
  }
  static ErrorReport Report(std::string service, ErrorCode code, std::string message) {
    ErrorReport report;
    report.time_ms = NowUnixMs();
    report.service = std::move(service);
    report.job_id = JobId::Random();
    report.stage = "handle";
    report.code = code;
    report.message = std::move(message);
    report.reporter = "worker";
    return report;
  }
  static ErrorReport DeadLetter(std::uint64_t deadline_ms) {
    Envelope envelope;
    envelope.job_id = JobId::Random();
    envelope.service = "flaky";
    envelope.created_at_ms = NowUnixMs() - 10;
    envelope.deadline_ms = deadline_ms;
    envelope.attempt = 3;
    ErrorReport report = Report("flaky", ErrorCode::kAttemptsExhausted, "every attempt failed");
    report.job_id = envelope.job_id;
    report.reporter = "broker";
    report.envelope = detail::EncodeEnvelope(envelope);
    report.payload = EncodeValue(Value::Object({{"n", 1}}));
    return report;
  }
  void ExpectInvalid(const Value& request) {
    try {
      Call(request);
      ADD_FAILURE() << "accepted " << ToJson(request);
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kInvalidPayload) << e.what();
    }
  }

  fs::path dir_;
  std::unique_ptr<ErrorSinkService> service_;
};

TEST_F(ErrorSinkServiceTest, StoresABatchAndListsItWithFilters) {
  EXPECT_EQ(Store({Report("a", ErrorCode::kHandlerError, "boom"), Report("b", ErrorCode::kInvalidPayload, "bad")})
                .At("stored")
                .AsUint(),
            2u);
  Value all = Call(Value::Object({{"op", "list"}}));
  ASSERT_EQ(all.At("reports").size(), 2u);
  EXPECT_EQ(all.At("stats").At("stored").AsUint(), 2u);
  Value by_code = Call(Value::Object({{"op", "list"}, {"code", "invalid_payload"}}));
  ASSERT_EQ(by_code.At("reports").size(), 1u);
  const Value& row = by_code.At("reports").AsArray()[0];
  EXPECT_EQ(row.At("service").AsString(), "b");
  EXPECT_EQ(row.At("code_name").AsString(), "invalid_payload");
  EXPECT_EQ(row.At("stage").AsString(), "handle");
  EXPECT_EQ(row.At("job_id").AsString().size(), 32u);
  EXPECT_EQ(Call(Value::Object({{"op", "list"}, {"code", 6}})).At("reports").size(), 1u);
  EXPECT_EQ(Call(Value::Object({{"op", "list"}, {"service", "a"}})).At("reports").size(), 1u);
  EXPECT_EQ(Call(Value::Object({{"op", "list"}, {"since_ms", NowUnixMs() + 60000}})).At("reports").size(), 0u);
}

TEST_F(ErrorSinkServiceTest, ShowsADeadLetterWithItsJob) {
  const std::uint64_t deadline = NowUnixMs() + 60000;
  Store({DeadLetter(deadline)});
  const std::int64_t id = Call(Value::Object({{"op", "list"}})).At("reports").AsArray()[0].At("id").AsInt();
  Value shown = Call(Value::Object({{"op", "show"}, {"id", id}}));
  EXPECT_TRUE(shown.At("dead_letter").AsBool());
  EXPECT_FALSE(shown.At("envelope").AsBinary().bytes.empty());
  EXPECT_EQ(shown.At("job").At("deadline_ms").AsUint(), deadline);
  EXPECT_EQ(shown.At("job").At("service").AsString(), "flaky");
  ExpectInvalid(Value::Object({{"op", "show"}, {"id", 12345}}));
}

TEST_F(ErrorSinkServiceTest, ReplayNeedsADeadLetterAndAnOpenDeadline) {
  Store({Report("a", ErrorCode::kHandlerError, "boom"), DeadLetter(NowUnixMs() - 1)});
  const Value rows = Call(Value::Object({{"op", "list"}})).At("reports");
  const std::int64_t expired = rows.AsArray()[0].At("id").AsInt();
  const std::int64_t plain = rows.AsArray()[1].At("id").AsInt();
  ExpectInvalid(Value::Object({{"op", "replay"}, {"id", plain}}));
  const Value result = Call(Value::Object({{"op", "replay"}, {"id", expired}}));
  EXPECT_EQ(result.At("outcome").AsString(), "expired");
  const Value shown = Call(Value::Object({{"op", "show"}, {"id", expired}}));
  EXPECT_EQ(shown.At("replays").AsUint(), 1u);
}

TEST_F(ErrorSinkServiceTest, ReplayWithNoBrokerSaysSo) {
  Store({DeadLetter(NowUnixMs() + 60000)});
  const std::int64_t id = Call(Value::Object({{"op", "list"}})).At("reports").AsArray()[0].At("id").AsInt();
  const Value result = Call(Value::Object({{"op", "replay"}, {"id", id}, {"wait_ms", 100}}));
  EXPECT_EQ(result.At("outcome").AsString(), "no_answer");
}

TEST_F(ErrorSinkServiceTest, GroupsAndStats) {
  Store({Report("a", ErrorCode::kHandlerError, "timeout after 30s"), Report("a", ErrorCode::kHandlerError, "timeout after 31s")});
  const Value groups = Call(Value::Object({{"op", "groups"}})).At("groups");
  ASSERT_EQ(groups.size(), 1u);
  EXPECT_EQ(groups.AsArray()[0].At("count").AsUint(), 2u);
  EXPECT_EQ(groups.AsArray()[0].At("message").AsString(), "timeout after #s");
  EXPECT_EQ(Call(Value::Object({{"op", "stats"}})).At("received").AsUint(), 2u);
}

TEST_F(ErrorSinkServiceTest, BadRequestsAreInvalidPayload) {
  ExpectInvalid(Value("list"));
  ExpectInvalid(Value::Object({{"op", "drop_tables"}}));
  ExpectInvalid(Value::Object({{"op", "list"}, {"limit", 0}}));
  ExpectInvalid(Value::Object({{"op", "list"}, {"code", "no_such_code"}}));
  ExpectInvalid(Value::Object({{"op", "show"}}));
  ExpectInvalid(Value::Object({{"reports", 5}}));
}

TEST_F(ErrorSinkServiceTest, UnknownSettingsAreRejected) {
  EXPECT_THROW(ErrorSinkService(ConfigSection::Parse("db = \"" + (dir_ / "x.db").string() + "\"\ndbb = 1\n", "t")), Error);
}


// Without CURVE anyone who reaches the broker can submit to courier.errors: reports and dead
// letters come unsealed, but what reads the store or re-runs a job needs a sealed query.
TEST_F(ErrorSinkServiceTest, UnsealedQueriesAreRefusedUnsealedReportsAreStored) {
  Envelope unsealed;
  unsealed.job_id = JobId::Random();
  unsealed.service = "courier.errors";
  unsealed.deadline_ms = NowUnixMs() + 10000;
  unsealed.key_id = kUnsealedKeyId;
  const JobContext cleartext(unsealed);
  EXPECT_FALSE(cleartext.sealed());
  detail::ErrorBatch batch;
  batch.reports = {Report("echo", ErrorCode::kHandlerError, "boom")};
  EXPECT_EQ(service_->Handle(DecodeValue(detail::EncodeErrorBatch(batch)), cleartext).At("stored").AsUint(), 1u);
  for (const char* op : {"list", "show", "groups", "replay", "replayed"}) {
    try {
      service_->Handle(Value::Object({{"op", op}, {"id", 1}, {"outcome", "replied"}}), cleartext);
      ADD_FAILURE() << op << " answered unsealed";
    } catch (const Error& error) {
      EXPECT_EQ(error.code(), ErrorCode::kUnauthenticated) << op;
      EXPECT_NE(std::string(error.what()).find("sealed"), std::string::npos) << error.what();
    }
  }
  EXPECT_NO_THROW(service_->Handle(Value::Object({{"op", "stats"}}), cleartext));
  unsealed.key_id = 7;  // the same query, sealed with a key the host holds
  EXPECT_EQ(service_->Handle(Value::Object({{"op", "list"}}), JobContext(unsealed)).At("reports").AsArray().size(), 1u);
}

}  // namespace
}  // namespace courier::sink
