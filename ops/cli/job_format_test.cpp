// How `courier job` and `courier jobs` show stored jobs: times, the key/value view, the
// table row, JSON and exit codes.
#include "job_format.hpp"

#include <gtest/gtest.h>

#include <stdexcept>

#include "cli_support.hpp"

namespace courier::cli {
namespace {

using namespace std::chrono_literals;

constexpr std::uint64_t kNow = 1700000000000;  // 2023-11-14T22:13:20Z

JobStatus Sample(JobState state) {
  JobStatus status;
  status.id = *JobId::FromHex("000102030405060708090a0b0c0d0e0f");
  status.service = "render";
  status.state = state;
  status.attempt = 2;
  status.max_attempts = 3;
  status.since_ms = kNow - 42'000;
  status.broker = "tcp://127.0.0.1:5555";
  return status;
}

TEST(JobFormatTest, FormatsTimesAndAges) {
  EXPECT_EQ(FormatUnixMs(kNow + 7), "2023-11-14T22:13:20.007Z");
  EXPECT_EQ(FormatUnixMs(0), "-");
  EXPECT_EQ(FormatAge(kNow - 850, kNow), "850ms");
  EXPECT_EQ(FormatAge(kNow - 42'000, kNow), "42s");
  EXPECT_EQ(FormatAge(kNow - 192'000, kNow), "3m12s");
  EXPECT_EQ(FormatAge(kNow - (5 * 3600 + 4 * 60) * 1000ull, kNow), "5h4m");
  EXPECT_EQ(FormatAge(kNow - (2 * 86400 + 3 * 3600) * 1000ull, kNow), "2d3h");
  EXPECT_EQ(FormatAge(kNow + 5000, kNow), "0ms");  // the broker's clock is ahead
  EXPECT_EQ(FormatAge(0, kNow), "-");
}

TEST(JobFormatTest, ShowsWhatEachStateHas) {
  JobStatus running = Sample(JobState::kRunning);
  running.worker = "host-a:4242";
  EXPECT_EQ(JobStatusText(running, kNow),
            "job      000102030405060708090a0b0c0d0e0f\n"
            "service  render\n"
            "state    running\n"
            "attempt  2/3\n"
            "worker   host-a:4242\n"
            "since    2023-11-14T22:12:38.000Z (42s ago)\n"
            "broker   tcp://127.0.0.1:5555\n");

  JobStatus failed = Sample(JobState::kFailed);
  failed.error = Error(ErrorCode::kHandlerError, "image too large");
  failed.expires_ms = kNow + 3'600'000;
  const std::string failed_text = JobStatusText(failed, kNow);
  EXPECT_NE(failed_text.find("error    handler_error: image too large\n"), std::string::npos) << failed_text;
  EXPECT_NE(failed_text.find("expires  2023-11-14T23:13:20.000Z\n"), std::string::npos) << failed_text;
  EXPECT_EQ(failed_text.find("worker"), std::string::npos) << failed_text;

  JobStatus done = Sample(JobState::kDone);
  done.result = Value::Object({{"frame", 7}});
  done.durable = false;
  const std::string done_text = JobStatusText(done, kNow);
  EXPECT_NE(done_text.find("result   {\"frame\":7}\n"), std::string::npos) << done_text;
  EXPECT_NE(done_text.find("state    done (memory"), std::string::npos) << done_text;
}

TEST(JobFormatTest, JsonCarriesEveryFieldAndTheResult) {
  JobStatus done = Sample(JobState::kDone);
  done.result = Value::Object({{"frame", 7}});
  EXPECT_EQ(ToJson(JobStatusJson(done)),
            "{\"id\":\"000102030405060708090a0b0c0d0e0f\",\"service\":\"render\",\"state\":\"done\",\"attempt\":2,"
            "\"max_attempts\":3,\"worker\":\"\",\"since_ms\":1699999958000,\"expires_ms\":0,\"durable\":true,"
            "\"broker\":\"tcp://127.0.0.1:5555\",\"result\":{\"frame\":7}}");
  JobStatus dead = Sample(JobState::kDead);
  dead.error = Error(ErrorCode::kAttemptsExhausted, "3 attempts");
  const Value json = JobStatusJson(dead);
  EXPECT_EQ(json.At("error").At("code").AsString(), "attempts_exhausted");
  EXPECT_EQ(json.At("error").At("message").AsString(), "3 attempts");
  EXPECT_EQ(json.Find("result"), nullptr);
}

TEST(JobFormatTest, TableRowsAndExitCodes) {
  EXPECT_EQ(JobsTableHeader(), (std::vector<std::string>{"ID", "SERVICE", "STATE", "ATTEMPT", "SINCE", "BROKER"}));
  EXPECT_EQ(JobsTableRow(Sample(JobState::kQueued), kNow),
            (std::vector<std::string>{"000102030405060708090a0b0c0d0e0f", "render", "queued", "2/3", "42s",
                                      "tcp://127.0.0.1:5555"}));
  EXPECT_EQ(JobExitCode(Sample(JobState::kDone)), kExitOk);
  EXPECT_EQ(JobExitCode(Sample(JobState::kFailed)), kExitJobErrors);
  EXPECT_EQ(JobExitCode(Sample(JobState::kDead)), kExitJobErrors);
  EXPECT_EQ(JobExitCode(Sample(JobState::kQueued)), kExitPending);
  EXPECT_EQ(JobExitCode(Sample(JobState::kRunning)), kExitPending);
  EXPECT_EQ(ExitCodeFor(ErrorCode::kNotFound), kExitNotFound);
  EXPECT_EQ(ExitCodeFor(ErrorCode::kUnavailable), kExitUnavailable);
}

TEST(JobFormatTest, WaitIsSecondsUnlessItSaysOtherwise) {
  EXPECT_EQ(ParseWait("5"), 5000ms);
  EXPECT_EQ(ParseWait("1.5"), 1500ms);
  EXPECT_EQ(ParseWait("500ms"), 500ms);
  EXPECT_EQ(ParseWait("2m"), 120000ms);
  EXPECT_EQ(ParseWait("0"), 0ms);
  EXPECT_THROW(ParseWait("soon"), std::invalid_argument);
  EXPECT_THROW(ParseWait("25h"), std::invalid_argument);
  EXPECT_THROW(ParseWait(""), std::invalid_argument);
}

}  // namespace
}  // namespace courier::cli
