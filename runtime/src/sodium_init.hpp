// sodium_init.hpp — libsodium must be initialised once before its RNG or ciphers are used.
#pragma once

namespace courier::detail {

// Initialises libsodium (thread-safe, idempotent). Throws: Error(kInternal) if it cannot.
void EnsureSodium();

}  // namespace courier::detail
