// broker_state.hpp — the broker's tables: jobs, workers and services, indexed by slot.
// Internal to courier-broker; owned and used by one thread (the broker loop).
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>
#include <zmq.hpp>

#include "broker_config.hpp"
#include "courier/job.hpp"
#include "frames.hpp"

namespace courier::broker {

using SteadyTime = std::chrono::steady_clock::time_point;

// The two clocks an event is judged by: steady for heartbeats, Unix milliseconds for the
// deadlines written in envelopes. Injected so tests run on a fake clock.
struct Now {
  SteadyTime steady;
  std::uint64_t unix_ms = 0;
  static Now Real();
};

enum class PeerKind : std::uint8_t { kMdp, kCourier, kInternal };

inline constexpr std::uint32_t kNone = UINT32_MAX;

struct Job {
  bool live = false;
  JobId id;
  std::uint32_t service = kNone;
  PeerKind client_kind = PeerKind::kInternal;
  std::string client;               // the requester's routing id (empty for broker-made jobs)
  zmq::message_t envelope;          // kept while in flight so the job can be redelivered
  zmq::message_t payload;           // first body frame; sealed for Courier clients
  std::vector<zmq::message_t> extra_body;  // MDP body frames after the first
  std::uint64_t deadline_ms = 0;
  std::uint32_t attempt = 1;
  std::uint32_t max_attempts = 1;
  ReplyMode mode = ReplyMode::kCall;
  std::uint32_t worker = kNone;     // slot of the worker holding it, or kNone while queued
  bool dead_letter = false;         // a broker-made report counted in the dead-letter buffer
  SteadyTime enqueued_at{};
  SteadyTime dispatched_at{};
};

struct Worker {
  bool live = false;
  std::string identity;
  PeerKind kind = PeerKind::kMdp;
  std::uint32_t service = kNone;
  std::uint32_t capacity = 1;
  std::uint32_t weight = 1;
  std::int64_t current_weight = 0;  // smooth weighted round-robin state
  std::uint32_t in_flight = 0;
  SteadyTime expiry{};
  SteadyTime last_sent{};
  SteadyTime last_dispatch{};
  std::uint64_t dispatch_sequence = 0;  // orders ties: the least recently used goes first
  detail::ReadyInfo info;
};

struct Service {
  std::string name;
  ServicePolicy policy;
  std::deque<std::uint32_t> queue;  // job slots, front first
  std::vector<std::uint32_t> workers;
  std::size_t round_robin_cursor = 0;
  std::uint32_t in_flight = 0;
  std::uint64_t dispatched = 0;
  std::uint64_t replied = 0;
  std::uint64_t failed = 0;
};

// Transparent hashing so lookups by string_view allocate nothing.
struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view text) const noexcept {
    return std::hash<std::string_view>{}(text);
  }
};

// A slab of T with a free list: slots are reused, so steady traffic allocates nothing.
template <typename T>
class SlotPool {
 public:
  std::uint32_t Acquire() {
    if (free_.empty()) {
      slots_.emplace_back();
      slots_.back().live = true;
      return static_cast<std::uint32_t>(slots_.size() - 1);
    }
    const std::uint32_t slot = free_.back();
    free_.pop_back();
    slots_[slot].live = true;
    return slot;
  }
  void Release(std::uint32_t slot) {
    slots_[slot] = T{};
    free_.push_back(slot);
  }
  T& operator[](std::uint32_t slot) { return slots_[slot]; }
  const T& operator[](std::uint32_t slot) const { return slots_[slot]; }
  std::uint32_t capacity() const { return static_cast<std::uint32_t>(slots_.size()); }
  std::size_t live() const { return slots_.size() - free_.size(); }
  // Gives memory back once a burst has drained: drops trailing free slots.
  void Trim();

 private:
  std::vector<T> slots_;
  std::vector<std::uint32_t> free_;
};

template <typename T>
void SlotPool<T>::Trim() {
  if (free_.size() != slots_.size()) return;  // only when empty: slots stay stable otherwise
  std::vector<T>().swap(slots_);
  std::vector<std::uint32_t>().swap(free_);
}

}  // namespace courier::broker
