#include "reply_cache.hpp"

#include <gtest/gtest.h>

namespace courier::detail {
namespace {

using Cache = ReplyCache<int>;
using State = Cache::State;
using namespace std::chrono_literals;

JobId Id(std::uint8_t n) {
  JobId id;
  id.bytes[0] = n;
  return id;
}

TEST(ReplyCache, FirstClaimRunsLaterOnesGetTheReply) {
  Cache cache(5min, 100);
  EXPECT_EQ(cache.Begin(Id(1), 10).state, State::kNew);
  EXPECT_TRUE(cache.Complete(Id(1), {true, "reply"}).empty());
  const Cache::Claim again = cache.Begin(Id(1), 11);
  EXPECT_EQ(again.state, State::kDone);
  EXPECT_EQ(again.outcome.reply, "reply");
  EXPECT_EQ(cache.hits(), 1u);
  EXPECT_EQ(cache.Begin(Id(2), 12).state, State::kNew);
}

TEST(ReplyCache, DuplicatesOfARunningJobWaitForIt) {
  Cache cache(5min, 100);
  EXPECT_EQ(cache.Begin(Id(1), 10).state, State::kNew);
  EXPECT_EQ(cache.Begin(Id(1), 11).state, State::kRunning);
  EXPECT_EQ(cache.Begin(Id(1), 12).state, State::kRunning);
  EXPECT_EQ(cache.Complete(Id(1), {true, "r"}), (std::vector<int>{11, 12}));
}

TEST(ReplyCache, FailuresAreResultsToo) {
  Cache cache(5min, 100);
  cache.Begin(Id(1), 10);
  const HandlerOutcome failed{false, "", ErrorCode::kHandlerError, "boom"};
  cache.Complete(Id(1), failed);
  const Cache::Claim again = cache.Begin(Id(1), 11);
  EXPECT_EQ(again.state, State::kDone);
  EXPECT_EQ(again.outcome, failed);
}

TEST(ReplyCache, AnAbandonedJobIsForgottenAndItsWaitersReturned) {
  Cache cache(5min, 100);
  cache.Begin(Id(1), 10);
  cache.Begin(Id(1), 11);
  EXPECT_EQ(cache.Abandon(Id(1)), std::vector<int>{11});
  EXPECT_EQ(cache.Begin(Id(1), 12).state, State::kNew);
}

TEST(ReplyCache, RepliesExpireAfterTheWindow) {
  Cache cache(1000ms, 100);
  const auto t0 = Cache::Clock::now();
  cache.Begin(Id(1), 1, t0);
  cache.Complete(Id(1), {true, "r"}, t0);
  EXPECT_EQ(cache.Begin(Id(1), 2, t0 + 999ms).state, State::kDone);
  EXPECT_EQ(cache.Begin(Id(1), 3, t0 + 1001ms).state, State::kNew);
}

TEST(ReplyCache, OldestRepliesGoPastCapacity) {
  Cache cache(5min, 2);
  const auto t0 = Cache::Clock::now();
  for (std::uint8_t n = 1; n <= 3; ++n) {
    cache.Begin(Id(n), n, t0);
    cache.Complete(Id(n), {true, "r" + std::to_string(n)}, t0 + std::chrono::milliseconds(n));
  }
  EXPECT_EQ(cache.size(), 2u);
  EXPECT_EQ(cache.Begin(Id(3), 0, t0 + 10ms).state, State::kDone);
  EXPECT_EQ(cache.Begin(Id(2), 0, t0 + 10ms).state, State::kDone);
  EXPECT_EQ(cache.Begin(Id(1), 0, t0 + 10ms).state, State::kNew);
}

TEST(ReplyCache, RunningJobsAreNeverEvicted) {
  Cache cache(1ms, 1);
  const auto t0 = Cache::Clock::now();
  cache.Begin(Id(1), 1, t0);
  cache.Begin(Id(2), 2, t0);
  cache.Complete(Id(2), {true, "r"}, t0);
  EXPECT_EQ(cache.Begin(Id(1), 3, t0 + 1h).state, State::kRunning);
}

}  // namespace
}  // namespace courier::detail
