// in_flight.hpp — the bound on jobs a client has outstanding (backpressure).
//
// Acquire takes a slot or, when all are taken, waits (kBlock, at most until a deadline) or
// refuses (kFailFast). Release gives a slot back. Close wakes every waiter and refuses all
// later requests, so no caller hangs on a client being destroyed.
// Thread-safety: every member is safe to call from any thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <mutex>

#include "courier/client.hpp"

namespace courier::detail {

class InFlightLimiter {
 public:
  enum class Admission { kAdmitted, kFull, kTimedOut, kClosed };

  explicit InFlightLimiter(std::size_t limit) : limit_(limit) {}

  Admission Acquire(OverflowPolicy policy, std::chrono::steady_clock::time_point deadline) {
    std::unique_lock lock(mutex_);
    if (closed_) return Admission::kClosed;
    if (in_flight_ < limit_) {
      ++in_flight_;
      return Admission::kAdmitted;
    }
    if (policy == OverflowPolicy::kFailFast) return Admission::kFull;
    ++waiters_;
    const bool ready = freed_.wait_until(lock, deadline, [&] { return closed_ || in_flight_ < limit_; });
    --waiters_;
    if (closed_) return Admission::kClosed;
    if (!ready) return Admission::kTimedOut;
    ++in_flight_;
    return Admission::kAdmitted;
  }

  void Release() {
    {
      std::lock_guard lock(mutex_);
      if (in_flight_ > 0) --in_flight_;
      if (waiters_ == 0) return;
    }
    freed_.notify_one();
  }

  void Close() {
    {
      std::lock_guard lock(mutex_);
      closed_ = true;
    }
    freed_.notify_all();
  }

  std::size_t in_flight() const {
    std::lock_guard lock(mutex_);
    return in_flight_;
  }
  std::size_t limit() const { return limit_; }

 private:
  const std::size_t limit_;
  mutable std::mutex mutex_;
  std::condition_variable freed_;
  std::size_t in_flight_ = 0;
  std::size_t waiters_ = 0;
  bool closed_ = false;
};

}  // namespace courier::detail
