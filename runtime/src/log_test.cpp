#include "courier/log.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "courier/config.hpp"
#include "courier/error.hpp"

namespace courier {
namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;
using testing::HasSubstr;

// Restores the text logger so later tests in this binary log normally.
class LogTest : public testing::Test {
 protected:
  void TearDown() override { ConfigureLogging(LogOptions{}); }

  // Logs `message` at info through the configured default logger; returns stderr's output.
  static std::string CaptureInfo(const std::string& message) {
    testing::internal::CaptureStderr();
    spdlog::info("{}", message);
    spdlog::default_logger()->flush();
    return testing::internal::GetCapturedStderr();
  }
};

TEST(RateLimiterTest, AllowsABurstPerPeriodAndCountsTheRest) {
  RateLimiter limiter(3, milliseconds(1000));
  const Clock::time_point start = Clock::time_point() + std::chrono::hours(1);
  EXPECT_TRUE(limiter.Allow(start));
  EXPECT_TRUE(limiter.Allow(start + milliseconds(10)));
  EXPECT_TRUE(limiter.Allow(start + milliseconds(20)));
  EXPECT_FALSE(limiter.Allow(start + milliseconds(30)));
  EXPECT_FALSE(limiter.Allow(start + milliseconds(999)));
  EXPECT_EQ(limiter.TakeSuppressed(), 2u);
  EXPECT_EQ(limiter.TakeSuppressed(), 0u);
  // The window opened at `start`; a full period later a new burst is allowed.
  EXPECT_TRUE(limiter.Allow(start + milliseconds(1000)));
  EXPECT_TRUE(limiter.Allow(start + milliseconds(1001)));
  EXPECT_TRUE(limiter.Allow(start + milliseconds(1002)));
  EXPECT_FALSE(limiter.Allow(start + milliseconds(1003)));
  EXPECT_EQ(limiter.TakeSuppressed(), 1u);
}

TEST(RateLimiterTest, TheWindowOpensAtTheFirstEventAfterAQuietSpell) {
  RateLimiter limiter(1, milliseconds(100));
  const Clock::time_point start = Clock::time_point() + milliseconds(50);
  EXPECT_TRUE(limiter.Allow(start));
  EXPECT_FALSE(limiter.Allow(start + milliseconds(99)));
  EXPECT_TRUE(limiter.Allow(start + milliseconds(5000)));
  EXPECT_FALSE(limiter.Allow(start + milliseconds(5050)));
  EXPECT_TRUE(limiter.Allow(start + milliseconds(5100)));
  EXPECT_EQ(limiter.TakeSuppressed(), 2u);
}

TEST(RateLimiterTest, ZeroBurstSuppressesEverything) {
  RateLimiter limiter(0, milliseconds(100));
  const Clock::time_point start = Clock::time_point() + milliseconds(1);
  EXPECT_FALSE(limiter.Allow(start));
  EXPECT_FALSE(limiter.Allow(start + milliseconds(1000)));
  EXPECT_EQ(limiter.TakeSuppressed(), 2u);
}

TEST(ReadLogOptionsTest, ReadsLevelAndFormat) {
  const ConfigSection root =
      ConfigSection::Parse("[log]\nlevel = \"debug\"\nformat = \"json\"\n", "worker.toml");
  const LogOptions options = ReadLogOptions(root.Section("log"), "worker");
  EXPECT_EQ(options.level, "debug");
  EXPECT_EQ(options.format, "json");
  EXPECT_EQ(options.name, "worker");
}

TEST(ReadLogOptionsTest, DefaultsWhenAbsent) {
  const LogOptions options = ReadLogOptions(ConfigSection::Empty().Section("log"), "broker");
  EXPECT_EQ(options.level, "info");
  EXPECT_EQ(options.format, "text");
  EXPECT_EQ(options.name, "broker");
}

TEST(ReadLogOptionsTest, RejectsBadValuesAndUnknownKeys) {
  const ConfigSection bad_level =
      ConfigSection::Parse("[log]\nlevel = \"loud\"\n", "w.toml").Section("log");
  EXPECT_THAT([&] { ReadLogOptions(bad_level, "w"); },
              testing::ThrowsMessage<Error>(HasSubstr("w.toml:2:1: log.level: expected one of")));
  const ConfigSection typo =
      ConfigSection::Parse("[log]\nlevle = \"info\"\n", "w.toml").Section("log");
  EXPECT_THAT([&] { ReadLogOptions(typo, "w"); },
              testing::ThrowsMessage<Error>(HasSubstr("did you mean \"level\"?")));
}

TEST_F(LogTest, ConfigureLoggingRejectsBadLevelOrFormat) {
  LogOptions bad_level;
  bad_level.level = "verbose";
  try {
    ConfigureLogging(bad_level);
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kConfig);
    EXPECT_THAT(e.what(), HasSubstr("\"verbose\""));
  }
  LogOptions bad_format;
  bad_format.format = "xml";
  EXPECT_THAT([&] { ConfigureLogging(bad_format); },
              testing::ThrowsMessage<Error>(HasSubstr("log.format")));
}

TEST_F(LogTest, ConfigureLoggingSetsNameAndLevel) {
  LogOptions options;
  options.level = "warn";
  options.name = "broker";
  ConfigureLogging(options);
  EXPECT_EQ(spdlog::default_logger()->name(), "broker");
  EXPECT_EQ(spdlog::default_logger()->level(), spdlog::level::warn);
  EXPECT_EQ(CaptureInfo("hidden"), "");
  // Configuring again replaces the logger rather than failing on the registered name.
  options.level = "info";
  EXPECT_NO_THROW(ConfigureLogging(options));
  EXPECT_THAT(CaptureInfo("shown"), HasSubstr("[broker] [info] shown"));
}

TEST_F(LogTest, JsonLinesEscapeTheMessage) {
  LogOptions options;
  options.format = "json";
  options.name = "bro\"ker";
  ConfigureLogging(options);
  const std::string hostile = std::string("quote \" backslash \\ newline \n tab \t bell \x07 ") +
                              "caf\xC3\xA9 bad \xFF end";
  const std::string line = CaptureInfo(hostile);
  ASSERT_FALSE(line.empty());
  EXPECT_EQ(line.back(), '\n');
  EXPECT_EQ(line.find('\n'), line.size() - 1) << "one object per line";
  EXPECT_THAT(line, HasSubstr(R"(\")"));
  EXPECT_THAT(line, HasSubstr(R"(\\)"));
  EXPECT_THAT(line, HasSubstr(R"(\u0007)"));
  const nlohmann::json object = nlohmann::json::parse(line);
  EXPECT_EQ(object.at("level"), "info");
  EXPECT_EQ(object.at("logger"), "bro\"ker");
  EXPECT_EQ(object.at("msg"),
            "quote \" backslash \\ newline \n tab \t bell \x07 caf\xC3\xA9 bad \xEF\xBF\xBD end");
  const std::string ts = object.at("ts");
  EXPECT_THAT(ts, testing::MatchesRegex(
                      "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z"));
}

}  // namespace
}  // namespace courier
