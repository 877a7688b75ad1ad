#include "report_codec.hpp"

#include <gtest/gtest.h>

namespace courier::detail {
namespace {

ErrorReport SampleReport() {
  ErrorReport report;
  report.time_ms = 1700000000123;
  report.service = "resize";
  report.job_id = JobId::Random();
  report.attempt = 2;
  report.max_attempts = 3;
  report.trace_id[0] = 7;
  report.reporter = "worker";
  report.host = "host-a";
  report.pid = 4242;
  report.instance = "host-a/1";
  report.stage = "handle";
  report.code = ErrorCode::kHandlerError;
  report.message = "image too wide";
  report.broker = "tcp://127.0.0.1:5555";
  return report;
}

TEST(ReportCodecTest, ErrorBatchRoundTrips) {
  ErrorBatch batch;
  batch.reports.push_back(SampleReport());
  ErrorReport dead = SampleReport();
  dead.envelope = std::string("\x9c\x01", 2);
  dead.payload = "sealed bytes";
  batch.reports.push_back(dead);
  batch.dropped = 17;
  batch.reporter = "worker";
  batch.pid = 1;
  const ErrorBatch decoded = DecodeErrorBatch(DecodeValue(EncodeErrorBatch(batch)));
  ASSERT_EQ(decoded.reports.size(), 2u);
  EXPECT_EQ(decoded.dropped, 17u);
  EXPECT_EQ(decoded.reporter, "worker");
  const ErrorReport& first = decoded.reports[0];
  EXPECT_EQ(first.time_ms, 1700000000123u);
  EXPECT_EQ(first.service, "resize");
  EXPECT_EQ(first.job_id, batch.reports[0].job_id);
  EXPECT_EQ(first.attempt, 2u);
  EXPECT_EQ(first.max_attempts, 3u);
  EXPECT_EQ(first.trace_id[0], 7);
  EXPECT_EQ(first.host, "host-a");
  EXPECT_EQ(first.pid, 4242u);
  EXPECT_EQ(first.stage, "handle");
  EXPECT_EQ(first.code, ErrorCode::kHandlerError);
  EXPECT_EQ(first.message, "image too wide");
  EXPECT_EQ(first.broker, "tcp://127.0.0.1:5555");
  EXPECT_TRUE(first.envelope.empty());
  EXPECT_EQ(decoded.reports[1].envelope, dead.envelope);
  EXPECT_EQ(decoded.reports[1].payload, "sealed bytes");
}

TEST(ReportCodecTest, UnknownCodesBecomeInternalAndUnknownKeysAreIgnored) {
  Value report = ErrorReportToValue(SampleReport());
  report.Set("code", Value(999u));
  report.Set("future_field", Value("x"));
  Value batch = Value::Object({{"reports", Value(Value::Array{report})}, {"dropped", Value(0u)}});
  EXPECT_EQ(DecodeErrorBatch(batch).reports.at(0).code, ErrorCode::kInternal);
}

TEST(ReportCodecTest, MalformedBatchesAreInvalidPayload) {
  auto expect_invalid = [](const Value& payload) {
    try {
      DecodeErrorBatch(payload);
      ADD_FAILURE() << ToJson(payload);
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kInvalidPayload) << e.what();
    }
  };
  expect_invalid(Value("nope"));
  expect_invalid(Value::Object({{"dropped", Value(1u)}}));
  expect_invalid(Value::Object({{"reports", Value(Value::Array{Value(1)})}}));
  Value bad_id = ErrorReportToValue(SampleReport());
  bad_id.Set("job_id", Value(Binary{"short"}));
  expect_invalid(Value::Object({{"reports", Value(Value::Array{bad_id})}}));
  Value bad_type = ErrorReportToValue(SampleReport());
  bad_type.Set("service", Value(5));
  expect_invalid(Value::Object({{"reports", Value(Value::Array{bad_type})}}));
}

TEST(ReportCodecTest, LongMessagesAreCutNotRefused) {
  Value report = ErrorReportToValue(SampleReport());
  report.Set("message", Value(std::string(kMaxMessageBytes + 10, 'x')));
  const ErrorBatch batch = DecodeErrorBatch(Value::Object({{"reports", Value(Value::Array{report})}}));
  EXPECT_EQ(batch.reports.at(0).message.size(), kMaxMessageBytes);
}

TEST(ReportCodecTest, MetricsReportRoundTrips) {
  MetricsReport report;
  report.process = "worker";
  report.host = "h";
  report.pid = 9;
  report.instance = "h:9";
  report.interval_ms = 1000;
  report.stages.push_back({"echo", "handle", 3, 1, 300, 90, 110, {{30, 1}, {31, 2}}});
  const MetricsReport decoded = DecodeMetricsReport(DecodeValue(EncodeMetricsReport(report)));
  EXPECT_EQ(decoded.process, "worker");
  EXPECT_EQ(decoded.interval_ms, 1000u);
  ASSERT_EQ(decoded.stages.size(), 1u);
  const StageInterval& stage = decoded.stages[0];
  EXPECT_EQ(stage.service, "echo");
  EXPECT_EQ(stage.stage, "handle");
  EXPECT_EQ(stage.count, 3u);
  EXPECT_EQ(stage.errors, 1u);
  EXPECT_EQ(stage.sum_ns, 300u);
  EXPECT_EQ(stage.min_ns, 90u);
  EXPECT_EQ(stage.max_ns, 110u);
  EXPECT_EQ(stage.buckets, (SparseBuckets{{30, 1}, {31, 2}}));
}

TEST(ReportCodecTest, MetricsBucketsMustAscendWithinRange) {
  auto with_buckets = [](Value buckets) {
    Value stage = Value::Object({{"service", "s"}, {"stage", "handle"}, {"count", 1u}, {"buckets", buckets}});
    return Value::Object({{"process", "worker"}, {"stages", Value(Value::Array{stage})}});
  };
  auto pair = [](unsigned index, unsigned count) { return Value(Value::Array{Value(index), Value(count)}); };
  EXPECT_NO_THROW(DecodeMetricsReport(with_buckets(Value(Value::Array{pair(1, 1), pair(2, 1)}))));
  EXPECT_THROW(DecodeMetricsReport(with_buckets(Value(Value::Array{pair(2, 1), pair(1, 1)}))), Error);
  EXPECT_THROW(DecodeMetricsReport(with_buckets(Value(Value::Array{pair(252, 1)}))), Error);
  EXPECT_THROW(DecodeMetricsReport(with_buckets(Value("x"))), Error);
}

}  // namespace
}  // namespace courier::detail
