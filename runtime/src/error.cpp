#include "courier/error.hpp"

#include <array>
#include <charconv>
#include <utility>

namespace courier {
namespace {

constexpr std::array<std::pair<ErrorCode, std::string_view>, 21> kNames{{
    {ErrorCode::kBadRequest, "bad_request"},
    {ErrorCode::kUnauthenticated, "unauthenticated"},
    {ErrorCode::kNoSuchService, "no_such_service"},
    {ErrorCode::kBusy, "busy"},
    {ErrorCode::kDeadlineExceeded, "deadline_exceeded"},
    {ErrorCode::kHandlerError, "handler_error"},
    {ErrorCode::kWorkerLost, "worker_lost"},
    {ErrorCode::kAttemptsExhausted, "attempts_exhausted"},
    {ErrorCode::kInvalidPayload, "invalid_payload"},
    {ErrorCode::kUnknownKey, "unknown_key"},
    {ErrorCode::kUnavailable, "unavailable"},
    {ErrorCode::kTooLarge, "too_large"},
    {ErrorCode::kInternal, "internal"},
    {ErrorCode::kCancelled, "cancelled"},
    {ErrorCode::kShuttingDown, "shutting_down"},
    {ErrorCode::kUnauthorized, "unauthorized"},
    {ErrorCode::kWorkerCrashed, "worker_crashed"},
    {ErrorCode::kNotFound, "not_found"},
    {ErrorCode::kInvalidReply, "invalid_reply"},
    {ErrorCode::kConfig, "config"},
    {ErrorCode::kIo, "io"},
}};

}  // namespace

std::string_view ToString(ErrorCode code) noexcept {
  for (const auto& [value, name] : kNames) {
    if (value == code) return name;
  }
  return "unknown";
}

std::optional<ErrorCode> ParseErrorCode(std::string_view text) noexcept {
  std::uint32_t number = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), number);
  const bool numeric = ec == std::errc{} && end == text.data() + text.size();
  for (const auto& [value, name] : kNames) {
    if (numeric ? static_cast<std::uint32_t>(value) == number : name == text) return value;
  }
  return std::nullopt;
}

bool IsWireCode(std::uint32_t number) noexcept { return number >= 1 && number <= 19; }

bool IsRetryable(ErrorCode code) noexcept {
  switch (code) {
    case ErrorCode::kBusy:
    case ErrorCode::kWorkerLost:
    case ErrorCode::kUnavailable:
    case ErrorCode::kShuttingDown:
      return true;
    default:
      return false;
  }
}

Error::Error(ErrorCode code, const std::string& message)
    : std::runtime_error(message), code_(code) {}

}  // namespace courier
