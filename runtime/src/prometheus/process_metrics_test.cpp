#include "prometheus/process_metrics.hpp"

#include <gtest/gtest.h>

#include <ctime>

#include "courier/version.hpp"
#include "prometheus/exposition_check.hpp"

namespace courier::prometheus {
namespace {

TEST(ProcessMetrics, ParsesAStatLineWhoseCommandHoldsSpacesAndParentheses) {
  // Fields 3.. after "(comm)": state ppid pgrp session tty tpgid flags minflt cminflt majflt
  // cmajflt utime(14) stime(15) cutime cstime priority nice threads itreal starttime(22)
  // vsize(23) rss(24) ...
  const std::string stat =
      "4242 (a (weird) name) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 3 0 1000 123456789 300 "
      "18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n";
  const auto stats = ParseProcStat(stat, 100, 4096, 1'700'000'000);
  ASSERT_TRUE(stats.has_value());
  EXPECT_DOUBLE_EQ(stats->cpu_seconds, 3.0);  // (250 + 50) ticks at 100 Hz
  EXPECT_EQ(stats->resident_bytes, 300u * 4096u);
  EXPECT_EQ(stats->virtual_bytes, 123456789u);
  EXPECT_DOUBLE_EQ(stats->start_time_seconds, 1'700'000'010.0);  // boot + 1000 ticks
  EXPECT_FALSE(ParseProcStat("garbage", 100, 4096, 0).has_value());
  EXPECT_FALSE(ParseProcStat("1 (x) S 1 2", 100, 4096, 0).has_value());
}

TEST(ProcessMetrics, ReadsThisProcess) {
  const auto stats = ReadProcessStats();
  ASSERT_TRUE(stats.has_value());
  EXPECT_GT(stats->resident_bytes, 0u);
  ASSERT_TRUE(stats->open_fds.has_value());
  EXPECT_GE(*stats->open_fds, 3u);  // stdin, stdout, stderr at least
  const double now = static_cast<double>(std::time(nullptr));
  EXPECT_LE(stats->start_time_seconds, now + 1);
  EXPECT_GT(stats->start_time_seconds, now - 24 * 3600);  // a test process started today
}

TEST(ProcessMetrics, WritesBuildInfoAndProcessFamilies) {
  TextWriter w;
  WriteBuildInfo(w, "courier-test");
  WriteProcessMetrics(w);
  const ParsedPage page = ParseExposition(w.Take());
  EXPECT_TRUE(page.problems.empty()) << page.problems.front();
  EXPECT_EQ(page.Value("courier_build_info", {{"program", "courier-test"}, {"version", COURIER_VERSION_STRING}}), 1.0);
  for (const char* name : {"process_cpu_seconds_total", "process_resident_memory_bytes", "process_virtual_memory_bytes",
                           "process_start_time_seconds", "process_open_fds", "process_max_fds"}) {
    EXPECT_EQ(page.Count(name), 1u) << name;
  }
  EXPECT_EQ(page.types.at("process_cpu_seconds_total"), "counter");
}

}  // namespace
}  // namespace courier::prometheus
