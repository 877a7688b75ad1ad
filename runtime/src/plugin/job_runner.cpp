#include "job_runner.hpp"

#include "courier/error.hpp"
#include "envelope_codec.hpp"
#include "frames.hpp"

namespace courier::detail {

struct JobContextAccess {
  static std::chrono::steady_clock::time_point HandledAt(const JobContext& context) {
    return context.handled_at_;
  }
};

namespace {

constexpr std::size_t kMaxErrorMessage = 1000;

std::string Clip(std::string message) {
  if (message.size() > kMaxErrorMessage) {
    message.resize(kMaxErrorMessage);
    message += "...";
  }
  return message;
}

// A failure with the code the client will see.
struct Failure {
  ErrorCode code;
  std::string message;
};

bool IsClientCode(ErrorCode code) {
  return IsWireCode(static_cast<std::uint32_t>(code)) && static_cast<std::uint32_t>(code) < 100;
}

}  // namespace

JobRunner::JobRunner(const Keyring& keyring, StageStats& stats, ErrorReporter& reporter,
                     std::size_t max_message_bytes)
    : owned_keys_(std::make_unique<KeySource>(std::shared_ptr<const Keyring>(&keyring, [](const Keyring*) {}))),
      keys_(*owned_keys_),
      stats_(stats),
      reporter_(reporter),
      max_message_bytes_(max_message_bytes) {
  limits_.max_bytes = max_message_bytes;
  limits_.max_str = max_message_bytes;
  limits_.max_bin = max_message_bytes;
}

JobRunner::JobRunner(KeySource& keys, StageStats& stats, ErrorReporter& reporter, std::size_t max_message_bytes)
    : keys_(keys), stats_(stats), reporter_(reporter), max_message_bytes_(max_message_bytes) {
  limits_.max_bytes = max_message_bytes;
  limits_.max_str = max_message_bytes;
  limits_.max_bin = max_message_bytes;
}

JobOutput JobRunner::MakeError(std::uint64_t seq, const JobId& job_id, ErrorCode code,
                               std::string_view message) {
  JobOutput output;
  output.seq = seq;
  output.command = WorkerCommand::kError;
  output.body1 = EncodeErrorBody(job_id, code, message);
  return output;
}

JobOutput JobRunner::MakeReply(std::uint64_t seq, const Envelope& request,
                               std::string_view plaintext) const {
  Envelope reply = request;  // same job id, service, attempt, deadline, max attempts, trace
  reply.mode = ReplyMode::kReply;
  reply.created_at_ms = NowUnixMs();
  JobOutput output;
  output.seq = seq;
  output.command = WorkerCommand::kReply;
  if (request.key_id == kUnsealedKeyId) {
    reply.key_id = kUnsealedKeyId;
    reply.nonce.fill(0);
    output.body1 = EncodeEnvelope(reply);
    output.body2 = std::string(plaintext);
  } else {
    Keyring::Sealed sealed = keys_.Current()->Seal(std::move(reply), plaintext);
    output.body1 = std::move(sealed.envelope);
    output.body2 = std::move(sealed.payload);
  }
  return output;
}

std::shared_ptr<const Keyring> JobRunner::KeyFor(const JobInput& job, StageTimer& timer) const {
  std::shared_ptr<const Keyring> keyring = keys_.Current();
  // A key id this host lacks may be a rotation it has not seen yet: read the file again.
  if (!keyring->Holds(job.envelope.key_id) && keys_.ReloadIfChanged()) keyring = keys_.Current();
  timer.Lap(Stage::kKey);
  return keyring;
}

std::string JobRunner::Open(const JobInput& job, std::shared_ptr<const Keyring> keyring, StageTimer& timer) const {
  try {
    return keyring->Open(job.envelope_bytes, job.Payload());
  } catch (const Error& e) {
    // A key id it holds that does not authenticate: the file may hold another key under
    // that id now (unknown_key was handled by KeyFor).
    if (e.code() != ErrorCode::kUnauthenticated || !keys_.ReloadIfChanged()) throw;
  }
  timer.Lap(Stage::kKey);  // the failed attempt and the reload
  return keys_.Current()->Open(job.envelope_bytes, job.Payload());  // with what is on disk now
}

void JobRunner::VerifyReply(const PayloadSchema& schema, std::string_view reply) const {
  Value value;
  try {
    value = DecodeValue(reply, limits_);
  } catch (const Error& e) {
    throw Error(ErrorCode::kInvalidReply, std::string("reply: not a MessagePack document within the limits: ") + e.what());
  }
  try {
    (void)schema.ValidateReply(value);
  } catch (const Error& e) {
    throw Error(ErrorCode::kInvalidReply, e.what());
  }
}

std::vector<JobOutput> JobRunner::Run(ServiceRuntime& service, JobInput& job) const {
  const Envelope& envelope = job.envelope;
  StageTimer timer(stats_, service.stats_index);
  JobContext context(envelope);
  Stage stage = Stage::kOpen;
  bool claimed = false;
  std::vector<JobOutput> outputs;
  std::optional<Failure> failure;
  std::vector<DuplicateWaiter> waiters;

  try {
    const std::uint64_t arrived_ms = NowUnixMs();
    if (arrived_ms > envelope.deadline_ms) {
      throw Error(ErrorCode::kDeadlineExceeded,
                  "the job's deadline had passed " + std::to_string(arrived_ms - envelope.deadline_ms) +
                      " ms before a worker thread took it");
    }

    // key, open (failures in either count as open: the own-keys rule below needs that)
    std::string opened;
    std::string_view plaintext;
    if (envelope.key_id == kUnsealedKeyId) {
      if (!service.settings.allow_unsealed) {
        throw Error(ErrorCode::kUnauthenticated,
                    "service " + service.name + " accepts sealed payloads only (allow_unsealed = false)");
      }
      plaintext = job.Payload();
    } else {
      opened = Open(job, KeyFor(job, timer), timer);
      plaintext = opened;
    }
    timer.Lap(Stage::kOpen);

    if (service.cache) {
      auto claim = service.cache->Begin(envelope.job_id, DuplicateWaiter{job.seq, envelope, job.broker});
      using State = ReplyCache<DuplicateWaiter>::State;
      if (claim.state == State::kRunning) return {};
      if (claim.state == State::kDone) {
        // Answered with the first run's result, success or failure (PROTOCOL.md §7.7).
        if (!claim.outcome.ok) {
          outputs.push_back(MakeError(job.seq, envelope.job_id, claim.outcome.code, claim.outcome.message));
          return outputs;
        }
        stage = Stage::kSeal;
        outputs.push_back(MakeReply(job.seq, envelope, claim.outcome.reply));
        timer.Lap(Stage::kSeal);
        return outputs;
      }
      claimed = true;
    }

    // parse
    stage = Stage::kParse;
    Value request = DecodeValue(plaintext, limits_);
    timer.Lap(Stage::kParse);

    // verify
    stage = Stage::kVerify;
    if (service.schema) service.schema->Validate(request);
    timer.Lap(Stage::kVerify);

    // handle, convert (the adapter marks the boundary)
    stage = Stage::kHandle;
    std::string reply;
    try {
      reply = service.instance->Handle(plaintext, std::move(request), context);
    } catch (const Error& e) {
      const auto handled_at = JobContextAccess::HandledAt(context);
      if (handled_at != std::chrono::steady_clock::time_point{}) stage = Stage::kConvert;
      if (stage == Stage::kConvert || IsClientCode(e.code())) throw;
      throw Error(ErrorCode::kHandlerError, e.what());
    } catch (const std::exception& e) {
      if (JobContextAccess::HandledAt(context) != std::chrono::steady_clock::time_point{}) {
        stage = Stage::kConvert;
        throw Error(ErrorCode::kInternal, std::string("cannot encode the reply: ") + e.what());
      }
      throw Error(ErrorCode::kHandlerError, e.what());
    } catch (...) {
      throw Error(ErrorCode::kHandlerError, "the handler threw an exception that is not a std::exception");
    }
    timer.LapAt(Stage::kHandle, JobContextAccess::HandledAt(context));
    stage = Stage::kConvert;
    if (reply.size() > max_message_bytes_) {
      throw Error(ErrorCode::kTooLarge, "the reply is " + std::to_string(reply.size()) +
                                            " bytes, over the limit of " + std::to_string(max_message_bytes_));
    }
    timer.Lap(Stage::kConvert);

    // reply_verify: before the reply is remembered for duplicates or sealed
    if (service.verify_replies) {
      stage = Stage::kReplyVerify;
      VerifyReply(*service.schema, reply);
      timer.Lap(Stage::kReplyVerify);
    }

    if (claimed) {
      waiters = service.cache->Complete(envelope.job_id, HandlerOutcome{true, reply, ErrorCode::kInternal, {}});
      claimed = false;
    }
    const std::uint64_t finished_ms = NowUnixMs();
    if (finished_ms > envelope.deadline_ms) {
      stage = Stage::kHandle;
      throw Error(ErrorCode::kDeadlineExceeded,
                  "the handler finished " + std::to_string(finished_ms - envelope.deadline_ms) +
                      " ms after the job's deadline");
    }

    // seal
    stage = Stage::kSeal;
    timer.Restart();
    outputs.push_back(MakeReply(job.seq, envelope, reply));
    for (const DuplicateWaiter& waiter : waiters) outputs.push_back(MakeReply(waiter.seq, waiter.envelope, reply));
    timer.Lap(Stage::kSeal);
    return outputs;
  } catch (const Error& e) {
    failure = Failure{IsClientCode(e.code()) ? e.code() : ErrorCode::kInternal, Clip(e.what())};
  } catch (const std::exception& e) {
    failure = Failure{ErrorCode::kInternal, Clip(e.what())};
  } catch (...) {
    failure = Failure{ErrorCode::kInternal, "unknown failure"};
  }

  // error_capture: from here (the failure caught) until its record is built
  const auto failed_at = std::chrono::steady_clock::now();
  timer.Fail(stage);
  const bool own_keys = stage == Stage::kOpen && envelope.key_id != kUnsealedKeyId &&
                        (failure->code == ErrorCode::kUnknownKey || failure->code == ErrorCode::kUnauthenticated);
  if (claimed) {
    waiters = service.cache->Complete(envelope.job_id, HandlerOutcome{false, {}, failure->code, failure->message});
  }
  ErrorRecord record;
  record.job_id = envelope.job_id;
  record.service = service.name;
  record.broker = job.broker;
  record.sender = job.sender;
  record.attempt = envelope.attempt;
  record.trace_id = envelope.trace_id;
  record.stage = stage;
  record.code = failure->code;
  record.message = failure->message;
  record.at_ms = NowUnixMs();
  if (own_keys) record.message += " (rejected back to the broker: this host's keys may be at fault)";
  stats_.Record(service.stats_index, Stage::kErrorCapture, std::chrono::steady_clock::now() - failed_at);
  reporter_.Report(record);
  outputs.clear();
  if (own_keys) {
    JobOutput reject;
    reject.seq = job.seq;
    reject.command = WorkerCommand::kReject;
    reject.body1 = EncodeReject(envelope.job_id, failure->code);
    outputs.push_back(std::move(reject));
    return outputs;
  }
  outputs.push_back(MakeError(job.seq, envelope.job_id, failure->code, failure->message));
  for (const DuplicateWaiter& waiter : waiters) {
    outputs.push_back(MakeError(waiter.seq, waiter.envelope.job_id, failure->code, failure->message));
  }
  return outputs;
}

}  // namespace courier::detail
