// broker_state.hpp — the broker's tables: jobs, workers and services, indexed by slot.
// Internal to courier-broker; owned and used by one thread (the broker loop).
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>
#include <zmq.hpp>

#include "broker_config.hpp"
#include "courier/job.hpp"
#include "frames.hpp"
#include "store_ops.hpp"

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

struct Job {  // fields ordered to pack tightly: a queued job's size counts (100k queued)
  JobId id;
  bool live = false;
  PeerKind client_kind = PeerKind::kInternal;
  std::uint16_t crashes = 0;        // workers lost while holding it, plus ERROR worker_crashed
  std::uint32_t service = kNone;
  std::string client;               // the requester's routing id (empty for broker-made jobs)
  std::string sender;               // the requester's CURVE key name ("" without CURVE)
  zmq::message_t envelope;          // kept while in flight so the job can be redelivered
  zmq::message_t payload;           // first body frame; sealed for Courier clients
  std::vector<zmq::message_t> extra_body;  // MDP body frames after the first
  std::uint64_t deadline_ms = 0;
  std::uint32_t attempt = 1;
  std::uint32_t max_attempts = 1;
  ReplyMode mode = ReplyMode::kCall;
  bool dead_letter = false;         // a broker-made report counted in the dead-letter buffer
  bool owns_frames = false;         // envelope and payload copied out of the receive buffers
  bool answered = false;            // in flight past its deadline: the client was told already
  bool awaiting_commit = false;     // its store commit is pending: not dispatched nor ACCEPTed yet
  Durability durability = Durability::kMemory;  // kMemory: not in the store (whatever the service says)
  std::uint32_t worker = kNone;     // slot of the worker holding it, or kNone while queued
  std::uint32_t held_prev = kNone;  // the jobs its worker holds, a list through the jobs:
  std::uint32_t held_next = kNone;  // found without a scan of the job table
  std::uint32_t rejected_by = 0;    // serial of the worker that last could not open it (0: none)
  std::uint32_t deadline_pos = kNone;  // its entry in InFlightDeadlines, or kNone
  std::uint32_t bytes = 0;          // what it is charged against max_queued_bytes (frames + overhead)
  std::uint64_t seq = 0;            // accept order in the store (send and enqueue jobs)
  std::uint64_t accepted_ms = 0;
  SteadyTime enqueued_at{};
  SteadyTime dispatched_at{};
};

struct Worker {
  bool live = false;
  std::uint32_t serial = 0;         // unique per READY (never 0), unlike the reused slot
  std::string identity;
  std::string name;                 // how logs and job records name it (Broker::WorkerName)
  PeerKind kind = PeerKind::kMdp;
  std::uint32_t service = kNone;
  std::uint32_t capacity = 1;
  std::uint32_t weight = 1;
  std::int64_t current_weight = 0;  // smooth weighted round-robin state
  std::uint32_t in_flight = 0;
  std::uint32_t held_first = kNone;  // first of the jobs it holds (Job::held_next links the rest)
  std::uint32_t stuck = 0;          // CREDIT frame 4: slots whose handler overran its deadline
  SteadyTime expiry{};
  SteadyTime last_sent{};
  SteadyTime last_dispatch{};
  std::uint64_t dispatch_sequence = 0;  // orders ties: the least recently used goes first
  detail::ReadyInfo info;
};

