// wire/job_records.hpp — the job-lookup messages of schemas/PROTOCOL.md §9.1: the `job` and
// `jobs` management queries and the job record both answer with. Encoded once here, read
// by the broker (which answers them) and the client SDK and CLI (which ask).
//
// Bodies are string-keyed maps declared with msgpack-c's map adaptor: lookups are rare and
// readable beats fast; unknown keys are ignored, missing keys keep their defaults.
// Decoders throw Error(kBadRequest) on anything malformed (sizes are bounded by the
// caller's DecodeLimits).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "courier/error.hpp"
#include "courier/job.hpp"

namespace courier::wire {

// Where a job is in its life. queued and running are held in the broker's memory (and, for
// stored jobs, on disk); done, failed and dead are results kept for the service's result_ttl.
enum class JobState : std::uint8_t { kQueued, kRunning, kDone, kFailed, kDead };
std::string_view ToString(JobState state) noexcept;
// Returns: the state named `name` ("queued", ...), or std::nullopt.
std::optional<JobState> ParseJobState(std::string_view name) noexcept;

inline constexpr std::string_view kJobQueryName = "job";
inline constexpr std::string_view kJobsQueryName = "jobs";
// The longest a `job` query may ask the broker to wait for a job to finish.
inline constexpr std::uint64_t kMaxJobWaitMs = 60000;
// Rows a `jobs` query returns at most per page.
inline constexpr std::uint32_t kMaxJobsPage = 1000;

// QUERY ["job", {id, wait_ms}]: one job's record. With wait_ms > 0 the broker answers when
// the job leaves queued/running, or after wait_ms with its state then.
struct JobQuery {
  JobId id;
  std::uint64_t wait_ms = 0;  // clamped to kMaxJobWaitMs by the broker
};

// QUERY ["jobs", {service, state, limit, after}]: a page of stored jobs, oldest first.
struct JobsQuery {
  std::string service;                // "" = every service
  std::optional<JobState> state;      // nullopt = every state
  std::uint32_t limit = 100;          // 1..kMaxJobsPage
  std::uint64_t after = 0;            // the `next` cursor of the previous page (0: from the start)
};

struct JobRecord {
  JobId id;
  std::string service;
  JobState state = JobState::kQueued;
  std::uint32_t attempt = 1;
  std::uint32_t max_attempts = 1;
  std::string worker;                 // running: the worker holding it ("" otherwise)
  std::uint64_t since_ms = 0;         // Unix ms when it entered its state
  ErrorCode code = ErrorCode::kInternal;  // failed and dead only
  std::string message;                // failed and dead only
  std::uint64_t expires_ms = 0;       // done, failed, dead: when the result is forgotten
  bool durable = true;                // false: a durability = "memory" job (lost with the broker)
  // done only, and only in a `job` answer: the worker's reply frames as the broker got
  // them ([reply envelope][sealed payload] from a Courier worker; an MDP worker's body).
  std::vector<std::string> reply;
};

struct JobsPage {
  std::vector<JobRecord> rows;
  std::uint64_t next = 0;             // cursor for the next page; 0 when this is the last
};

// QUERY bodies (the `QUERY` command's frame 4).
std::string EncodeQuery(const JobQuery& query);
std::string EncodeQuery(const JobsQuery& query);
// `body` is a whole QUERY body whose name is "job" / "jobs".
JobQuery DecodeJobQuery(std::string_view body);
JobsQuery DecodeJobsQuery(std::string_view body);

// Results (QUERY_REPLY status 0).
std::string EncodeJobRecord(const JobRecord& record);
JobRecord DecodeJobRecord(std::string_view bytes);
std::string EncodeJobsPage(const JobsPage& page);
JobsPage DecodeJobsPage(std::string_view bytes);

// QUERY_REPLY body [0, result] around an encoded result.
std::string EncodeQueryReply(std::string_view result);
// Returns: the result of a QUERY_REPLY body. Throws: Error with the broker's code and
// message when its status is not 0; Error(kBadRequest) when the body is malformed.
std::string_view QueryResult(std::string_view reply_body);

}  // namespace courier::wire
