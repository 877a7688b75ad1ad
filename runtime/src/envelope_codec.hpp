// envelope_codec.hpp — the job envelope's wire form (schemas/PROTOCOL.md, "The job envelope").
//
//   fixarray(12..15) [version=1, attempt:uint32 (always 0xce + 4 bytes), job_id:bin16,
//                     service:str, created_at_ms:uint, deadline_ms:uint, max_attempts:uint,
//                     priority:uint, trace_id:bin(0|16), key_id:uint, nonce:bin(0|24),
//                     mode:uint, ...reserved elements that version 1 decoders skip]
//
// `attempt` sits at a fixed byte offset so a broker can rewrite it in place, and it is left
// out of the associated data (AssociatedData) so the rewrite does not break the seal.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "courier/job.hpp"

namespace courier::detail {

inline constexpr std::size_t kAttemptOffset = 3;   // first of the 4 big-endian attempt bytes
inline constexpr std::size_t kMinEnvelopeBytes = 37;  // every field at its smallest
inline constexpr std::size_t kMaxEnvelopeBytes = 512;

// A decoded envelope whose service name points into the frame it came from.
struct EnvelopeView {
  std::uint32_t version = 0;
  std::uint32_t attempt = 0;
  JobId job_id;
  std::string_view service;
  std::uint64_t created_at_ms = 0;
  std::uint64_t deadline_ms = 0;
  std::uint32_t max_attempts = 0;
  std::uint32_t priority = 0;
  std::array<std::uint8_t, 16> trace_id{};
  std::uint32_t key_id = 0;
  std::array<std::uint8_t, 24> nonce{};
  ReplyMode mode = ReplyMode::kCall;

  Envelope ToEnvelope() const;
};

// Returns: the envelope's wire bytes. Throws: Error(kBadRequest) if a field is out of range
// (empty or over-long service, zero deadline, zero max_attempts).
std::string EncodeEnvelope(const Envelope& envelope);

// Returns: the decoded envelope. Throws: Error(kBadRequest) for anything that is not a
// well-formed version 1 envelope, saying what is wrong.
EnvelopeView DecodeEnvelope(std::string_view bytes);

// Rewrites the attempt field of well-formed envelope bytes in place.
void PatchAttempt(char* envelope_bytes, std::size_t size, std::uint32_t attempt);

// Writes into `out` the associated data a seal binds: the envelope bytes with the attempt
// field zeroed. Returns: the bytes written (== bytes.size()).
std::string_view AssociatedData(std::string_view envelope_bytes,
                                char (&out)[kMaxEnvelopeBytes]);

}  // namespace courier::detail