struct Service {
  bool live = false;                // false: a pruned slot on the free list
  std::string name;
  ServicePolicy policy;
  std::deque<std::uint32_t> queue;  // job slots, front first
  bool long_queue = false;          // past Broker's kOwnFramesAbove: queued jobs own their frames
  std::vector<std::uint32_t> workers;
  bool served = false;              // a worker has registered it since this broker started
  std::size_t round_robin_cursor = 0;
  std::uint32_t in_flight = 0;
  std::uint64_t dispatched = 0;
  std::uint64_t replied = 0;
  std::uint64_t failed = 0;
  // Per-service parts of the broker-wide Counters, for /metrics (courier-broker --http).
  // They start at 0 again when a pruned service comes back (a counter reset to Prometheus).
  std::uint64_t accepted = 0;         // jobs queued (Counters::jobs_accepted)
  std::uint64_t answered = 0;         // replies and error replies from workers (jobs_answered)
  std::uint64_t busy_rejections = 0;  // refused busy at the queue's bounds
  std::uint64_t expired = 0;          // deadline passed while queued or in flight
  std::uint64_t redelivered = 0;      // handed out again with attempt + 1
  std::uint64_t dead_lettered = 0;
  std::size_t bytes = 0;            // bytes of the jobs it holds, queued or in flight
  SteadyTime last_used{};           // last SUBMIT/READY naming it, or its last worker leaving
};

// Returns: why `name` may not name a service ("" when it may): 1..255 bytes of valid UTF-8
// (no overlong forms, surrogates or code points past U+10FFFF) without control characters
// (U+0000..U+001F, U+007F..U+009F).
std::string_view ServiceNameProblem(std::string_view name);

// Transparent hashing so lookups by string_view allocate nothing.
struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view text) const noexcept {
    return std::hash<std::string_view>{}(text);
  }
};

// A slab of T with a free list: slots are reused, so steady traffic allocates nothing.
// Slots live in fixed chunks, so growing never moves (or copies) a slot and a reference to
// one stays valid until it is released; memory is never over-reserved by more than a chunk.
// A chunk whose slots are all free again is given back at once (but the first): after a
// burst, a few long-lived jobs no longer pin the burst's whole slab. Its slots stay on the
// free list and get a fresh chunk when next acquired; IsLive tells scans to skip them.
template <typename T>
class SlotPool {
 public:
  static constexpr std::uint32_t kChunk = 256;

  std::uint32_t Acquire() {
    std::uint32_t slot = 0;
    if (free_.empty()) {
      if (size_ % kChunk == 0) {
        chunks_.push_back(std::make_unique<T[]>(kChunk));
        chunk_live_.push_back(0);
      }
      slot = size_++;
    } else {
      slot = free_.back();
      free_.pop_back();
      if (!chunks_[slot / kChunk]) chunks_[slot / kChunk] = std::make_unique<T[]>(kChunk);
    }
    ++chunk_live_[slot / kChunk];
    (*this)[slot].live = true;
    return slot;
  }
  void Release(std::uint32_t slot) {
    (*this)[slot] = T{};
    free_.push_back(slot);
    const std::uint32_t chunk = slot / kChunk;
    if (--chunk_live_[chunk] == 0 && chunk != 0) chunks_[chunk].reset();
  }
  T& operator[](std::uint32_t slot) { return chunks_[slot / kChunk][slot % kChunk]; }
  const T& operator[](std::uint32_t slot) const { return chunks_[slot / kChunk][slot % kChunk]; }
  // Returns: whether `slot` (below capacity()) holds a live T. Scans use it: a slot of a
  // chunk given back must not be read.
  bool IsLive(std::uint32_t slot) const {
    const auto& chunk = chunks_[slot / kChunk];
    return chunk && chunk[slot % kChunk].live;
  }
  // Returns: one past the highest slot in use since the last Trim (the bound to scan).
  std::uint32_t capacity() const { return size_; }
  std::size_t live() const { return size_ - free_.size(); }
  // Gives the rest back once a burst has drained: when every slot is free, forgets all
  // chunks but the first (which steady one-at-a-time traffic keeps reusing) and the free
  // list that indexed them. Returns: whether anything was given back.
  bool Trim();

 private:
  std::vector<std::unique_ptr<T[]>> chunks_;
  std::vector<std::uint32_t> chunk_live_;  // live slots per chunk
  std::vector<std::uint32_t> free_;
  std::uint32_t size_ = 0;
};

