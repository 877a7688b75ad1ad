#include "error_store.hpp"

#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <random>

namespace courier::sink {
namespace {

namespace fs = std::filesystem;

class ErrorStoreTest : public ::testing::Test {
 protected:
  ErrorStoreTest() {
    std::random_device random;
    dir_ = fs::temp_directory_path() / ("courier-store-test-" + std::to_string(::getpid()) + "-" + std::to_string(random()));
    path_ = dir_ / "state" / "errors.db";
  }
  ~ErrorStoreTest() override { fs::remove_all(dir_); }

  static ErrorReport Report(std::string service, std::string message, ErrorCode code = ErrorCode::kHandlerError,
                            std::uint64_t time_ms = 1'700'000'000'000) {
    ErrorReport report;
    report.time_ms = time_ms;
    report.service = std::move(service);
    report.job_id = JobId::Random();
    report.attempt = 1;
    report.max_attempts = 3;
    report.reporter = "worker";
    report.host = "host-a";
    report.pid = 42;
    report.instance = "host-a:42";
    report.stage = "handle";
    report.code = code;
    report.message = std::move(message);
    return report;
  }
  static detail::ErrorBatch Batch(std::vector<ErrorReport> reports, std::uint64_t dropped = 0) {
    detail::ErrorBatch batch;
    batch.reports = std::move(reports);
    batch.dropped = dropped;
    return batch;
  }

