// stored_jobs.hpp — the socket-free parts of reaching stored jobs (PROTOCOL.md §6.5, §9.1):
// the `job` query one lookup sends to each broker and how its answers decide the lookup,
// opening a kept reply exactly as a call's reply is opened (§5.1), Result's error mapping,
// and paging and merging `jobs` over several brokers. Client (client.cpp) drives them from
// its I/O and caller threads; client_core_test.cpp and stored_jobs_test.cpp test them alone.
//
// Thread-safety: pure functions and plain values; a JobLookup or JobsCursor belongs to one
// thread at a time (the caller locks).
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "client/client_core.hpp"
#include "courier/client.hpp"
#include "courier/error.hpp"
#include "courier/job.hpp"
#include "courier/keyring.hpp"
#include "wire/job_records.hpp"

namespace courier::detail {

// Verifies and opens a reply for job `id` of `service` (PROTOCOL.md §5.1): the envelope must
// decode, be a reply (mode 2) for that job and service, and be sealed (the client always
// seals its requests, so an unsealed reply could be forged by anyone on the path).
// Returns: the reply's MessagePack. Throws: Error(kBadRequest) for an envelope that does not
// decode; Error(kUnauthenticated) for the rule breaks above; Keyring::Open's errors
// (kUnknownKey, kUnauthenticated).
std::string OpenReply(const Keyring& keyring, const JobId& id, std::string_view service,
                      std::string_view envelope, std::string_view payload);

// Returns: the QUERY asking `broker` for job `id`: body ["job", {id, wait_ms}] with the wait
// capped at wire::kMaxJobWaitMs, and a deadline of that wait plus failover_timeout from
// `now` (the broker may hold the question for the whole wait). `done` is left empty.
QueryRequest JobQueryRequest(const JobId& id, std::chrono::milliseconds wait, std::size_t broker,
                             std::chrono::milliseconds failover_timeout, SteadyTime now);

// One lookup of a job over every broker: the first record decides it; with none, the
// answers together do (all kNotFound → kNotFound, else the first other error).
class JobLookup {
 public:
  // `endpoints` name the brokers (for messages); `wait` is the caller's whole wait.
  JobLookup(const JobId& id, std::vector<std::string> endpoints, std::chrono::milliseconds wait,
            SteadyTime started);

  struct Step {
    enum class Kind : std::uint8_t {
      kPending,  // keep waiting for the other brokers' answers
      kAskAgain, // the job is still pending and the wait is not over: ask `broker` again
      kDone,     // decided: see record() / error()
    };
    Kind kind = Kind::kPending;
    std::size_t broker = kNoBroker;        // kAskAgain
    std::chrono::milliseconds wait{0};     // kAskAgain: the wait left
  };

  // Feeds `broker`'s answer to a `job` query that asked the broker to wait `asked`.
  // Answers after kDone are ignored (kDone again).
  Step OnAnswer(std::size_t broker, const QueryOutcome& outcome, std::chrono::milliseconds asked,
                SteadyTime now);

  const JobId& id() const { return id_; }
  bool done() const { return done_; }
  // After kDone: the record and the broker that sent it, or the error; exactly one is set.
  const std::optional<wire::JobRecord>& record() const { return record_; }
  std::size_t record_broker() const { return record_broker_; }
  const std::optional<Error>& error() const { return error_; }
  // Moves the record out (after kDone with a record).
  wire::JobRecord TakeRecord() { return std::move(*record_); }

 private:
  void Decide();

  JobId id_;
  std::vector<std::string> endpoints_;
  SteadyTime wait_until_;
  std::vector<std::optional<Error>> answers_;  // per broker: its error (kNotFound...) once it answered
  std::vector<bool> answered_;
  std::size_t outstanding_;
  bool done_ = false;
  std::optional<wire::JobRecord> record_;
  std::size_t record_broker_ = kNoBroker;
  std::optional<Error> error_;
};

// Returns: `record` as a JobStatus from `broker`. With a keyring, a kDone record's reply
// frames ([reply envelope][sealed payload]) are opened with OpenReply into `result`.
// Throws: Error(kBadRequest) for a kDone record without exactly those two frames, or a reply
// that is not MessagePack; OpenReply's errors.
JobStatus ToJobStatus(wire::JobRecord record, std::string broker, const Keyring* keyring);

// Returns: a kDone job's result. Throws: a kFailed or kDead job's error;
// Error(kDeadlineExceeded, "job ... still <state> after <wait>") while it is not final;
// Error(kBadRequest) for a kDone status without a result.
Value ResultOf(JobStatus status, std::chrono::milliseconds wait);

// One broker's side of a Jobs listing: its rows so far and where its next page starts.
struct JobsCursor {
  std::string broker;
  std::vector<JobStatus> rows;
  std::uint64_t after = 0;       // the `after` of the next page to ask for
  bool finished = false;         // nothing more to ask (last page, limit reached, or an error)
  std::optional<Error> error;    // set when the broker did not answer or refused
};

// Returns: the next `jobs` QUERY body for this broker (["jobs", {service, state, limit,
// after}], limit = the rows still wanted, at most wire::kMaxJobsPage), or std::nullopt when
// the cursor is finished.
std::optional<std::string> NextJobsQuery(const JobsCursor& cursor, const JobsFilter& filter);

// Feeds the answer to the query NextJobsQuery made: appends the page's rows that match
// `filter` and advances (finished on the last page, at filter.limit rows, on a `next` that
// does not advance, or on an error).
void AddJobsAnswer(JobsCursor& cursor, const QueryOutcome& outcome, const JobsFilter& filter);

// Returns: at most `limit` rows of all cursors, each broker's rows in its own order
// (acceptance order), interleaved by since_ms (ties: broker order).
// Throws: the first cursor's error if no cursor got an answer.
std::vector<JobStatus> MergeJobs(const std::vector<JobsCursor>& cursors, std::size_t limit);

}  // namespace courier::detail
