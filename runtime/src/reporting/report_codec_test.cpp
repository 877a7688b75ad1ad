#include "report_codec.hpp"

#include <gtest/gtest.h>

#include <thread>

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


// ---- Plausibility (issue 15) ---------------------------------------------------------

constexpr std::uint64_t kNow = 1'700'000'000'000;

StageInterval Stage(std::uint64_t count, std::uint64_t each_ns) {
  StageInterval stage;
  stage.service = "resize";
  stage.stage = "handle";
  stage.count = count;
  stage.sum_ns = count * each_ns;
  stage.min_ns = count == 0 ? 0 : each_ns;
  stage.max_ns = count == 0 ? 0 : each_ns;
  if (count > 0) stage.buckets = {{static_cast<std::uint32_t>(LatencyBucket(each_ns)), count}};
  return stage;
}

MetricsReport Metrics(std::vector<StageInterval> stages) {
  MetricsReport report;
  report.process = "worker";
  report.host = "host-a";
  report.pid = 42;
  report.instance = "host-a:42";
  report.interval_ms = 1000;
  report.stages = std::move(stages);
  return report;
}

TEST(ReportCheckTest, Utf8AndNames) {
  EXPECT_TRUE(IsValidUtf8("plain, \xc3\xa9t\xc3\xa9, \xf0\x9f\x98\x80"));
  EXPECT_FALSE(IsValidUtf8("\xff"));
  EXPECT_FALSE(IsValidUtf8("\xc3"));              // cut short
  EXPECT_FALSE(IsValidUtf8("\xc0\xaf"));          // overlong
  EXPECT_FALSE(IsValidUtf8("\xed\xa0\x80"));      // surrogate
  EXPECT_FALSE(IsValidUtf8("\xf4\x90\x80\x80"));  // above U+10FFFF
  EXPECT_TRUE(IsReportName("round_trip"));
  EXPECT_TRUE(IsReportName("worker-2.a"));
  EXPECT_FALSE(IsReportName(""));
  EXPECT_FALSE(IsReportName(std::string(65, 'a')));
  EXPECT_FALSE(IsReportName("han dle"));
  EXPECT_FALSE(IsReportName("h\xc3\xa9"));
  std::string text = "ok \xff\x01 line\nnext\ttab \xc2\x85";
  EXPECT_TRUE(RepairText(text, /*keep_newlines=*/true));
  EXPECT_EQ(text, "ok \xEF\xBF\xBD\xEF\xBF\xBD line\nnext\ttab \xEF\xBF\xBD");
  std::string line = "a\nb";
  EXPECT_TRUE(RepairText(line));
  EXPECT_EQ(line, "a\xEF\xBF\xBD" "b");
  std::string fine = "caf\xc3\xa9";
  EXPECT_FALSE(RepairText(fine));
  EXPECT_EQ(fine, "caf\xc3\xa9");
}

TEST(ReportCheckTest, AnImplausibleDropCountRefusesTheBatch) {
  ErrorBatch batch;
  batch.dropped = INT64_MAX;
  EXPECT_THROW(CheckErrorBatch(batch, kNow), Error);
  batch.dropped = ReportLimits{}.max_dropped_per_batch;
  EXPECT_NO_THROW(CheckErrorBatch(batch, kNow));
}

TEST(ReportCheckTest, ErrorReportsAreRefusedForBadNamesAndRepairedOtherwise) {
  auto check = [](auto change) {
    ErrorBatch batch;
    batch.reports.push_back(SampleReport());
    batch.reports.back().time_ms = kNow - 1000;
    change(batch.reports.back());
    return CheckErrorBatch(batch, kNow);
  };
  EXPECT_THROW(check([](ErrorReport& r) { r.stage = "han\ndle"; }), Error);
  EXPECT_THROW(check([](ErrorReport& r) { r.reporter = "root\x1b[31m"; }), Error);
  EXPECT_THROW(check([](ErrorReport& r) { r.pid = std::uint64_t{1} << 40; }), Error);
  EXPECT_EQ(check([](ErrorReport&) {}).clamped, 0u);

  ErrorBatch batch;
  batch.reports = {SampleReport(), SampleReport(), SampleReport()};
  batch.reports[0].time_ms = kNow + ReportLimits{}.max_skew_ms + 1;  // from the future
  batch.reports[1].time_ms = 1;                                         // from 1970
  batch.reports[2].message = "bad \xff utf-8";
  batch.reports[2].time_ms = kNow - 5;
  batch.reports[2].service = "re\x01size";
  const ReportVerdict verdict = CheckErrorBatch(batch, kNow);
  EXPECT_EQ(verdict.clamped, 3u);
  EXPECT_FALSE(verdict.problem.empty());
  EXPECT_EQ(batch.reports[0].time_ms, kNow);
  EXPECT_EQ(batch.reports[1].time_ms, kNow);
  EXPECT_EQ(batch.reports[2].time_ms, kNow - 5);
  EXPECT_EQ(batch.reports[2].message, "bad \xEF\xBF\xBD utf-8");
  EXPECT_EQ(batch.reports[2].service, "re\xEF\xBF\xBDsize");
}

