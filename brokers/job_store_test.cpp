#include "job_store.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

namespace courier::broker {
namespace {

namespace fs = std::filesystem;

class JobStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("courier-job-store-test-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  static StoreOp AddJob(std::uint64_t seq, std::size_t payload_bytes = 100) {
    StoreOp op;
    op.kind = StoreOp::Kind::kAddJob;
    op.job.id = JobId::Random();
    op.job.seq = seq;
    op.job.service = "echo";
    op.job.mode = ReplyMode::kEnqueue;
    op.job.envelope = "envelope-" + std::to_string(seq);
    op.job.payload = std::string(payload_bytes, 'p');
    op.job.max_attempts = 3;
    op.job.deadline_ms = 2'000'000;
    op.job.accepted_ms = 1'000'000;
    op.job.since_ms = 1'000'000;
    return op;
  }
  static StoreOp Result(const JobId& id, std::uint64_t seq, std::uint64_t expires_ms) {
    StoreOp op;
    op.kind = StoreOp::Kind::kAddResult;
    op.result.id = id;
    op.result.service = "echo";
    op.result.state = wire::JobState::kDone;
    op.result.reply = {"reply-envelope", std::string("\x00\x01", 2)};
    op.result.since_ms = 1'000'100;
    op.result.expires_ms = expires_ms;
    op.result_seq = seq;
    return op;
  }
  static StoreOp Remove(const JobId& id, std::uint64_t seq) {
    StoreOp op;
    op.kind = StoreOp::Kind::kRemoveJob;
    op.job.id = id;
    op.job.seq = seq;
    return op;
  }

