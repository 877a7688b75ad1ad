// random_bytes.hpp — unpredictable bytes for nonces and job ids without a system call each.
#pragma once

#include <cstddef>
#include <cstdint>

namespace courier::detail {

// Fills `out` with bytes from libsodium's CSPRNG, drawn a block at a time into a per-thread
// buffer: every seal needs a fresh nonce and every job an id, and one getrandom(2) per
// value was a measurable share of a client's CPU. A forked child never reuses its
// parent's buffered bytes (a repeated XChaCha20 nonce would be fatal).
// Thread-safety: safe from any thread.
void RandomBytes(std::uint8_t* out, std::size_t size);

}  // namespace courier::detail
