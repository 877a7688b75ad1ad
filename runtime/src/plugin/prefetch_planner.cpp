#include "plugin/prefetch_planner.hpp"

#include <algorithm>
#include <cmath>

namespace courier::detail {

namespace {
// Weight of a new window in the smoothed service time: a change of job mix shows within a
// few windows; one odd window (a GC pause, a cold cache) moves the capacity little.
constexpr double kNewWindowWeight = 0.3;
constexpr auto kMaxWindow = std::chrono::seconds(1);
}  // namespace

PrefetchPlanner::PrefetchPlanner(std::uint32_t threads, std::chrono::nanoseconds cover, std::uint32_t max_capacity)
    : threads_(std::max<std::uint32_t>(1, threads)),
      cover_ns_(static_cast<double>(cover.count())),
      max_capacity_(std::max(max_capacity, threads_)),
      capacity_(threads_) {}

void PrefetchPlanner::Integrate(Clock::time_point now) {
  if (last_ != Clock::time_point{} && now > last_) {
    const auto elapsed = std::chrono::duration_cast<std::chrono::nanoseconds>(now - last_);
    busy_ns_ += static_cast<double>(std::min(held_, threads_)) * static_cast<double>(elapsed.count());
  }
  last_ = now;
  if (window_start_ == Clock::time_point{}) window_start_ = now;
}

void PrefetchPlanner::OnHeldChange(std::uint32_t held, bool finished, Clock::time_point now) {
  Integrate(now);
  held_ = held;
  if (finished) ++finished_;
}

std::uint32_t PrefetchPlanner::Plan(Clock::time_point now) {
  if (last_ == Clock::time_point{}) return capacity_;  // no job yet
  Integrate(now);
  if (finished_ < kMinSamples && now - window_start_ < kMaxWindow) return capacity_;
  if (finished_ > 0) {
    const double measured = busy_ns_ / static_cast<double>(finished_);
    service_ns_ = service_ns_ == 0 ? measured : service_ns_ + kNewWindowWeight * (measured - service_ns_);
  }
  busy_ns_ = 0;
  finished_ = 0;
  window_start_ = now;
  if (service_ns_ <= 0) return capacity_;
  const double ready = std::ceil(static_cast<double>(threads_) * cover_ns_ / service_ns_);
  const double wanted = static_cast<double>(threads_) + ready;
  capacity_ = static_cast<std::uint32_t>(std::min(wanted, static_cast<double>(max_capacity_)));
  return capacity_;
}

}  // namespace courier::detail
