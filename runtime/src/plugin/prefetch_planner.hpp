// prefetch_planner.hpp — the automatic capacity of a service on a worker host (capacity
// not set, the default): its threads, plus jobs held ready so that a thread finishing one
// finds the next already here instead of waiting a broker round trip for it.
//
// How many to hold ready follows the service's measured service time S (busy-thread time
// per finished job): enough for about `cover` of work on every thread,
// ceil(threads × cover / S), bounded by max_capacity. Cheap jobs (S of microseconds) get
// a deep prefetch and stream; long jobs (S ≫ cover) get one held ready per host, so a
// host never sits on queued work that an idle host could run. Until enough jobs have
// finished to measure S, the capacity is the thread count.
//
// Pure: time is passed in. Not thread-safe (the worker host's I/O thread owns it).
#pragma once

#include <chrono>
#include <cstdint>

namespace courier::detail {

class PrefetchPlanner {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr std::chrono::microseconds kDefaultCover{2000};
  static constexpr std::uint32_t kDefaultMaxCapacity = 256;
  // Finished jobs a window needs before its service time counts (or a whole second).
  static constexpr std::uint64_t kMinSamples = 16;

  explicit PrefetchPlanner(std::uint32_t threads, std::chrono::nanoseconds cover = kDefaultCover,
                           std::uint32_t max_capacity = kDefaultMaxCapacity);

  // `held`: the service's jobs on this host (running or waiting for a thread) just after a
  // change of it; `finished`: whether the change is a job ending.
  void OnHeldChange(std::uint32_t held, bool finished, Clock::time_point now);
  // Closes the window when it has enough samples. Returns: the capacity to offer now.
  std::uint32_t Plan(Clock::time_point now);

  std::uint32_t capacity() const { return capacity_; }
  // Returns: the smoothed service time (zero until measured).
  std::chrono::nanoseconds service_time() const { return std::chrono::nanoseconds(static_cast<std::int64_t>(service_ns_)); }

 private:
  // Adds the busy-thread time since the last change (held_ jobs, at most one per thread).
  void Integrate(Clock::time_point now);

  std::uint32_t threads_;
  double cover_ns_;
  std::uint32_t max_capacity_;
  std::uint32_t capacity_;
  double service_ns_ = 0;       // smoothed (EWMA) service time
  double busy_ns_ = 0;          // busy-thread time in the open window
  std::uint64_t finished_ = 0;  // jobs finished in the open window
  std::uint32_t held_ = 0;      // held since the last change
  Clock::time_point last_{};    // of the last change (or Plan)
  Clock::time_point window_start_{};
};

}  // namespace courier::detail
