// InFlightLimiter: block, fail fast, deadline, close.
#include "client/in_flight.hpp"

#include <gtest/gtest.h>

#include <future>
#include <thread>

namespace courier::detail {
namespace {

using namespace std::chrono_literals;
using Admission = InFlightLimiter::Admission;

auto Later(std::chrono::milliseconds ms) { return std::chrono::steady_clock::now() + ms; }

TEST(InFlightLimiterTest, AdmitsUpToTheLimitThenFailsFast) {
  InFlightLimiter limiter(2);
  EXPECT_EQ(limiter.Acquire(OverflowPolicy::kFailFast, Later(1s)), Admission::kAdmitted);
  EXPECT_EQ(limiter.Acquire(OverflowPolicy::kFailFast, Later(1s)), Admission::kAdmitted);
  EXPECT_EQ(limiter.Acquire(OverflowPolicy::kFailFast, Later(1s)), Admission::kFull);
  EXPECT_EQ(limiter.in_flight(), 2u);
  limiter.Release();
  EXPECT_EQ(limiter.Acquire(OverflowPolicy::kFailFast, Later(1s)), Admission::kAdmitted);
}

TEST(InFlightLimiterTest, BlockWaitsForARelease) {
  InFlightLimiter limiter(1);
  ASSERT_EQ(limiter.Acquire(OverflowPolicy::kBlock, Later(1s)), Admission::kAdmitted);
  auto waiter = std::async(std::launch::async, [&] { return limiter.Acquire(OverflowPolicy::kBlock, Later(10s)); });
  EXPECT_EQ(waiter.wait_for(50ms), std::future_status::timeout);
  limiter.Release();
  EXPECT_EQ(waiter.get(), Admission::kAdmitted);
  EXPECT_EQ(limiter.in_flight(), 1u);
}

TEST(InFlightLimiterTest, BlockGivesUpAtTheDeadline) {
  InFlightLimiter limiter(1);
  ASSERT_EQ(limiter.Acquire(OverflowPolicy::kBlock, Later(1s)), Admission::kAdmitted);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(limiter.Acquire(OverflowPolicy::kBlock, Later(30ms)), Admission::kTimedOut);
  EXPECT_GE(std::chrono::steady_clock::now() - start, 30ms);
}

TEST(InFlightLimiterTest, CloseWakesWaitersAndRefusesLaterCalls) {
  InFlightLimiter limiter(1);
  ASSERT_EQ(limiter.Acquire(OverflowPolicy::kBlock, Later(1s)), Admission::kAdmitted);
  auto waiter = std::async(std::launch::async, [&] { return limiter.Acquire(OverflowPolicy::kBlock, Later(60s)); });
  EXPECT_EQ(waiter.wait_for(20ms), std::future_status::timeout);
  limiter.Close();
  EXPECT_EQ(waiter.get(), Admission::kClosed);
  EXPECT_EQ(limiter.Acquire(OverflowPolicy::kBlock, Later(1s)), Admission::kClosed);
}

}  // namespace
}  // namespace courier::detail
