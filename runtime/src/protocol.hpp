// protocol.hpp — the wire constants of schemas/PROTOCOL.md. Change the spec first.
//
// Every message on a broker socket is, after the ROUTER identity frame:
//   frame 0: empty            (the REQ delimiter; Courier peers send it too)
//   frame 1: protocol header  ("MDPC01", "MDPW01", "CRC01" or "CRW01")
//   frame 2: ...              (see each command below)
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace courier::detail {

// Plain Majordomo (RFC 7/MDP, MDP/0.1).
inline constexpr std::string_view kMdpClient = "MDPC01";
inline constexpr std::string_view kMdpWorker = "MDPW01";
// Courier's own peers: a header of their own, so a broker never mistakes one for the other.
inline constexpr std::string_view kCourierClient = "CRC01";
inline constexpr std::string_view kCourierWorker = "CRW01";

// Worker commands. 0x01..0x05 are MDP/0.1's; Courier workers add 0x06 and up.
enum class WorkerCommand : std::uint8_t {
  kReady = 0x01,       // W→B  MDP: service | CRW: service, ready-info
  kRequest = 0x02,     // B→W  MDP: client addr, empty, body... | CRW: envelope, payload
  kReply = 0x03,       // W→B  MDP: client addr, empty, body... | CRW: envelope, payload
  kHeartbeat = 0x04,   // both ways
  kDisconnect = 0x05,  // both ways
  kError = 0x06,       // W→B  CRW: error body [job id, code, message]
  kCredit = 0x07,      // W→B  CRW: new capacity (uint)
  kReject = 0x08,      // W→B  CRW: [job id, code]: give the job to another worker
};

// Courier client commands (after the "CRC01" header).
enum class ClientCommand : std::uint8_t {
  kSubmit = 0x01,      // C→B  envelope, payload
  kAccept = 0x02,      // B→C  job id (16 bytes); modes send and enqueue, once stored
  kReply = 0x03,       // B→C  envelope, payload
  kError = 0x04,       // B→C  error body [job id, code, message]
  kQuery = 0x05,       // C→B  correlation id, query body [name, args]
  kQueryReply = 0x06,  // B→C  correlation id, reply body
  kPing = 0x07,        // C→B  correlation id
  kPong = 0x08,        // B→C  correlation id
  kCancel = 0x09,      // reserved: C→B job id
  kPartial = 0x0A,     // reserved: B→C envelope, payload (streamed reply chunk)
};

// RFC 8/MMI.
inline constexpr std::string_view kMmiPrefix = "mmi.";
inline constexpr std::string_view kMmiService = "mmi.service";

// Services every deployment knows by name.
inline constexpr std::string_view kErrorSinkService = "courier.errors";
inline constexpr std::string_view kMetricsService = "courier.metrics";

// Defaults named in PROTOCOL.md, "Defaults".
inline constexpr std::string_view kDefaultEndpoint = "tcp://127.0.0.1:5555";
inline constexpr std::chrono::milliseconds kDefaultHeartbeatInterval{2500};
inline constexpr std::uint32_t kDefaultHeartbeatLiveness = 3;
inline constexpr std::uint32_t kDefaultMaxAttempts = 3;
inline constexpr std::chrono::milliseconds kDefaultDeadline{30000};
inline constexpr std::size_t kDefaultQueueLimit = 100000;
inline constexpr std::size_t kDefaultMaxMessageBytes = 16 * 1024 * 1024;
inline constexpr std::size_t kMaxServiceNameBytes = 255;

inline constexpr std::size_t kJobIdBytes = 16;
inline constexpr std::size_t kTraceIdBytes = 16;
inline constexpr std::size_t kNonceBytes = 24;  // crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
inline constexpr std::size_t kKeyBytes = 32;    // crypto_aead_xchacha20poly1305_ietf_KEYBYTES
inline constexpr std::size_t kTagBytes = 16;    // crypto_aead_xchacha20poly1305_ietf_ABYTES

}  // namespace courier::detail
