#include "prometheus/text_format.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <stdexcept>
#include <vector>

#include "prometheus/exposition_check.hpp"

namespace courier::prometheus {
namespace {

TEST(TextFormat, EscapesLabelValuesAndHelp) {
  EXPECT_EQ(EscapeLabelValue("plain"), "plain");
  EXPECT_EQ(EscapeLabelValue("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
  EXPECT_EQ(EscapeHelp("a\"b\\c\nd"), "a\"b\\\\c\\nd");  // quotes stay in HELP
}

TEST(TextFormat, FormatsNumbersSoTheyReadBack) {
  EXPECT_EQ(FormatNumber(0.1), "0.1");
  EXPECT_EQ(FormatNumber(2.5e-05), "2.5e-05");
  EXPECT_EQ(FormatNumber(10), "10");
  EXPECT_EQ(FormatNumber(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(FormatNumber(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(FormatNumber(std::numeric_limits<double>::quiet_NaN()), "NaN");
  const double third = 1.0 / 3.0;
  EXPECT_EQ(std::strtod(FormatNumber(third).c_str(), nullptr), third);
}

TEST(TextFormat, LabelsKeepTheirOrderAndEscape) {
  EXPECT_EQ(Labels().text(), "");
  EXPECT_EQ(Labels().Add("service", "echo").Add("stage", "a\"b").text(), "{service=\"echo\",stage=\"a\\\"b\"}");
  const Labels base = Labels().Add("service", "echo");
  EXPECT_EQ(base.With("le", "+Inf").text(), "{service=\"echo\",le=\"+Inf\"}");
  EXPECT_EQ(base.text(), "{service=\"echo\"}");  // With copies
}

TEST(TextFormat, WritesHelpAndTypeOncePerFamily) {
  TextWriter w;
  w.Family("courier_x_total", MetricType::kCounter, "Things.\nMore \\ help.");
  w.Sample("courier_x_total", Labels().Add("service", "a"), std::uint64_t{1});
  w.Sample("courier_x_total", Labels().Add("service", "b\nc"), std::uint64_t{2});
  w.Family("courier_y", MetricType::kGauge, "A gauge.");
  w.Sample("courier_y", Labels(), 0.5);
  EXPECT_THROW(w.Family("courier_x_total", MetricType::kCounter, "again"), std::logic_error);
  const std::string page = w.Take();
  EXPECT_EQ(page,
            "# HELP courier_x_total Things.\\nMore \\\\ help.\n"
            "# TYPE courier_x_total counter\n"
            "courier_x_total{service=\"a\"} 1\n"
            "courier_x_total{service=\"b\\nc\"} 2\n"
            "# HELP courier_y A gauge.\n"
            "# TYPE courier_y gauge\n"
            "courier_y 0.5\n");
  const ParsedPage parsed = ParseExposition(page);
  EXPECT_TRUE(parsed.problems.empty()) << parsed.problems.front();
  EXPECT_EQ(parsed.Value("courier_x_total", {{"service", "b\nc"}}), 2.0);
  // A new page may start the same families again.
  w.Family("courier_x_total", MetricType::kCounter, "Things.");
}

TEST(TextFormat, HistogramBucketsAreCumulativeAndInfEqualsCount) {
  TextWriter w;
  w.Family("courier_d_seconds", MetricType::kHistogram, "Durations.");
  const std::vector<double> bounds = {0.001, 0.01, 0.1};
  const std::vector<std::uint64_t> counts = {3, 0, 5, 2};
  w.Histogram("courier_d_seconds", Labels().Add("stage", "handle"), bounds, counts, 1.25);
  const std::vector<std::uint64_t> short_counts = {1, 2};
  EXPECT_THROW(w.Histogram("courier_d_seconds", Labels(), bounds, short_counts, 0), std::logic_error);
  const std::string page = w.Take();
  EXPECT_NE(page.find("courier_d_seconds_bucket{stage=\"handle\",le=\"0.001\"} 3\n"), std::string::npos) << page;
  EXPECT_NE(page.find("courier_d_seconds_bucket{stage=\"handle\",le=\"0.01\"} 3\n"), std::string::npos) << page;
  EXPECT_NE(page.find("courier_d_seconds_bucket{stage=\"handle\",le=\"0.1\"} 8\n"), std::string::npos) << page;
  EXPECT_NE(page.find("courier_d_seconds_bucket{stage=\"handle\",le=\"+Inf\"} 10\n"), std::string::npos) << page;
  EXPECT_NE(page.find("courier_d_seconds_sum{stage=\"handle\"} 1.25\n"), std::string::npos) << page;
  EXPECT_NE(page.find("courier_d_seconds_count{stage=\"handle\"} 10\n"), std::string::npos) << page;
  const ParsedPage parsed = ParseExposition(page);
  EXPECT_TRUE(parsed.problems.empty()) << parsed.problems.front();
}

// The checker itself must catch each rule broken, or the pages' tests prove nothing.
TEST(ExpositionCheck, CatchesBrokenPages) {
  auto problems = [](const std::string& page) { return ParseExposition(page).problems.size(); };
  EXPECT_EQ(problems("# HELP a_total x\n# TYPE a_total counter\na_total 1\n"), 0u);
  EXPECT_GT(problems("# HELP a_total x\n# HELP a_total y\n# TYPE a_total counter\na_total 1\n"), 0u);
  EXPECT_GT(problems("# TYPE a_total counter\n# TYPE a_total counter\na_total 1\n"), 0u);
  EXPECT_GT(problems("a_total 1\n"), 0u);                                   // no TYPE
  EXPECT_GT(problems("# TYPE a counter\na 1\n"), 0u);                       // counter without _total
  EXPECT_GT(problems("# TYPE a gauge\na{x=\"y} 1\n"), 0u);                  // unterminated value
  EXPECT_GT(problems("# TYPE a gauge\na{x=\"\\t\"} 1\n"), 0u);              // bad escape
  EXPECT_GT(problems("# TYPE a gauge\na one\n"), 0u);                       // bad value
  EXPECT_GT(problems("# TYPE a gauge\n# TYPE b gauge\na 1\nb 1\na 2\n"), 0u);  // resumed
  EXPECT_GT(problems("# TYPE a gauge\na 1"), 0u);                           // no final newline
  const std::string histogram = "# TYPE h histogram\n";
  EXPECT_EQ(problems(histogram + "h_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 3\nh_count 2\n"), 0u);
  EXPECT_GT(problems(histogram + "h_bucket{le=\"1\"} 3\nh_bucket{le=\"+Inf\"} 2\nh_sum 3\nh_count 2\n"), 0u);
  EXPECT_GT(problems(histogram + "h_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 3\nh_count 3\n"), 0u);
  EXPECT_GT(problems(histogram + "h_bucket{le=\"1\"} 1\nh_sum 3\nh_count 1\n"), 0u);  // no +Inf
  EXPECT_GT(problems(histogram + "h 1\n"), 0u);
}

}  // namespace
}  // namespace courier::prometheus

#include "courier/error.hpp"
#include "prometheus/http_address.hpp"

namespace courier::prometheus {
namespace {

TEST(HttpAddress, ParsesHostAndPort) {
  const HttpAddress v4 = ParseHttpAddress("127.0.0.1:9465");
  EXPECT_EQ(v4.host, "127.0.0.1");
  EXPECT_EQ(v4.port, 9465);
  const HttpAddress v6 = ParseHttpAddress("[::1]:0");
  EXPECT_EQ(v6.host, "::1");
  EXPECT_EQ(v6.port, 0);
  EXPECT_EQ(FormatHttpAddress("::1", 80), "[::1]:80");
  for (const char* bad : {"", "9465", ":9465", "host:", "host:x", "host:70000", "host:-1", "host:12a"}) {
    EXPECT_THROW(ParseHttpAddress(bad), Error) << bad;
  }
}

}  // namespace
}  // namespace courier::prometheus