TEST(ReportCheckTest, AMetricsReportWithABadIdentityIsRefused) {
  for (auto change : std::vector<void (*)(MetricsReport&)>{
           [](MetricsReport& r) { r.process = ""; },
           [](MetricsReport& r) { r.process = "wor\x01ker"; },
           [](MetricsReport& r) { r.host = "\xff"; },
           [](MetricsReport& r) { r.instance = "a\nb"; },
           [](MetricsReport& r) { r.pid = UINT64_MAX; },
       }) {
    MetricsReport report = Metrics({Stage(1, 1000)});
    change(report);
    EXPECT_THROW(CheckMetricsReport(report), Error);
  }
}

TEST(ReportCheckTest, ImplausibleStagesAreDroppedAndTheRestKept) {
  std::vector<StageInterval> stages;
  stages.push_back(Stage(100, 10'000'000));                        // normal: kept
  stages.push_back(Stage(1, 17'800'000ull * 1'000'000'000ull));     // 17.8 million seconds
  stages.push_back(Stage(1, 1000));
  stages.back().max_ns = UINT64_MAX;                                // above the sample limit
  stages.push_back(Stage(5, 1000));
  stages.back().count = std::uint64_t{1} << 62;                     // no process runs that fast
  stages.push_back(Stage(5, 1000));
  stages.back().errors = 2'000'000;
  stages.push_back(Stage(5, 1000));
  stages.back().sum_ns = 5001 * 1000;                               // above count x max
  stages.push_back(Stage(5, 1000));
  stages.back().sum_ns = 4000;                                      // below count x min
  stages.push_back(Stage(5, 1000));
  stages.back().buckets = {{static_cast<std::uint32_t>(LatencyBucket(1000)), 4}};  // not count
  stages.push_back(Stage(1, 1000));
  stages.back().buckets = {{251, 1}};                               // outside min..max
  stages.push_back(Stage(0, 0));
  stages.back().errors = 3;
  stages.back().max_ns = 5;                                         // a duration without a count
  stages.push_back(Stage(2, 1000));
  stages.back().min_ns = 2000;                                      // min > max
  stages.push_back(Stage(1, 1000));
  stages.back().stage = "\xc3\x28";
  stages.push_back(Stage(1, 1000));
  stages.back().service = "a\nb";
  stages.push_back(Stage(0, 0));
  stages.back().errors = 7;                                         // all failed: kept
  stages.push_back(Stage(3, 1000));
  stages.back().buckets.clear();                                    // no histogram: kept
  MetricsReport report = Metrics(std::move(stages));
  const ReportVerdict verdict = CheckMetricsReport(report);
  EXPECT_EQ(verdict.dropped, 12u) << verdict.problem;
  EXPECT_NE(verdict.problem.find("stages[1].max_ns"), std::string::npos) << verdict.problem;
  ASSERT_EQ(report.stages.size(), 3u);
  EXPECT_EQ(report.stages[0].count, 100u);
  EXPECT_EQ(report.stages[1].errors, 7u);
  EXPECT_EQ(report.stages[2].count, 3u);
}

TEST(ReportCheckTest, ALongIntervalAllowsProportionallyMoreButNotUnbounded) {
  MetricsReport report = Metrics({Stage(1'000'000, 1000)});
  EXPECT_EQ(CheckMetricsReport(report).dropped, 0u);  // 1 s at the highest plausible rate
  report = Metrics({Stage(1'000'001, 1000)});
  EXPECT_EQ(CheckMetricsReport(report).dropped, 1u);
  report = Metrics({Stage(1'000'001, 1000)});
  report.interval_ms = 0;  // counted as 1 s
  EXPECT_EQ(CheckMetricsReport(report).dropped, 1u);
  report = Metrics({Stage(60'000'000, 1000)});
  report.interval_ms = 60'000;  // a reporter that could not deliver for a minute
  EXPECT_EQ(CheckMetricsReport(report).dropped, 0u);
  report = Metrics({Stage(std::uint64_t{1} << 60, 1)});
  report.interval_ms = UINT64_MAX;  // counted as 7 days at most
  EXPECT_EQ(CheckMetricsReport(report).dropped, 1u);
}

TEST(ReportCheckTest, TheLogGateLetsOneLineAPeriodThrough) {
  ReportLogGate gate(std::chrono::milliseconds(50));
  EXPECT_EQ(gate.Allow(), std::optional<std::uint64_t>(0));
  EXPECT_EQ(gate.Allow(), std::nullopt);
  EXPECT_EQ(gate.Allow(), std::nullopt);
  std::this_thread::sleep_for(std::chrono::milliseconds(60));
  EXPECT_EQ(gate.Allow(), std::optional<std::uint64_t>(2));
}

}  // namespace
}  // namespace courier::detail
