// store_ops.hpp — what the routing core asks its store to do. The core stays disk-free: it
// appends StoreOps while it handles messages, and the loop commits them in one transaction
// per turn (group commit), then tells the core how the commit went (Broker::OnStoreCommitted).
// Plain data; no thread-safety of its own.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "courier/error.hpp"
#include "courier/job.hpp"
#include "wire/job_records.hpp"

namespace courier::broker {

// What "accepted" promises for a service's send and enqueue jobs (PROTOCOL.md §6.5).
enum class Durability : std::uint8_t {
  kMemory,  // nothing written: lost with the broker
  kWrite,   // committed to the operating system before ACCEPT: survives a broker crash
  kFsync,   // flushed to disk before ACCEPT: survives power loss
};
std::string_view ToString(Durability durability);

// Who submitted a stored job, so a restarted broker rebuilds it the same way.
enum class StoredOrigin : std::uint8_t { kCourier, kTitanic, kInternal };

// A job as the store keeps it (kAddJob), and as a restarted broker gets it back.
struct StoredJob {
  JobId id;
  std::uint64_t seq = 0;          // accept order; restored jobs keep it
  std::string service;
  StoredOrigin origin = StoredOrigin::kCourier;
  ReplyMode mode = ReplyMode::kSend;
  Durability durability = Durability::kFsync;
  std::string envelope;           // as received (attempt as first sent)
  std::string payload;
  std::vector<std::string> extra_body;  // Titanic requests: frames after the first
  std::string sender;             // CURVE key name, "" without CURVE
  std::uint32_t attempt = 1;      // the attempt of its last dispatch (or 1)
  std::uint32_t max_attempts = 1;
  std::uint64_t deadline_ms = 0;
  std::uint64_t accepted_ms = 0;
  bool dispatched = false;        // a worker held it when the store last heard
  std::string worker;             // that worker
  std::uint64_t since_ms = 0;     // when it was accepted, or last dispatched
};

struct StoreOp {
  enum class Kind : std::uint8_t {
    kAddJob,        // job
    kDispatched,    // job.seq (the store's key of a job), job.attempt, job.worker, job.since_ms
    kRemoveJob,     // job.seq
    kAddResult,     // result (replaces the job row in the same transaction order)
    kRemoveResult,  // id (titanic.close)
  };
  Kind kind = Kind::kAddJob;
  Durability durability = Durability::kFsync;
  StoredJob job;             // kAddJob, kDispatched (id in job.id)
  wire::JobRecord result;    // kAddResult; its `durable` says whether it outlives a restart
  std::uint64_t result_seq = 0;
  const JobId& id() const { return kind == Kind::kAddResult ? result.id : job.id; }
};

// How a group commit went (JobStore::Commit), told back to the core.
struct CommitResult {
  enum class Status : std::uint8_t { kOk, kFull, kFailed };
  Status status = Status::kOk;
  std::string message;  // kFull, kFailed: the cause, for logs and clients
};

// A lookup the core cannot answer from memory (a finished job's result, a page of stored
// jobs): the loop answers it from the store after the turn's commit (Broker::AnswerLookup).
struct StoreLookup {
  enum class Kind : std::uint8_t { kJob, kJobs, kTitanicReply };
  Kind kind = Kind::kJob;
  std::string client;       // routing id of the asker
  std::string correlation;  // QUERY correlation id (kJob, kJobs)
  JobId id;                 // kJob, kTitanicReply
  wire::JobsQuery jobs;     // kJobs
};

}  // namespace courier::broker
