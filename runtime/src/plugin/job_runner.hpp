// job_runner.hpp — one job's path through the worker host, without sockets:
// key (lookup) → open (decrypt) → parse (decode) → verify (schema) → handle → convert
// (encode) → reply_verify (the [reply] schema) → seal, each stage timed into StageStats,
// every failure turned into an ERROR body with the right code and a record to the
// ErrorReporter (the time from the failure to the record built is timed as
// error_capture). Nothing a client sends reaches the handler unless it opened, decoded
// and verified; nothing a handler throws escapes; no reply that breaks the service's
// [reply] schema reaches the client (invalid_reply).
//
// The I/O thread decodes the envelope and hands the job here on a pool thread; the
// outputs go back to the I/O thread, which sends them ("send" is timed there).
// Thread-safety: Run is called concurrently from every pool thread; a ServiceRuntime is
// shared by them (its instance must be thread-safe, as the plugin API says; the reply
// cache locks).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <zmq.hpp>

#include "courier/keyring.hpp"
#include "courier/plugin.hpp"
#include "courier/worker.hpp"
#include "error_reporter.hpp"
#include "key_source.hpp"
#include "payload_schema.hpp"
#include "protocol.hpp"
#include "reply_cache.hpp"
#include "stage_stats.hpp"

namespace courier::detail {

// Someone else's delivery of a job that is running: answered when the job completes.
struct DuplicateWaiter {
  std::uint64_t seq = 0;
  Envelope envelope;
  std::string broker;
};

// Everything the host holds for one registered service.
struct ServiceRuntime {
  std::string name;
  std::string origin;  // plugin path, or "registered in code"
  std::size_t stats_index = 0;
  ServiceSettings settings;
  bool idempotent = true;
  std::optional<PayloadSchema> schema;
  std::string schema_origin;  // file, "embedded" or "none"
  bool verify_replies = false;  // effective: a [reply] in the schema and verify_replies on
  std::unique_ptr<ServiceInstance> instance;
  std::unique_ptr<ReplyCache<DuplicateWaiter>> cache;  // non-idempotent services only
  std::atomic<std::uint32_t> capacity{1};              // effective (settings 0 → threads)
  Isolation isolation = Isolation::kThread;             // effective (settings, else the host's)
};

// A job as the I/O thread received it.
struct JobInput {
  std::uint64_t seq = 0;  // the I/O thread's handle on this delivery
  std::size_t service = 0;  // index of the service in the host
  std::string broker;     // endpoint, for error records
  std::string sender;     // the submitter's transport key name, for error records ("" unknown)
  std::string envelope_bytes;
  std::string payload;
  // The payload frame as received, when the I/O thread hands it over instead of copying it
  // into `payload` (then empty); shared so that a JobInput stays copyable.
  std::shared_ptr<const zmq::message_t> payload_frame;
  Envelope envelope;  // decoded from envelope_bytes

  std::string_view Payload() const {
    return payload_frame ? std::string_view(static_cast<const char*>(payload_frame->data()), payload_frame->size())
                         : std::string_view(payload);
  }
};

// One message for the I/O thread to send on the connection `seq` arrived on.
struct JobOutput {
  std::uint64_t seq = 0;
  WorkerCommand command = WorkerCommand::kReply;
  std::string body1;  // REPLY: envelope; ERROR: error body
  std::string body2;  // REPLY: payload
};

class JobRunner {
 public:
  // `keys` must outlive the runner.
  JobRunner(KeySource& keys, StageStats& stats, ErrorReporter& reporter, std::size_t max_message_bytes);
  // With a fixed keyring (never reloaded), which must outlive the runner.
  JobRunner(const Keyring& keyring, StageStats& stats, ErrorReporter& reporter,
            std::size_t max_message_bytes);

  // Runs the job. Returns: its outputs: usually one (REPLY or ERROR); none when it is a
  // duplicate of a job still running (that job's run answers it); more when this run
  // also answers waiting duplicates. A sealed payload that does not open with this host's
  // keys, even after re-reading a key file that changed, is answered REJECT
  // (unknown_key or unauthenticated): the fault may be this host's keyring, so the broker
  // gives the job to another worker (PROTOCOL.md §7.3).
  std::vector<JobOutput> Run(ServiceRuntime& service, JobInput& job) const;

  // Returns: the reply frames for `envelope` (sealed if the request was) with `plaintext`.
  JobOutput MakeReply(std::uint64_t seq, const Envelope& request, std::string_view plaintext) const;
  static JobOutput MakeError(std::uint64_t seq, const JobId& job_id, ErrorCode code,
                             std::string_view message);

 private:
  // Finds the keyring holding the job's key (re-reading a changed key file when the one
  // in use lacks it), timed as the "key" stage.
  std::shared_ptr<const Keyring> KeyFor(const JobInput& job, StageTimer& timer) const;
  // Opens the payload with `keyring`; on an authentication failure re-reads a changed key
  // file and tries once more (that reload is timed as "key" too).
  std::string Open(const JobInput& job, std::shared_ptr<const Keyring> keyring, StageTimer& timer) const;
  // Throws: Error(kInvalidReply) naming the first field of `reply` that breaks the
  // schema's [reply] (or saying it does not decode).
  void VerifyReply(const PayloadSchema& schema, std::string_view reply) const;

  std::unique_ptr<KeySource> owned_keys_;  // the fixed keyring's source
  KeySource& keys_;
  StageStats& stats_;
  ErrorReporter& reporter_;
  DecodeLimits limits_;
  std::size_t max_message_bytes_;
};

}  // namespace courier::detail
