// The pure parts of the CLI: durations, percentiles, summaries, tables, exit codes.
#include "cli_support.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <random>

namespace courier::cli {
namespace {

using namespace std::chrono_literals;

TEST(CliSupportTest, ParsesDurations) {
  EXPECT_EQ(ParseDuration("250ms"), 250ms);
  EXPECT_EQ(ParseDuration("250"), 250ms);
  EXPECT_EQ(ParseDuration("3s"), 3000ms);
  EXPECT_EQ(ParseDuration("1.5s"), 1500ms);
  EXPECT_EQ(ParseDuration("2m"), 120000ms);
  EXPECT_EQ(ParseDuration("1h"), 3600000ms);
  EXPECT_THROW(ParseDuration(""), std::invalid_argument);
  EXPECT_THROW(ParseDuration("s"), std::invalid_argument);
  EXPECT_THROW(ParseDuration("5 s"), std::invalid_argument);
  EXPECT_THROW(ParseDuration("5d"), std::invalid_argument);
  EXPECT_THROW(ParseDuration("0"), std::invalid_argument);
  EXPECT_THROW(ParseDuration("25h"), std::invalid_argument);
  EXPECT_EQ(ParseDuration("7d", std::chrono::hours(24 * 30)), std::chrono::hours(24 * 7));
  EXPECT_THROW(ParseDuration("31d", std::chrono::hours(24 * 30)), std::invalid_argument);
}

TEST(CliSupportTest, MapsErrorsToExitCodes) {
  EXPECT_EQ(ExitCodeFor(ErrorCode::kUnavailable), kExitUnavailable);
  EXPECT_EQ(ExitCodeFor(ErrorCode::kConfig), kExitUsage);
  EXPECT_EQ(ExitCodeFor(ErrorCode::kHandlerError), kExitJobErrors);
  EXPECT_EQ(ExitCodeFor(ErrorCode::kDeadlineExceeded), kExitJobErrors);
}

TEST(LatencyHistogramTest, IsExactForSmallValues) {
  LatencyHistogram histogram;
  for (int i = 1; i <= 100; ++i) histogram.Add(std::chrono::microseconds(i));
  EXPECT_EQ(histogram.count(), 100u);
  EXPECT_EQ(histogram.Percentile(0.50), 50us);
  EXPECT_EQ(histogram.Percentile(0.90), 90us);
  EXPECT_EQ(histogram.Percentile(0.99), 99us);
  EXPECT_EQ(histogram.Percentile(1.0), 100us);
  EXPECT_EQ(histogram.Percentile(0.0), 1us);
  EXPECT_EQ(histogram.max(), 100us);
  EXPECT_EQ(histogram.min(), 1us);
  EXPECT_EQ(LatencyHistogram().Percentile(0.5), 0us);
}

TEST(LatencyHistogramTest, IsWithinOnePercentForLargeValues) {
  LatencyHistogram histogram;
  std::vector<std::int64_t> values;
  std::mt19937_64 random(7);
  std::lognormal_distribution<double> distribution(8.0, 1.5);  // ~3 ms median, long tail
  for (int i = 0; i < 20000; ++i) {
    const auto value = static_cast<std::int64_t>(distribution(random)) + 1;
    values.push_back(value);
    histogram.Add(std::chrono::microseconds(value));
  }
  std::sort(values.begin(), values.end());
  for (const double q : {0.5, 0.9, 0.99, 0.999}) {
    const auto exact = static_cast<double>(values[static_cast<std::size_t>(std::ceil(q * values.size())) - 1]);
    const auto estimate = static_cast<double>(histogram.Percentile(q).count());
    EXPECT_NEAR(estimate, exact, exact * 0.01 + 1) << "q=" << q;
  }
  EXPECT_EQ(histogram.max().count(), values.back());
  // Huge values do not overflow the bucket array.
  histogram.Add(std::chrono::hours(24 * 365));
  EXPECT_EQ(histogram.max(), std::chrono::hours(24 * 365));
}

TEST(SummaryTest, JsonHasTheDocumentedShape) {
  Summary summary;
  summary.sent = 4;
  summary.AddOk(1000us);
  summary.AddOk(2000us);
  summary.AddError(ErrorCode::kBusy, 3000us);
  summary.AddError(ErrorCode::kHandlerError, 4000us);
  summary.elapsed = 2s;
  const auto json = nlohmann::json::parse(summary.ToJson());
  EXPECT_EQ(json["sent"], 4);
  EXPECT_EQ(json["ok"], 2);
  EXPECT_EQ(json["errors"]["busy"], 1);
  EXPECT_EQ(json["errors"]["handler_error"], 1);
  EXPECT_DOUBLE_EQ(json["jobs_per_s"].get<double>(), 2.0);
  EXPECT_NEAR(json["latency_ms"]["p50"].get<double>(), 2.0, 0.02);  // within the 1 % buckets
  EXPECT_DOUBLE_EQ(json["latency_ms"]["max"].get<double>(), 4.0);
  EXPECT_TRUE(json["latency_ms"].contains("p90"));
  EXPECT_TRUE(json["latency_ms"].contains("p99"));
  EXPECT_EQ(summary.ExitCode(), kExitJobErrors);

  Summary clean;
  clean.sent = 1;
  clean.AddOk(5us);
  EXPECT_EQ(nlohmann::json::parse(clean.ToJson())["errors"], nlohmann::json::object());
  EXPECT_EQ(clean.ExitCode(), kExitOk);

  Summary down;
  down.AddError(ErrorCode::kUnavailable, 1us);
  down.AddError(ErrorCode::kBusy, 1us);
  EXPECT_EQ(down.ExitCode(), kExitUnavailable);
}

TEST(SummaryTest, TextNamesErrorsByCode) {
  Summary summary;
  summary.sent = 3;
  summary.AddOk(100us);
  summary.AddError(ErrorCode::kDeadlineExceeded, 100us);
  summary.AddError(ErrorCode::kDeadlineExceeded, 100us);
  summary.elapsed = 1s;
  const std::string text = summary.ToText();
  EXPECT_NE(text.find("sent 3  ok 1  errors 2 (deadline_exceeded 2)"), std::string::npos) << text;
  EXPECT_NE(text.find("3.0 jobs/s"), std::string::npos) << text;
  EXPECT_NE(text.find("p50 0.100"), std::string::npos) << text;
}

TEST(RenderTableTest, AlignsColumnsAndRightAlignsNumbers) {
  const std::string table = RenderTable({"NAME", "WORKERS"}, {{"echo", "2"}, {"resize-images", "10"}});
  EXPECT_EQ(table,
            "NAME           WORKERS\n"
            "echo                 2\n"
            "resize-images       10\n");
  EXPECT_EQ(RenderTable({"A", "B"}, {}), "A  B\n");
}

TEST(DisplayWidthTest, CountsColumnsNotBytes) {
  EXPECT_EQ(DisplayWidth(""), 0u);
  EXPECT_EQ(DisplayWidth("echo"), 4u);
  EXPECT_EQ(DisplayWidth("12.3\xC2\xB5s"), 6u);           // "12.3µs": µ is two bytes, one column
  EXPECT_EQ(DisplayWidth("caf\xC3\xA9"), 4u);             // "café" precomposed
  EXPECT_EQ(DisplayWidth("cafe\xCC\x81"), 4u);            // "café" with a combining acute
  EXPECT_EQ(DisplayWidth("\xE7\xBF\xBB\xE8\xAF\x91"), 4u);  // "翻译": two wide characters
  EXPECT_EQ(DisplayWidth("\xEF\xBC\xA1"), 2u);            // "Ａ" fullwidth
  EXPECT_EQ(DisplayWidth("\xF0\x9F\x9A\x80"), 2u);        // "🚀"
  EXPECT_EQ(DisplayWidth("\xE2\x80\xA6"), 1u);            // "…"
  EXPECT_EQ(DisplayWidth("a\xE2\x80\x8B" "b"), 2u);          // zero-width space
  EXPECT_EQ(DisplayWidth("\xFF\xC3"), 2u);                 // invalid and truncated bytes: one each
}

TEST(RenderTableTest, PadsByDisplayWidth) {
  // Every line must put the second column at the same terminal column.
  const std::string table = RenderTable({"SERVICE", "P50", "N"}, {{"echo", "12.3\xC2\xB5s", "1"},
                                                                   {"\xE7\xBF\xBB\xE8\xAF\x91", "850ns", "22"},
                                                                   {"caf\xC3\xA9", "4.56ms", "3"}});
  EXPECT_EQ(table,
            "SERVICE  P50      N\n"
            "echo     12.3\xC2\xB5s   1\n"
            "\xE7\xBF\xBB\xE8\xAF\x91     850ns   22\n"
            "caf\xC3\xA9     4.56ms   3\n");
  std::size_t start = 0;
  std::vector<std::size_t> widths;
  while (start < table.size()) {
    const std::size_t end = table.find('\n', start);
    widths.push_back(DisplayWidth(std::string_view(table).substr(start, end - start)));
    start = end + 1;
  }
  for (const std::size_t width : widths) EXPECT_EQ(width, widths[0]) << table;
}

TEST(OrderQuantilesTest, NeverAboveMaxAndNonDecreasing) {
  // Seen from a collector: p90 1ns, max 0ns (interpolated inside bucket 0, not clamped).
  std::vector<std::optional<double>> q{0.5, 0.83, 0.98};
  OrderQuantiles(q, 0.0);
  EXPECT_EQ(q, (std::vector<std::optional<double>>{0.0, 0.0, 0.0}));

  std::vector<std::optional<double>> crossed{300.0, 250.0, 900.0};
  OrderQuantiles(crossed, 800.0);
  EXPECT_EQ(crossed, (std::vector<std::optional<double>>{300.0, 300.0, 800.0}));

  std::vector<std::optional<double>> gaps{std::nullopt, 5.0, 4.0};
  OrderQuantiles(gaps, std::nullopt);
  EXPECT_EQ(gaps, (std::vector<std::optional<double>>{std::nullopt, 5.0, 5.0}));

  std::vector<std::optional<double>> fine{1.0, 2.0, 3.0};
  OrderQuantiles(fine, 3.0);
  EXPECT_EQ(fine, (std::vector<std::optional<double>>{1.0, 2.0, 3.0}));
}

TEST(SummaryTest, AnInterruptedRunSaysSoAndCountsTheUnanswered) {
  Summary summary;
  summary.sent = 10;
  for (int i = 0; i < 7; ++i) summary.AddOk(100us);
  summary.AddError(ErrorCode::kBusy, 100us);
  summary.elapsed = 1s;
  EXPECT_FALSE(nlohmann::json::parse(summary.ToJson()).contains("interrupted"));
  EXPECT_EQ(summary.ToText().find("interrupted"), std::string::npos);
  summary.interrupted = true;
  const auto json = nlohmann::json::parse(summary.ToJson());
  EXPECT_EQ(json["interrupted"], true);
  EXPECT_EQ(json["unanswered"], 2);
  EXPECT_EQ(json["sent"], 10);
  EXPECT_EQ(json["ok"], 7);
  EXPECT_NE(summary.ToText().find("interrupted (Ctrl-C): 2 jobs unanswered\n"), std::string::npos) << summary.ToText();
}

TEST(ProgressLineTest, FitsTheWidth) {
  const std::string line = ProgressLine(50, 100, 45, 5, 2.0, 80);
  EXPECT_LE(line.size(), 80u);
  EXPECT_NE(line.find("50/100"), std::string::npos) << line;
  EXPECT_NE(line.find("25 jobs/s"), std::string::npos) << line;
  EXPECT_EQ(line.find('['), 0u);
  EXPECT_LE(ProgressLine(1, 1, 1, 0, 0, 30).size(), 30u);
}

}  // namespace
TEST(NearestNameTest, SuggestsALikelyMisspellingOnly) {
  const std::vector<std::string> known{"echo", "textstats", "img.resize", "courier.errors"};
  EXPECT_EQ(NearestName("ecoh", known), "echo");
  EXPECT_EQ(NearestName("ech", known), "echo");
  EXPECT_EQ(NearestName("textstat", known), "textstats");
  EXPECT_EQ(NearestName("img.resise", known), "img.resize");
  EXPECT_EQ(NearestName("nosuch", known), "");
  EXPECT_EQ(NearestName("x", known), "");
  EXPECT_EQ(NearestName("echo", known), "") << "an exact name is not a misspelling";
  EXPECT_EQ(NearestName("ab", {"ac"}), "ac");
  EXPECT_EQ(NearestName("ab", {"cd"}), "") << "two edits in two letters is a different name";
}

}  // namespace courier::cli