template <typename T>
bool SlotPool<T>::Trim() {
  if (free_.size() != size_ || chunks_.size() <= 1) return false;  // only when empty: slots stay stable
  chunks_.resize(1);
  chunk_live_.assign(1, 0);
  if (!chunks_[0]) chunks_[0] = std::make_unique<T[]>(kChunk);
  size_ = std::min(size_, kChunk);
  std::vector<std::uint32_t> first;
  first.reserve(kChunk);
  for (std::uint32_t slot = size_; slot > 0; --slot) first.push_back(slot - 1);  // lowest slot first out
  free_.swap(first);
  return true;
}

// Dispatched jobs by deadline: a binary min-heap of job slots in which every job records
// its own position (Job::deadline_pos), so a job leaves it in O(log n) when it is
// answered, requeued or completed, and the sweep touches only the expired ones. It holds
// one entry per job in flight, so its size is bounded by the workers' total credit.
class InFlightDeadlines {
 public:
  explicit InFlightDeadlines(SlotPool<Job>& jobs) : jobs_(jobs) {}

  // Adds a dispatched job (not already held) under its deadline_ms.
  void Insert(std::uint32_t slot) {
    heap_.push_back(Entry{jobs_[slot].deadline_ms, slot});
    SiftUp(heap_.size() - 1);
  }
  // Removes the job's entry, if it has one.
  void Erase(std::uint32_t slot) {
    const std::uint32_t pos = jobs_[slot].deadline_pos;
    if (pos == kNone) return;
    jobs_[slot].deadline_pos = kNone;
    const Entry last = heap_.back();
    heap_.pop_back();
    if (pos == heap_.size()) return;
    Place(pos, last);
    SiftDown(pos);
    SiftUp(jobs_[last.slot].deadline_pos);
  }
  // Returns: the slot of a job whose deadline is at or before `now_ms`, removed from the
  // heap, or kNone when none is.
  std::uint32_t PopExpired(std::uint64_t now_ms) {
    if (heap_.empty() || heap_.front().deadline_ms > now_ms) return kNone;
    const std::uint32_t slot = heap_.front().slot;
    Erase(slot);
    return slot;
  }
  std::size_t size() const { return heap_.size(); }
  // Gives a burst's memory back once the heap holds far fewer entries than it has room for
  // (a few long-running jobs must not keep the burst's whole array).
  // Returns: whether anything was given back.
  bool Shrink() {
    if (heap_.capacity() <= 1024 || heap_.capacity() < 8 * heap_.size()) return false;
    heap_.shrink_to_fit();
    return true;
  }

 private:
  struct Entry {
    std::uint64_t deadline_ms;
    std::uint32_t slot;
  };
  void Place(std::size_t pos, const Entry& entry) {
    heap_[pos] = entry;
    jobs_[entry.slot].deadline_pos = static_cast<std::uint32_t>(pos);
  }
  void SiftUp(std::size_t pos) {
    const Entry entry = heap_[pos];
    while (pos > 0) {
      const std::size_t parent = (pos - 1) / 2;
      if (heap_[parent].deadline_ms <= entry.deadline_ms) break;
      Place(pos, heap_[parent]);
      pos = parent;
    }
    Place(pos, entry);
  }
  void SiftDown(std::size_t pos) {
    const Entry entry = heap_[pos];
    while (true) {
      std::size_t child = 2 * pos + 1;
      if (child >= heap_.size()) break;
      if (child + 1 < heap_.size() && heap_[child + 1].deadline_ms < heap_[child].deadline_ms) ++child;
      if (heap_[child].deadline_ms >= entry.deadline_ms) break;
      Place(pos, heap_[child]);
      pos = child;
    }
    Place(pos, entry);
  }

  SlotPool<Job>& jobs_;
  std::vector<Entry> heap_;
};

