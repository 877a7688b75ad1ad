// frames.hpp — the small MessagePack bodies of protocol commands other than the envelope
// (schemas/PROTOCOL.md: error body, ready info, credit, reject, query, query reply).
// Decoders are strict: wrong shapes throw Error(kBadRequest).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

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

// A key the worker holds, as READY announces it: never the key, only its fingerprint.
struct KeyFingerprint {
  std::uint32_t id = 0;
  std::string fingerprint;  // Keyring::Fingerprint: 8 bytes
};
inline constexpr std::size_t kMaxReadyKeys = 64;

struct ReadyInfo {
  std::uint32_t protocol_version = kWorkerProtocolVersion;
  std::uint32_t capacity = 1;  // 1..kMaxCapacity
  std::uint32_t weight = 1;    // 1..kMaxWeight
  std::string host;
  std::uint64_t pid = 0;
  std::string instance;
  // Field 7 (optional; absent from older workers): the payload keys the host holds, so
  // the broker can show them and warn when workers of one service disagree on a key.
  std::vector<KeyFingerprint> keys;
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

// QUERY body: [name, args map]; services, workers and stats take no arguments (the job
// and jobs queries, which do, are in wire/job_records.hpp).
std::string EncodeQuery(std::string_view name);
std::string DecodeQueryName(std::string_view bytes);

}  // namespace courier::detail
