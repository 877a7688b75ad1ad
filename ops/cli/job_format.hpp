// job_format.hpp — how `courier job` and `courier jobs` show stored jobs (courier::JobStatus):
// the key/value view of one job, the table row, the JSON form, the exit code, and the
// times. Pure, so cli_support_test.cpp tests it without a broker. Usage: ops/cli/CLI.md.
// Thread-safety: pure functions.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "courier/client.hpp"
#include "courier/value.hpp"

namespace courier::cli {

// Returns: `unix_ms` as UTC ISO 8601 with milliseconds, e.g. "2023-11-14T22:13:20.000Z";
// "-" for 0.
std::string FormatUnixMs(std::uint64_t unix_ms);

// Returns: how long before `now_ms` `since_ms` was, e.g. "850ms", "42s", "3m12s", "5h4m",
// "2d3h" ("0ms" for a time in the future; "-" for 0).
std::string FormatAge(std::uint64_t since_ms, std::uint64_t now_ms);

// Returns: the job as JSON: {id, service, state, attempt, max_attempts, worker, since_ms,
// expires_ms, durable, broker, error?: {code, message}, result?}. `result` (the opened
// reply) only when the status has one (courier job of a done job).
Value JobStatusJson(const JobStatus& status);

// Returns: `courier job`'s key/value lines ("state    done", ...; each ends with a
// newline). The worker for a running job, code and message for a failed or dead one, the
// result as compact JSON for a done one; `now_ms` for the ages.
std::string JobStatusText(const JobStatus& status, std::uint64_t now_ms);

// The `courier jobs` table: header and one row per job.
std::vector<std::string> JobsTableHeader();
std::vector<std::string> JobsTableRow(const JobStatus& status, std::uint64_t now_ms);

// `courier job`'s exit code: kExitOk for done, kExitJobErrors for failed or dead,
// kExitPending while queued or running (the wait ended first).
int JobExitCode(const JobStatus& status);

// Parses `courier job --wait`: a bare number is seconds ("5", "1.5"), otherwise a duration
// as ParseDuration reads it ("500ms", "2m"); "0" is no wait. At most 24 h.
// Throws: std::invalid_argument naming the text.
std::chrono::milliseconds ParseWait(std::string_view text);

}  // namespace courier::cli