  fs::path dir_;
};

TEST_F(JobStoreTest, JobsSurviveReopeningInAcceptOrderWithTheirDispatchMark) {
  std::vector<JobId> ids;
  {
    JobStore store(JobStoreOptions{.dir = dir_});
    std::vector<StoreOp> ops;
    for (std::uint64_t seq = 1; seq <= 5; ++seq) ops.push_back(AddJob(seq));
    for (const auto& op : ops) ids.push_back(op.job.id);
    StoreOp dispatched;
    dispatched.kind = StoreOp::Kind::kDispatched;
    dispatched.job.id = ids[1];
    dispatched.job.seq = 2;
    dispatched.job.attempt = 2;
    dispatched.job.worker = "host:42";
    dispatched.job.since_ms = 1'000'050;
    ops.push_back(dispatched);
    ops.push_back(Remove(ids[4], 5));
    EXPECT_EQ(store.Commit(ops).status, CommitResult::Status::kOk);
  }
  JobStore store(JobStoreOptions{.dir = dir_});
  std::vector<StoredJob> loaded;
  // The highest seq still stored: job 5 was removed.
  EXPECT_EQ(store.Load([&](StoredJob&& job) { loaded.push_back(std::move(job)); }), 4u);
  ASSERT_EQ(loaded.size(), 4u);
  for (std::size_t i = 0; i < 4; ++i) EXPECT_EQ(loaded[i].id, ids[i]);
  EXPECT_FALSE(loaded[0].dispatched);
  EXPECT_TRUE(loaded[1].dispatched);
  EXPECT_EQ(loaded[1].attempt, 2u);
  EXPECT_EQ(loaded[1].worker, "host:42");
  EXPECT_EQ(loaded[2].payload, std::string(100, 'p'));
  EXPECT_EQ(loaded[2].mode, ReplyMode::kEnqueue);
}

TEST_F(JobStoreTest, ASecondBrokerOnTheSameDirectoryIsRefused) {
  JobStore first(JobStoreOptions{.dir = dir_});
  EXPECT_THROW(JobStore second(JobStoreOptions{.dir = dir_}), Error);
}

TEST_F(JobStoreTest, ResultsAreFoundUntilTheyExpireAndListedWithJobs) {
  JobStore store(JobStoreOptions{.dir = dir_});
  const StoreOp queued = AddJob(1);
  const StoreOp finished = AddJob(2);
  ASSERT_EQ(store.Commit(std::vector<StoreOp>{queued, finished}).status, CommitResult::Status::kOk);
  ASSERT_EQ(store.Commit(std::vector<StoreOp>{Result(finished.job.id, 2, 5'000), Remove(finished.job.id, 2)}).status,
            CommitResult::Status::kOk);
  const auto found = store.FindResult(finished.job.id, 4'999);
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->state, wire::JobState::kDone);
  EXPECT_EQ(found->reply, (std::vector<std::string>{"reply-envelope", std::string("\x00\x01", 2)}));
  EXPECT_FALSE(store.FindResult(queued.job.id, 4'999).has_value());

  const wire::JobsPage all = store.List(wire::JobsQuery{}, 4'999);
  ASSERT_EQ(all.rows.size(), 2u);
  EXPECT_EQ(all.rows[0].state, wire::JobState::kQueued);
  EXPECT_EQ(all.rows[1].state, wire::JobState::kDone);
  wire::JobsQuery done_only;
  done_only.state = wire::JobState::kDone;
  EXPECT_EQ(store.List(done_only, 4'999).rows.size(), 1u);
  wire::JobsQuery first_page;
  first_page.limit = 1;
  const wire::JobsPage page = store.List(first_page, 4'999);
  ASSERT_EQ(page.rows.size(), 1u);
  first_page.after = page.next;
  EXPECT_EQ(store.List(first_page, 4'999).rows.at(0).id, finished.job.id);

  EXPECT_FALSE(store.FindResult(finished.job.id, 5'000).has_value());
  EXPECT_EQ(store.PurgeExpired(5'000, 100), 1u);
}

TEST_F(JobStoreTest, AFullStoreRefusesNewJobsKeepsOtherOpsAndRecovers) {
  JobStore store(JobStoreOptions{.dir = dir_, .max_bytes = 256 * 1024});
  std::vector<std::pair<JobId, std::uint64_t>> stored;
  std::uint64_t seq = 0;
  CommitResult result;
  for (int batch = 0; batch < 100 && result.status == CommitResult::Status::kOk; ++batch) {
    std::vector<StoreOp> ops;
    for (int i = 0; i < 10; ++i) ops.push_back(AddJob(++seq, 4000));
    result = store.Commit(ops);
    if (result.status == CommitResult::Status::kOk) {
      for (const auto& op : ops) stored.emplace_back(op.job.id, op.job.seq);
    }
  }
  ASSERT_EQ(result.status, CommitResult::Status::kFull) << "the store never filled up";
  EXPECT_NE(result.message.find("full"), std::string::npos) << result.message;
  ASSERT_GT(stored.size(), 10u);
  // Still full for a new job...
  EXPECT_EQ(store.Commit(std::vector<StoreOp>{AddJob(++seq, 40000)}).status, CommitResult::Status::kFull);
  // ...removals go through even in a batch whose new jobs are refused...
  std::vector<StoreOp> mixed;
  for (int i = 0; i < 10; ++i) mixed.push_back(AddJob(++seq, 40000));
  const std::size_t removed = stored.size() / 2;
  for (std::size_t i = 0; i < removed; ++i) mixed.push_back(Remove(stored[i].first, stored[i].second));
  const CommitResult outcome = store.Commit(mixed);
  EXPECT_EQ(store.pending_retries(), 0u);
  wire::JobsQuery all;
  all.limit = wire::kMaxJobsPage;
  const std::size_t added = outcome.status == CommitResult::Status::kOk ? 10 : 0;
  EXPECT_EQ(store.List(all, 0).rows.size(), stored.size() - removed + added);
  // ...and free the room new jobs need.
  EXPECT_EQ(store.Commit(std::vector<StoreOp>{AddJob(++seq, 4000)}).status, CommitResult::Status::kOk);
}

TEST_F(JobStoreTest, DefaultDataDirIsOnePerEndpointUnderXdgStateHome) {
  ::setenv("XDG_STATE_HOME", "/tmp/state", 1);
  EXPECT_EQ(DefaultDataDir("tcp://127.0.0.1:5555"), fs::path("/tmp/state/courier/broker-tcp-127.0.0.1-5555"));
  EXPECT_NE(DefaultDataDir("tcp://127.0.0.1:5556"), DefaultDataDir("tcp://127.0.0.1:5555"));
  ::setenv("STATE_DIRECTORY", "/var/lib/courier-broker/b1:/other", 1);
  EXPECT_EQ(DefaultDataDir("tcp://*:5555"), fs::path("/var/lib/courier-broker/b1/broker-tcp-5555"));
  ::unsetenv("STATE_DIRECTORY");
}

}  // namespace
}  // namespace courier::broker
