#include "random_bytes.hpp"

#include <pthread.h>
#include <sodium.h>

#include <array>
#include <atomic>
#include <cstring>
#include <mutex>

#include "sodium_init.hpp"

namespace courier::detail {
namespace {

constexpr std::size_t kBlockBytes = 1024;

// Bumped in every forked child: a thread's buffer drawn before the fork is then stale.
std::atomic<std::uint64_t> fork_generation{1};

void OnFork() { fork_generation.fetch_add(1, std::memory_order_relaxed); }

struct Pool {
  std::array<std::uint8_t, kBlockBytes> bytes{};
  std::size_t used = kBlockBytes;  // empty until first drawn
  std::uint64_t generation = 0;

  ~Pool() { sodium_memzero(bytes.data(), bytes.size()); }
};

}  // namespace

void RandomBytes(std::uint8_t* out, std::size_t size) {
  static std::once_flag registered;
  std::call_once(registered, [] {
    EnsureSodium();
    pthread_atfork(nullptr, nullptr, OnFork);
  });
  if (size > kBlockBytes / 4) {  // large requests gain nothing from the buffer
    randombytes_buf(out, size);
    return;
  }
  thread_local Pool pool;
  const std::uint64_t generation = fork_generation.load(std::memory_order_relaxed);
  if (pool.generation != generation) {
    pool.used = kBlockBytes;
    pool.generation = generation;
  }
  if (kBlockBytes - pool.used < size) {
    randombytes_buf(pool.bytes.data(), pool.bytes.size());
    pool.used = 0;
  }
  std::memcpy(out, pool.bytes.data() + pool.used, size);
  // Handed out once: wiped so the buffer never holds a value someone else already has.
  sodium_memzero(pool.bytes.data() + pool.used, size);
  pool.used += size;
}

}  // namespace courier::detail