  fs::path dir_;
  fs::path path_;
};

TEST_F(ErrorStoreTest, InsertsAndFindsEveryField) {
  ErrorStore store(path_, {});
  ErrorReport dead = Report("resize", "attempts exhausted", ErrorCode::kAttemptsExhausted);
  dead.reporter = "broker";
  dead.stage = "dispatch";
  dead.envelope = std::string("\x9c\x01\xce\0\0\0\x03", 7);
  dead.payload = std::string("sealed\0bytes", 12);
  dead.trace_id[15] = 9;
  dead.broker = "tcp://b:1";
  const auto result = store.Insert(JobId::Random(), Batch({Report("resize", "boom"), dead}), 1'700'000'000'500);
  ASSERT_EQ(result.ids.size(), 2u);
  const auto row = store.Find(result.ids[1]);
  ASSERT_TRUE(row);
  EXPECT_EQ(row->received_ms, 1'700'000'000'500u);
  EXPECT_EQ(row->report.service, "resize");
  EXPECT_EQ(row->report.job_id, dead.job_id);
  EXPECT_EQ(row->report.reporter, "broker");
  EXPECT_EQ(row->report.stage, "dispatch");
  EXPECT_EQ(row->report.code, ErrorCode::kAttemptsExhausted);
  EXPECT_EQ(row->report.trace_id, dead.trace_id);
  EXPECT_EQ(row->report.broker, "tcp://b:1");
  EXPECT_EQ(row->report.envelope, dead.envelope);
  EXPECT_EQ(row->report.payload, dead.payload);
  EXPECT_TRUE(row->has_job);
  const auto plain = store.Find(result.ids[0]);
  ASSERT_TRUE(plain);
  EXPECT_FALSE(plain->has_job);
  EXPECT_TRUE(plain->report.payload.empty());
  EXPECT_FALSE(store.Find(999));
}

TEST_F(ErrorStoreTest, FileIsPrivateAndInWalMode) {
  ErrorStore store(path_, {});
  store.Insert(JobId::Random(), Batch({Report("s", "m")}), 1);
  struct stat info {};
  ASSERT_EQ(::stat(path_.c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 077, 0u);
  EXPECT_TRUE(fs::exists(path_.string() + "-wal"));
}

TEST_F(ErrorStoreTest, ListFiltersByServiceTimeCodeAndPages) {
  ErrorStore store(path_, {});
  store.Insert(JobId::Random(),
               Batch({Report("a", "x", ErrorCode::kHandlerError, 1000), Report("b", "y", ErrorCode::kInvalidPayload, 2000),
                      Report("a", "z", ErrorCode::kInvalidPayload, 3000), Report("a", "w", ErrorCode::kHandlerError, 4000)}),
               5000);
  EXPECT_EQ(store.List({}).size(), 4u);
  EXPECT_EQ(store.List({}).front().report.message, "w");  // newest first
  EXPECT_EQ(store.List({.service = "a"}).size(), 3u);
  EXPECT_EQ(store.List({.since_ms = 2500}).size(), 2u);
  EXPECT_EQ(store.List({.code = ErrorCode::kInvalidPayload}).size(), 2u);
  EXPECT_EQ(store.List({.service = "a", .code = ErrorCode::kInvalidPayload}).size(), 1u);
  const auto first_page = store.List({.limit = 2});
  ASSERT_EQ(first_page.size(), 2u);
  const auto second_page = store.List({.before_id = first_page.back().id, .limit = 2});
  ASSERT_EQ(second_page.size(), 2u);
  EXPECT_LT(second_page.front().id, first_page.back().id);
}

TEST_F(ErrorStoreTest, IdenticalFailuresShareAFingerprintWithCounts) {
  EXPECT_EQ(NormaliseMessage("job 4f3a9c1d2b: timeout after 30s"), "job #: timeout after #s");
  EXPECT_EQ(NormaliseMessage("  width   7 \n too big "), "width # too big");
  EXPECT_EQ(NormaliseMessage("deadbeef-cafe"), "deadbeef-cafe");  // no digit: a word, not an id
  ErrorStore store(path_, {});
  store.Insert(JobId::Random(),
               Batch({Report("s", "job 4f3a9c1d2b: timeout after 30s"), Report("s", "job 9c1d4f3a77: timeout after 31s"),
                      Report("s", "different failure"), Report("t", "job 1234abcd99: timeout after 30s")}),
               10);
  const auto rows = store.List({});
  ASSERT_EQ(rows.size(), 4u);
  EXPECT_EQ(rows[3].fingerprint, rows[2].fingerprint);  // the two timeouts of service s
  EXPECT_NE(rows[3].fingerprint, rows[1].fingerprint);
  EXPECT_NE(rows[3].fingerprint, rows[0].fingerprint);  // same message, other service
  EXPECT_EQ(rows[3].occurrences, 2u);
  const auto groups = store.Groups({.service = "s"});
  ASSERT_EQ(groups.size(), 2u);
  std::uint64_t total = 0;
  for (const auto& group : groups) total += group.count;
  EXPECT_EQ(total, 3u);
  EXPECT_EQ(store.List({.fingerprint = rows[3].fingerprint}).size(), 2u);
}

TEST_F(ErrorStoreTest, ResentBatchIsStoredOnce) {
  ErrorStore store(path_, {});
  const JobId batch_id = JobId::Random();
  EXPECT_FALSE(store.Insert(batch_id, Batch({Report("s", "m")}, 3), 1).duplicate);
  EXPECT_TRUE(store.Insert(batch_id, Batch({Report("s", "m")}, 3), 2).duplicate);
  const StoreStats stats = store.Stats();
  EXPECT_EQ(stats.stored, 1u);
  EXPECT_EQ(stats.dropped, 3u);
  EXPECT_EQ(stats.duplicate_batches, 1u);
}

TEST_F(ErrorStoreTest, RetentionByAgeAndByCount) {
  StoreLimits limits;
  limits.max_age = std::chrono::hours(1);
  limits.max_reports = 3;
  limits.prune_interval = std::chrono::hours(1);  // only explicit prunes here
  ErrorStore store(path_, limits);
  const std::uint64_t now = 10ULL * 3600 * 1000;
  store.Insert(JobId::Random(), Batch({Report("old", "m")}), now - 2 * 3600 * 1000);
  store.Insert(JobId::Random(), Batch({Report("s", "1"), Report("s", "2")}), now - 10);
  EXPECT_EQ(store.Prune(now), 1u);  // the two-hour-old one
  EXPECT_EQ(store.List({.service = "old"}).size(), 0u);
  store.Insert(JobId::Random(), Batch({Report("s", "3"), Report("s", "4")}), now);
  EXPECT_EQ(store.Prune(now), 1u);  // the oldest beyond three
  const auto rows = store.List({});
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows.back().report.message, "2");
  EXPECT_EQ(store.Stats().pruned, 2u);
  EXPECT_EQ(store.Groups({.service = "old"}).size(), 0u);
}

TEST_F(ErrorStoreTest, SurvivesReopening) {
  std::int64_t id = 0;
  {
    ErrorStore store(path_, {});
    id = store.Insert(JobId::Random(), Batch({Report("s", "before restart")}, 5), NowUnixMs()).ids.at(0);
    store.RecordReplay(id, "replied", 7);
  }
  ErrorStore reopened(path_, {});
  const auto row = reopened.Find(id);
  ASSERT_TRUE(row);
  EXPECT_EQ(row->report.message, "before restart");
  EXPECT_EQ(row->replays, 1u);
  EXPECT_EQ(row->last_replay, "7 replied");
  EXPECT_EQ(reopened.Stats().dropped, 5u);
  // New ids never reuse old ones.
  EXPECT_GT(reopened.Insert(JobId::Random(), Batch({Report("s", "after")}), NowUnixMs()).ids.at(0), id);
}

TEST_F(ErrorStoreTest, DefaultPathFollowsXdgStateHome) {
  const char* saved = std::getenv("XDG_STATE_HOME");
  const std::string restore = saved ? saved : "";
  ::setenv("XDG_STATE_HOME", "/srv/state", 1);
  EXPECT_EQ(ErrorStore::DefaultPath(), fs::path("/srv/state/courier/errors.db"));
  ::unsetenv("XDG_STATE_HOME");
  ::setenv("HOME", std::getenv("HOME") ? std::getenv("HOME") : "/root", 1);
  EXPECT_EQ(ErrorStore::DefaultPath(), fs::path(std::getenv("HOME")) / ".local/state/courier/errors.db");
  if (saved) ::setenv("XDG_STATE_HOME", restore.c_str(), 1);
}

}  // namespace
}  // namespace courier::sink
