// frames.hpp — the small MessagePack bodies of protocol commands other than the envelope
// (schemas/PROTOCOL.md: error body, ready info, credit, reject, query, query reply).
// Decoders are strict: wrong shapes throw Error(kBadRequest).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "courier/error.hpp"
#include "courier/job.hpp"

namespace courier::detail {

struct ErrorBody {
  JobId job_id;  // all zero when the job is unknown
  ErrorCode code = ErrorCode::kInternal;
  std::string message;
};
std::string EncodeErrorBody(const JobId& job_id, ErrorCode code, std::string_view message);
// Unknown code numbers decode as kInternal, so a newer peer's code is never dropped.
ErrorBody DecodeErrorBody(std::string_view bytes);

inline constexpr std::uint32_t kWorkerProtocolVersion = 1;
inline constexpr std::uint32_t kMaxCapacity = 100000;
inline constexpr std::uint32_t kMaxWeight = 1000;

struct ReadyInfo {
  std::uint32_t protocol_version = kWorkerProtocolVersion;
  std::uint32_t capacity = 1;  // 1..kMaxCapacity
  std::uint32_t weight = 1;    // 1..kMaxWeight
  std::string host;
  std::uint64_t pid = 0;
  std::string instance;
};
std::string EncodeReadyInfo(const ReadyInfo& info);
ReadyInfo DecodeReadyInfo(std::string_view bytes);

std::string EncodeCredit(std::uint32_t capacity);
std::uint32_t DecodeCredit(std::string_view bytes);

struct RejectBody {
  JobId job_id;
  ErrorCode code = ErrorCode::kShuttingDown;
};
std::string EncodeReject(const JobId& job_id, ErrorCode code);
RejectBody DecodeReject(std::string_view bytes);

// QUERY body: [name, args map]; the broker's queries take no arguments yet.
std::string EncodeQuery(std::string_view name);
std::string DecodeQueryName(std::string_view bytes);

}  // namespace courier::detail
