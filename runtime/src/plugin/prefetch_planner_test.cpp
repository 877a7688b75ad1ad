// The automatic capacity: threads plus about two milliseconds of work held ready.
#include "plugin/prefetch_planner.hpp"

#include <gtest/gtest.h>

namespace courier::detail {
namespace {

using namespace std::chrono_literals;
using Clock = PrefetchPlanner::Clock;

// Runs `jobs` jobs of `service_time` each back to back on `threads` busy threads and
// returns the capacity planned after them.
std::uint32_t RunSaturated(PrefetchPlanner& planner, std::uint32_t threads, std::chrono::nanoseconds service_time,
                           int jobs, Clock::time_point& now) {
  std::uint32_t capacity = planner.capacity();
  planner.OnHeldChange(threads, false, now);
  for (int i = 0; i < jobs; i += static_cast<int>(threads)) {
    now += service_time;  // every thread finishes one, and takes the next held ready
    for (std::uint32_t t = 0; t < threads; ++t) {
      planner.OnHeldChange(threads - 1, true, now);
      planner.OnHeldChange(threads, false, now);
    }
    capacity = planner.Plan(now);
  }
  return capacity;
}

TEST(PrefetchPlannerTest, StartsAtTheThreadCountUntilJobsHaveBeenMeasured) {
  PrefetchPlanner planner(2);
  EXPECT_EQ(planner.capacity(), 2u);
  Clock::time_point now{1s};
  EXPECT_EQ(planner.Plan(now), 2u);  // no job yet
  planner.OnHeldChange(1, false, now);
  now += 10us;
  planner.OnHeldChange(0, true, now);
  EXPECT_EQ(planner.Plan(now), 2u);  // one job is not a measurement
}

TEST(PrefetchPlannerTest, CheapJobsGetADeepPrefetchBoundedByTheMaximum) {
  PrefetchPlanner planner(2);
  Clock::time_point now{1s};
  // 20 µs jobs: 2 ms of work on two threads is 200 jobs ready, plus the two running.
  EXPECT_EQ(RunSaturated(planner, 2, 20us, 400, now), 202u);
  EXPECT_NEAR(static_cast<double>(planner.service_time().count()), 20000.0, 1.0);
  PrefetchPlanner tiny(2);
  EXPECT_EQ(RunSaturated(tiny, 2, 1us, 400, now), PrefetchPlanner::kDefaultMaxCapacity);
}

TEST(PrefetchPlannerTest, LongJobsHoldOneReadyPerHostSoNoHostHoardsTheQueue) {
  PrefetchPlanner planner(2);
  Clock::time_point now{1s};
  EXPECT_EQ(RunSaturated(planner, 2, 100ms, 40, now), 3u);
}

TEST(PrefetchPlannerTest, AnIdleHostMeasuresServiceTimeNotIdleTime) {
  PrefetchPlanner planner(4);
  Clock::time_point now{1s};
  for (int i = 0; i < 32; ++i) {
    planner.OnHeldChange(1, false, now);
    now += 50us;  // one job runs on one of four threads
    planner.OnHeldChange(0, true, now);
    now += 10ms;  // then nothing to do
  }
  planner.Plan(now);
  EXPECT_NEAR(static_cast<double>(planner.service_time().count()), 50000.0, 1.0);
  EXPECT_EQ(planner.capacity(), 4u + 160u);
}

TEST(PrefetchPlannerTest, ASlowerJobMixLowersTheCapacityWithinAFewWindows) {
  PrefetchPlanner planner(2);
  Clock::time_point now{1s};
  EXPECT_EQ(RunSaturated(planner, 2, 20us, 400, now), 202u);
  const std::uint32_t after = RunSaturated(planner, 2, 10ms, 200, now);
  EXPECT_EQ(after, 3u);
}

}  // namespace
}  // namespace courier::detail
