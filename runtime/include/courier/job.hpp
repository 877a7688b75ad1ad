// courier/job.hpp — job identity and the cleartext envelope that brokers route on.
//
// The envelope's wire form is fixed by schemas/PROTOCOL.md, "The job envelope". The
// payload it travels with is sealed separately (courier/keyring.hpp) and bound to these
// fields as associated data, except `attempt`, which brokers rewrite on redelivery.
// Thread-safety: plain values.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace courier {

// A 16-byte random identifier; the same id is kept across retries and redeliveries.
struct JobId {
  std::array<std::uint8_t, 16> bytes{};

  // Returns: a fresh id from libsodium's CSPRNG.
  static JobId Random();
  // (A stable id for an idempotency key comes from Keyring::JobIdFor: keyed, so nobody
  // without the payload key can predict it.)
  // Returns: the id whose 32 lowercase hex digits are `hex`, or std::nullopt.
  static std::optional<JobId> FromHex(std::string_view hex);
  // Returns: the id held in a 16-byte binary string, or std::nullopt.
  static std::optional<JobId> FromBytes(std::string_view raw);

  std::string Hex() const;
  std::string_view View() const {
    return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
  }
  bool IsZero() const;

  auto operator<=>(const JobId&) const = default;
};

struct JobIdHash {
  std::size_t operator()(const JobId& id) const noexcept;
};

// What the sender expects back.
enum class ReplyMode : std::uint8_t {
  kCall = 0,   // a reply (or an error) is routed back to the client
  kSend = 1,   // fire-and-forget: the broker acknowledges acceptance, no reply follows
  kReply = 2,  // this envelope travels with a reply payload
  // Accepted once stored; the reply is kept by the broker under the job id for the
  // service's result_ttl, fetched later (Client::Result), from any process.
  kEnqueue = 3,
};

inline constexpr std::uint32_t kEnvelopeVersion = 1;
inline constexpr std::uint32_t kUnsealedKeyId = 0;  // payload is cleartext MessagePack

struct Envelope {
  std::uint32_t version = kEnvelopeVersion;
  std::uint32_t attempt = 1;            // 1 on first delivery; brokers add 1 per redelivery
  JobId job_id;
  std::string service;                  // at most 255 bytes, UTF-8
  std::uint64_t created_at_ms = 0;      // Unix time, milliseconds
  std::uint64_t deadline_ms = 0;        // Unix time, milliseconds; never 0 on the wire
  std::uint32_t max_attempts = 3;       // >= 1
  std::uint32_t priority = 0;           // reserved: 0..9, brokers of version 1 ignore it
  std::array<std::uint8_t, 16> trace_id{};
  std::uint32_t key_id = kUnsealedKeyId;
  std::array<std::uint8_t, 24> nonce{};
  ReplyMode mode = ReplyMode::kCall;
};

// Returns: milliseconds since the Unix epoch (the clock deadlines are written in).
std::uint64_t NowUnixMs();

}  // namespace courier
