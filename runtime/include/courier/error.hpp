// courier/error.hpp — the one exception type Courier throws, and the closed set of codes
// that travel on the wire (schemas/PROTOCOL.md, "Error codes").
//
// Contract: every failure Courier reports to a caller is a courier::Error whose code() is
// one of ErrorCode. Codes numbered below 100 may cross the wire; kConfig and kIo are local.
// Thread-safety: immutable values, safe to share.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace courier {

enum class ErrorCode : std::uint16_t {
  kBadRequest = 1,          // malformed frame, envelope or payload encoding
  kUnauthenticated = 2,     // payload failed to open: tampered, wrong key or replayed elsewhere
  kNoSuchService = 3,       // no worker host serves this service
  kBusy = 4,                // a bounded queue is full; retry later
  kDeadlineExceeded = 5,    // the job's deadline passed before it was answered
  kHandlerError = 6,        // the service's handler threw or reported a failure
  kWorkerLost = 7,          // the worker holding the job vanished; it may be redelivered
  kAttemptsExhausted = 8,   // every allowed attempt failed; the job is dead-lettered
  kInvalidPayload = 9,      // the payload does not satisfy the service's schema
  kUnknownKey = 10,         // the payload is sealed with a key id the receiver does not hold
  kUnavailable = 11,        // no broker answered
  kTooLarge = 12,           // a message exceeded the configured maximum size
  kInternal = 13,           // a bug or an unexpected condition; see the logs
  kCancelled = 14,          // reserved: the job was cancelled by its client
  kShuttingDown = 15,       // the receiver is draining and takes no new jobs
  kUnauthorized = 16,       // the transport key is not on the allow-list for this role
  kWorkerCrashed = 17,      // the process running the handler died (signal, abort, exit)
  kNotFound = 18,           // no job under this id here (never accepted, or its result expired)
  kInvalidReply = 19,       // the handler's reply does not satisfy the service's [reply] schema
  kConfig = 100,            // local only: a configuration or key file is invalid
  kIo = 101,                // local only: a file or socket operation failed
};

// Returns: the stable snake_case name used in logs, JSON and the CLI ("busy", ...).
std::string_view ToString(ErrorCode code) noexcept;

// Returns: the code with that name or number, or std::nullopt.
std::optional<ErrorCode> ParseErrorCode(std::string_view name_or_number) noexcept;

// Returns: whether the code is known on the wire (unknown numbers map to kInternal).
bool IsWireCode(std::uint32_t number) noexcept;

// Returns: whether a client may resend the same job (same id) after this error.
bool IsRetryable(ErrorCode code) noexcept;

class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& message);

  ErrorCode code() const noexcept { return code_; }

 private:
  ErrorCode code_;
};

}  // namespace courier
