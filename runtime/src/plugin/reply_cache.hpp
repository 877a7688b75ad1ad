// reply_cache.hpp — duplicate suppression for non-idempotent services (PROTOCOL.md §7.7):
// remembers, per job id, that a job is running or how it ended, for a window of time and a
// bounded number of ids, so a redelivered job is answered with the first run's result
// instead of running twice.
//
//   switch (auto claim = cache.Begin(id, waiter); claim.state) {
//     case kNew:     run it; then cache.Complete(id, outcome) → waiters to answer too
//     case kDone:    answer with claim.outcome
//     case kRunning: nothing now: whoever runs it answers `waiter` from Complete
//   }
//
// Failures are results too: a duplicate of a job whose handler threw gets the same error,
// since the handler may have done part of its work. Abandon() (forget, nothing recorded)
// is for runs that never reached the handler's side effects.
// Thread-safety: all calls lock one mutex; safe from every pool thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "courier/error.hpp"
#include "courier/job.hpp"

namespace courier::detail {

// How a job ended: a reply (MessagePack plaintext) or an error.
struct HandlerOutcome {
  bool ok = true;
  std::string reply;
  ErrorCode code = ErrorCode::kInternal;
  std::string message;
  bool operator==(const HandlerOutcome&) const = default;
};

template <class Waiter>
class ReplyCache {
 public:
  using Clock = std::chrono::steady_clock;
  enum class State { kNew, kRunning, kDone };
  struct Claim {
    State state = State::kNew;
    HandlerOutcome outcome;  // kDone: how the first run ended
  };

  ReplyCache(std::chrono::milliseconds window, std::size_t capacity)
      : window_(window), capacity_(capacity == 0 ? 1 : capacity) {}

  Claim Begin(const JobId& id, Waiter waiter, Clock::time_point now = Clock::now()) {
    std::lock_guard lock(mutex_);
    Expire(now);
    auto [it, inserted] = entries_.try_emplace(id);
    Entry& entry = it->second;
    if (inserted) {
      entry.running = true;
      return {State::kNew, {}};
    }
    if (entry.running) {
      entry.waiters.push_back(std::move(waiter));
      return {State::kRunning, {}};
    }
    ++hits_;
    return {State::kDone, entry.outcome};
  }

  // Records how a job claimed with kNew ended. Returns: the waiters to answer likewise.
  std::vector<Waiter> Complete(const JobId& id, HandlerOutcome outcome, Clock::time_point now = Clock::now()) {
    std::lock_guard lock(mutex_);
    auto it = entries_.find(id);
    if (it == entries_.end()) return {};
    Entry& entry = it->second;
    entry.running = false;
    entry.outcome = std::move(outcome);
    entry.done_at = now;
    order_.emplace_back(id, now);
    ++done_;
    std::vector<Waiter> waiters = std::move(entry.waiters);
    entry.waiters.clear();
    Expire(now);
    return waiters;
  }

  // Forgets a job claimed with kNew without recording a result. Returns: its waiters.
  std::vector<Waiter> Abandon(const JobId& id) {
    std::lock_guard lock(mutex_);
    auto it = entries_.find(id);
    if (it == entries_.end()) return {};
    std::vector<Waiter> waiters = std::move(it->second.waiters);
    entries_.erase(it);
    return waiters;
  }

  std::size_t size() const {
    std::lock_guard lock(mutex_);
    return entries_.size();
  }
  // Returns: how many claims were answered from the cache.
  std::size_t hits() const {
    std::lock_guard lock(mutex_);
    return hits_;
  }

 private:
  struct Entry {
    bool running = false;
    HandlerOutcome outcome;
    Clock::time_point done_at{};
    std::vector<Waiter> waiters;
  };

  // Drops completed entries past the window, then the oldest while over capacity.
  void Expire(Clock::time_point now) {
    while (!order_.empty()) {
      const auto& [id, done_at] = order_.front();
      const bool too_old = now - done_at > window_;
      const bool too_many = done_ > capacity_;
      if (!too_old && !too_many) break;
      auto it = entries_.find(id);
      if (it != entries_.end() && !it->second.running && it->second.done_at == done_at) {
        entries_.erase(it);
        --done_;
      }
      order_.pop_front();
    }
  }

  const std::chrono::milliseconds window_;
  const std::size_t capacity_;
  mutable std::mutex mutex_;
  std::unordered_map<JobId, Entry, JobIdHash> entries_;
  std::deque<std::pair<JobId, Clock::time_point>> order_;  // completion order
  std::size_t done_ = 0;
  std::size_t hits_ = 0;
};

}  // namespace courier::detail