// Job id → slot of the job the broker holds under it. An open-addressing table of slots
// (linear probing, backward-shift deletion) whose keys are read from the jobs themselves:
// an entry costs 4 bytes, indexing a job allocates nothing (the table doubles as it fills,
// at most half full), and Shrink() gives a burst's table back once it has drained.
// A job must keep its id while it is indexed. Ids come from clients, so their bits are
// mixed with a random seed: crafted ids cannot pile up on one run of the table.
class JobIndex {
 public:
  static constexpr std::size_t kMinBuckets = 2048;

  JobIndex(const SlotPool<Job>& jobs, std::uint64_t seed) : jobs_(jobs), seed_(seed), table_(kMinBuckets, kNone) {
    SetBits(kMinBuckets);
  }

  // Returns: the slot indexed under `id`, or kNone.
  std::uint32_t Find(const JobId& id) const {
    for (std::size_t i = Home(id);; i = (i + 1) & Mask()) {
      const std::uint32_t slot = table_[i];
      if (slot == kNone || jobs_[slot].id == id) return slot;
    }
  }
  // Indexes `slot` under its job's id, unless that id is indexed already.
  void Insert(std::uint32_t slot) {
    if (2 * (count_ + 1) > table_.size()) Rehash(2 * table_.size());
    const JobId& id = jobs_[slot].id;
    std::size_t i = Home(id);
    for (; table_[i] != kNone; i = (i + 1) & Mask()) {
      if (jobs_[table_[i]].id == id) return;
    }
    table_[i] = slot;
    ++count_;
  }
  // Removes the entry for `id`, if any.
  void Erase(const JobId& id) {
    std::size_t hole = Home(id);
    for (;; hole = (hole + 1) & Mask()) {
      if (table_[hole] == kNone) return;
      if (jobs_[table_[hole]].id == id) break;
    }
    // Pull back every later entry of the run that may not sit past the hole.
    for (std::size_t next = (hole + 1) & Mask(); table_[next] != kNone; next = (next + 1) & Mask()) {
      const std::size_t home = Home(jobs_[table_[next]].id);
      const bool stays = hole < next ? (home > hole && home <= next) : (home > hole || home <= next);
      if (stays) continue;
      table_[hole] = table_[next];
      hole = next;
    }
    table_[hole] = kNone;
    --count_;
  }
  std::size_t size() const { return count_; }
  // Gives a burst's table back once it holds far fewer entries than it has buckets: down to
  // a quarter full (or the minimum), so it does not grow again at once.
  // Returns: whether anything was given back.
  bool Shrink() {
    if (table_.size() <= kMinBuckets || table_.size() < 16 * count_) return false;
    std::size_t buckets = kMinBuckets;
    while (buckets < 4 * count_) buckets *= 2;
    Rehash(buckets);
    return true;
  }

 private:
  std::size_t Mask() const { return table_.size() - 1; }
  // Fibonacci hashing of the seeded id: the top `bits_` bits of the product.
  std::size_t Home(const JobId& id) const {
    return static_cast<std::size_t>(((JobIdHash{}(id) ^ seed_) * 0x9E3779B97F4A7C15ULL) >> (64 - bits_));
  }
  void SetBits(std::size_t buckets) {
    bits_ = 0;
    while ((std::size_t{1} << bits_) < buckets) ++bits_;
  }
  void Rehash(std::size_t buckets) {
    std::vector<std::uint32_t> old(buckets, kNone);
    old.swap(table_);
    SetBits(buckets);
    for (const std::uint32_t slot : old) {
      if (slot == kNone) continue;
      std::size_t i = Home(jobs_[slot].id);
      while (table_[i] != kNone) i = (i + 1) & Mask();
      table_[i] = slot;
    }
  }

  const SlotPool<Job>& jobs_;
  std::uint64_t seed_;
  std::vector<std::uint32_t> table_;  // slots; kNone = empty; size a power of two (2^bits_)
  unsigned bits_ = 0;
  std::size_t count_ = 0;
};

}  // namespace courier::broker
