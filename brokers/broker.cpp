#include "broker.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "envelope_codec.hpp"
#include "protocol.hpp"

namespace courier::broker {
namespace {

using detail::ClientCommand;
using detail::WorkerCommand;

std::string_view View(const zmq::message_t& frame) { return frame.to_string_view(); }

std::uint8_t CommandByte(const zmq::message_t& frame) {
  return frame.size() == 1 ? *static_cast<const std::uint8_t*>(frame.data()) : 0;
}

std::string_view HeaderFor(PeerKind kind) {
  return kind == PeerKind::kMdp ? detail::kMdpWorker : detail::kCourierWorker;
}

// Returns: the key name in a ZAP User-Id ("client:NAME" → "NAME").
std::string_view SenderName(std::string_view user_id) {
  const auto colon = user_id.find(':');
  return colon == std::string_view::npos ? user_id : user_id.substr(colon + 1);
}

std::string Printable(std::string_view identity) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (const char c : identity) {
    out += kHex[(static_cast<unsigned char>(c) >> 4) & 0xf];
    out += kHex[static_cast<unsigned char>(c) & 0xf];
  }
  return out;
}

// A worker host reports its failures and stage timings through the brokers with its own
// CURVE key: a worker-only key may submit fire-and-forget jobs to courier.errors and
// courier.metrics, and nothing else a client may do.
bool IsWorkerReport(std::span<zmq::message_t> frames) {
  if (frames.size() != 6 || CommandByte(frames[3]) != static_cast<std::uint8_t>(ClientCommand::kSubmit)) return false;
  try {
    const detail::EnvelopeView envelope = detail::DecodeEnvelope(View(frames[4]));
    return envelope.mode == ReplyMode::kSend &&
           (envelope.service == detail::kErrorSinkService || envelope.service == detail::kMetricsService);
  } catch (const Error&) {
    return false;
  }
}

// libzmq's receive batch (ZMQ_IN_BATCH_SIZE default): frames up to this size may share it.
constexpr std::size_t kSharedBufferBytes = 8192;
// Queue depth past which a newly queued job gets frames of its own (OwnFrames).
constexpr std::size_t kOwnFramesAbove = 1024;
// After a connection closes, the workers holding jobs are probed at once and again after
// these delays: the ROUTER may process the closed pipe a little after the monitor event.
constexpr std::array<std::chrono::milliseconds, 3> kProbeDelays{std::chrono::milliseconds(20),
                                                                std::chrono::milliseconds(100),
                                                                std::chrono::milliseconds(300)};
// Disconnect events closer together than this share one immediate probe: clients that
// come and go by the hundred cost at most 100 probe rounds a second (one HEARTBEAT to each
// worker holding jobs per round), and the delayed probes still follow the latest close.
constexpr auto kMinProbeGap = std::chrono::milliseconds(10);
// Jobs at the front of a queue that Dispatch may step over while each waits for a worker
// other than the one that could not open it (PickWorker's `held`).
constexpr std::size_t kMaxHeldLookahead = 16;
// Charged per job on top of its frames (the Job slot, index entries, allocator slack).
constexpr std::size_t kJobOverheadBytes = 512;
// Freed job bytes after which the next tick returns memory to the system (malloc_trim).
constexpr std::size_t kTrimAfterBytes = 64u << 20;
// What a pruned service frees: its slot, its name, its empty queue's first node.
constexpr std::size_t kPrunedServiceBytes = 1024;
// How often a quiet broker gives back what was freed since its last trim.
constexpr auto kTrimTailInterval = std::chrono::seconds(5);
// Freed job bytes worth a trim once the broker holds less than it freed (a burst is over).
constexpr std::size_t kTrimQuietBytes = 8u << 20;

// Send and enqueue jobs are ACCEPTed (stored first, when their service keeps them).
bool IsAcknowledged(ReplyMode mode) { return mode == ReplyMode::kSend || mode == ReplyMode::kEnqueue; }

bool IsKeyReject(ErrorCode code) { return code == ErrorCode::kUnknownKey || code == ErrorCode::kUnauthenticated; }

}  // namespace

Now Now::Real() { return Now{std::chrono::steady_clock::now(), NowUnixMs()}; }

std::string_view ServiceNameProblem(std::string_view name) {
  if (name.empty()) return "it is empty";
  if (name.size() > detail::kMaxServiceNameBytes) return "it is longer than 255 bytes";
  const auto* p = reinterpret_cast<const unsigned char*>(name.data());
  const std::size_t n = name.size();
  for (std::size_t i = 0; i < n;) {
    const unsigned char c = p[i];
    if (c < 0x80) {
      if (c < 0x20 || c == 0x7f) return "it contains a control character";
      ++i;
      continue;
    }
    std::size_t length = 0;
    std::uint32_t code = 0;
    if ((c & 0xe0) == 0xc0) {
      length = 2;
      code = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      length = 3;
      code = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      length = 4;
      code = c & 0x07;
    } else {
      return "it is not valid UTF-8";
    }
    if (i + length > n) return "it is not valid UTF-8";
    for (std::size_t k = 1; k < length; ++k) {
      if ((p[i + k] & 0xc0) != 0x80) return "it is not valid UTF-8";
      code = (code << 6) | (p[i + k] & 0x3f);
    }
    static constexpr std::uint32_t kMinForLength[] = {0, 0, 0x80, 0x800, 0x10000};
    if (code < kMinForLength[length] || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff)) {
      return "it is not valid UTF-8";
    }
    if (code <= 0x9f) return "it contains a control character";
    i += length;
  }
  return {};
}

Broker::Broker(BrokerConfig config, Outbox& outbox, std::uint64_t random_seed)
    : config_(std::move(config)), outbox_(outbox), random_(random_seed) {
  out_.reserve(16);
  started_ = std::chrono::steady_clock::now();
  last_metrics_ = started_;
  const JobId random = JobId::Random();
  incarnation_.assign(random.View().substr(0, 8));
  if (config_.security.curve) access_ = AccessPolicy::Load(config_.security.clients_file, config_.security.workers_file);
}

// ---------------------------------------------------------------------------------------
// Inbound

void Broker::OnRefusedPeer(std::string_view key, std::string_view address) {
  ++counters_.refused_peers;
  if (!bad_input_log_.Allow()) return;
  spdlog::warn("refused connection from {} with curve key {}: not on the allow-lists", address, key);
}

void Broker::OnMessage(std::span<zmq::message_t> frames, const Now& now, PeerRole role, std::string_view user_id) {
  unix_now_ms_ = now.unix_ms;
  ++messages_;
  current_user_ = user_id;
  struct ClearUser {
    std::string_view& user;
    ~ClearUser() { user = {}; }
  } clear_user{current_user_};
  if (frames.size() < 3) {
    ++counters_.malformed;
    LogBadInput(frames.empty() ? std::string_view{} : View(frames[0]), "fewer than 3 frames");
    return;
  }
  std::size_t total = 0;
  for (const auto& frame : frames) total += frame.size();
  if (total > config_.max_message_bytes) {
    ++counters_.oversized;
    const std::string why = "message of " + std::to_string(total) + " bytes over max_message_bytes (" +
                            std::to_string(config_.max_message_bytes) + ")";
    LogBadInput(View(frames[0]), why);
    if (frames.size() >= 4 && View(frames[2]) == detail::kCourierClient &&
        CommandByte(frames[3]) == static_cast<std::uint8_t>(ClientCommand::kSubmit)) {
      // Tell the client at once rather than leave it waiting for its deadline.
      JobId id;
      if (frames.size() > 4) {
        try {
          id = detail::DecodeEnvelope(View(frames[4])).job_id;
        } catch (const Error&) {
        }
      }
      SendClientError(View(frames[0]), id, ErrorCode::kTooLarge, why);
    }
    return;
  }
  if (frames[1].size() != 0) {
    ++counters_.malformed;
    LogBadInput(View(frames[0]), "frame 1 is not the empty delimiter");
    return;
  }
  const std::string_view header = View(frames[2]);
  const bool client_header = header == detail::kCourierClient || header == detail::kMdpClient;
  const bool worker_header = header == detail::kCourierWorker || header == detail::kMdpWorker;
  if ((client_header && role == PeerRole::kWorker && !(header == detail::kCourierClient && IsWorkerReport(frames))) ||
      (worker_header && role == PeerRole::kClient)) {
    ++counters_.refused_peers;
    LogBadInput(View(frames[0]), client_header ? "a worker key used as a client" : "a client key used as a worker");
    if (header == detail::kCourierClient) {
      // Name the job when it is a SUBMIT, so the client fails that job at once.
      JobId id;
      if (frames.size() > 4 && CommandByte(frames[3]) == static_cast<std::uint8_t>(ClientCommand::kSubmit)) {
        try {
          id = detail::DecodeEnvelope(View(frames[4])).job_id;
        } catch (const Error&) {
        }
      }
      SendClientError(View(frames[0]), id, ErrorCode::kUnauthorized,
                      "this CURVE key is not on the broker's clients allow-list: it may not submit jobs");
    } else if (worker_header) {
      SendToWorker(View(frames[0]), header == detail::kMdpWorker ? PeerKind::kMdp : PeerKind::kCourier,
                   static_cast<std::uint8_t>(WorkerCommand::kDisconnect));
    }
    return;
  }
  if (access_.enabled() && client_header && !PermitErrorSinkUse(frames, header)) return;
  try {
    if (header == detail::kCourierClient) {
      OnCourierClient(frames, now);
    } else if (header == detail::kCourierWorker) {
      OnWorker(frames, PeerKind::kCourier, now);
    } else if (header == detail::kMdpClient) {
      OnMdpClient(frames, now);
    } else if (header == detail::kMdpWorker) {
      OnWorker(frames, PeerKind::kMdp, now);
    } else {
      ++counters_.malformed;
      LogBadInput(View(frames[0]), "unknown protocol header");
    }
  } catch (const std::exception& error) {
    // Decoders throw on hostile input; nothing a peer sends may stop the loop.
    ++counters_.malformed;
    LogBadInput(View(frames[0]), error.what());
  }
}

void Broker::OnMdpClient(std::span<zmq::message_t> frames, const Now& now) {
  if (frames.size() < 4) {
    ++counters_.malformed;
    LogBadInput(View(frames[0]), "MDP request without a service frame");
    return;
  }
  const std::string_view service_name = View(frames[3]);
  if (service_name.starts_with(detail::kMmiPrefix)) {
    OnMmi(frames);
    return;
  }
  if (service_name.starts_with(kTitanicPrefix)) {
    OnTitanic(frames, now);
    return;
  }
  if (const std::string_view problem = ServiceNameProblem(service_name); !problem.empty()) {
    ++counters_.malformed;
    ++counters_.invalid_service_names;
    LogBadInput(View(frames[0]), "MDP request for an invalid service name: " + std::string(problem));
    return;
  }
  if (draining_) return;  // MDP has no error reply; the client's timeout sends it elsewhere
  Refusal refusal = Refusal::kNone;
  const std::uint32_t service =
      FindOrAddService(service_name, now, current_user_.empty() ? View(frames[0]) : SenderName(current_user_), refusal);
  if (service == kNone) {
    ++counters_.busy_rejections;
    LogBadInput(View(frames[0]), RefusalMessage(refusal));
    return;
  }
  // Plain Majordomo requests get a broker-made envelope, so they are queued, redelivered
  // and dead-lettered like any other job.
  const std::uint32_t slot = NewBrokerJob(service, ReplyMode::kCall,
                                          static_cast<std::uint64_t>(config_.mdp_deadline.count()), PeerKind::kMdp, now);
  Job& job = jobs_[slot];
  job.client = std::string(View(frames[0]));
  if (!current_user_.empty()) job.sender = SenderName(current_user_);
  if (frames.size() > 4) job.payload = std::move(frames[4]);
  for (std::size_t i = 5; i < frames.size(); ++i) job.extra_body.push_back(std::move(frames[i]));
  if (Enqueue(service, slot, now) == kNone) {
    ++counters_.busy_rejections;  // MDP has no error reply; the client's own timeout tells it
    ++services_[service].busy_rejections;
    jobs_.Release(slot);
    return;
  }
  Dispatch(service, now);
}

void Broker::OnMmi(std::span<zmq::message_t> frames) {
  const std::string_view mmi = View(frames[3]);
  std::string_view code = "501";
  if (mmi == detail::kMmiService) {
    // An invalid name is never a service: 404, and nothing is added for it.
    const std::string_view asked = frames.size() > 4 ? View(frames[4]) : std::string_view{};
    code = WorkerCount(asked) > 0 ? "200" : "404";
  }
  out_.clear();
  out_.emplace_back(frames[0].data(), frames[0].size());
  out_.emplace_back();
  out_.emplace_back(detail::kMdpClient.data(), detail::kMdpClient.size());
  out_.emplace_back(mmi.data(), mmi.size());
  out_.emplace_back(code.data(), code.size());
  if (SendFrames() != SendResult::kSent) ++counters_.unreachable_clients;
}

void Broker::OnCourierClient(std::span<zmq::message_t> frames, const Now& now) {
  if (frames.size() < 4) {
    ++counters_.malformed;
    LogBadInput(View(frames[0]), "CRC01 message without a command");
    return;
  }
  switch (static_cast<ClientCommand>(CommandByte(frames[3]))) {
    case ClientCommand::kSubmit:
      OnSubmit(frames, now);
      return;
    case ClientCommand::kQuery:
      OnQuery(frames, now);
      return;
    case ClientCommand::kPing: {
      if (frames.size() != 5 || frames[4].size() > 16) break;
      SendCourierClient(View(frames[0]), static_cast<std::uint8_t>(ClientCommand::kPong), View(frames[4]),
                        incarnation_, true);
      return;
    }
    default:
      ++counters_.unknown_command;
      LogBadInput(View(frames[0]), "unknown CRC01 command");
      return;
  }
  ++counters_.malformed;
  LogBadInput(View(frames[0]), "malformed CRC01 PING");
}

void Broker::OnSubmit(std::span<zmq::message_t> frames, const Now& now) {
  const std::string_view client = View(frames[0]);
  if (frames.size() != 6) {
    ++counters_.malformed;
    SendClientError(client, JobId{}, ErrorCode::kBadRequest, "SUBMIT takes exactly [envelope][payload]");
    return;
  }
  detail::EnvelopeView envelope;
  try {
    envelope = detail::DecodeEnvelope(View(frames[4]));
  } catch (const Error& error) {
    ++counters_.malformed;
    SendClientError(client, JobId{}, ErrorCode::kBadRequest, error.what());
    return;
  }
  if (envelope.mode == ReplyMode::kReply) {
    ++counters_.malformed;
    SendClientError(client, envelope.job_id, ErrorCode::kBadRequest, "SUBMIT needs mode call or send");
    return;
  }
  if (const std::string_view problem = ServiceNameProblem(envelope.service); !problem.empty()) {
    ++counters_.malformed;
    ++counters_.invalid_service_names;
    SendClientError(client, envelope.job_id, ErrorCode::kBadRequest, "invalid service name: " + std::string(problem));
    return;
  }
  if (!PermitErrorSinkCall(client, envelope)) return;
  if (envelope.service.starts_with(detail::kMmiPrefix)) {
    SendClientError(client, envelope.job_id, ErrorCode::kNoSuchService,
                    "mmi.* services answer plain Majordomo requests only");
    return;
  }
  if (draining_) {
    SendClientError(client, envelope.job_id, ErrorCode::kShuttingDown, "the broker is shutting down");
    return;
  }
  if (const std::uint32_t found = job_index_.Find(envelope.job_id); found != kNone) {
    // A resend of a job this broker already holds (client retry or failover): answer once,
    // but only to its submitter (PROTOCOL.md §6.2 rule 7). A job id is scoped to who sent
    // it first; another client naming it is refused, never given the reply.
    Job& job = jobs_[found];
    if (!OwnsJob(job, client)) {
      ++counters_.foreign_job_ids;
      LogBadInput(client, "SUBMIT naming the job id of another client's job " + job.id.Hex());
      SendClientError(client, envelope.job_id, ErrorCode::kBadRequest,
                      "job id already in use by another client (a job id belongs to the client that submitted "
                      "it first)");
      return;
    }
    if (job.client_kind == PeerKind::kCourier) job.client = std::string(client);
    if (job.answered && envelope.mode == ReplyMode::kCall) {
      // Told deadline_exceeded already; its worker still holds it (a late answer is dropped).
      SendClientError(client, envelope.job_id, ErrorCode::kDeadlineExceeded,
                      "deadline passed while a worker held the job");
      return;
    }
    // A job whose commit is pending is ACCEPTed once stored, to the connection just recorded.
    if (IsAcknowledged(envelope.mode) && !job.awaiting_commit) {
      SendAccept(client, envelope.job_id);
    }
    return;
  }
  if (envelope.deadline_ms <= now.unix_ms) {
    ++counters_.expired;
    SendClientError(client, envelope.job_id, ErrorCode::kDeadlineExceeded, "deadline passed before the broker got the job");
    return;
  }
  if (envelope.deadline_ms - now.unix_ms > static_cast<std::uint64_t>(config_.max_deadline.count())) {
    ++counters_.deadline_rejections;
    SendClientError(client, envelope.job_id, ErrorCode::kBadRequest,
                    "deadline more than max_deadline (" + std::to_string(config_.max_deadline.count()) +
                        " ms) ahead: the broker holds no job that long");
    return;
  }
  Refusal refusal = Refusal::kNone;
  const std::uint32_t service = FindOrAddService(
      envelope.service, now, current_user_.empty() ? client : SenderName(current_user_), refusal);
  if (service == kNone) {
    ++counters_.busy_rejections;
    SendClientError(client, envelope.job_id, ErrorCode::kBusy, RefusalMessage(refusal));
    return;
  }
  if (IsUnknownService(service, envelope.mode, now)) {
    ++counters_.unknown_service;
    SendClientError(client, envelope.job_id, ErrorCode::kNoSuchService, UnknownServiceMessage(service));
    return;
  }
  const std::uint32_t slot = jobs_.Acquire();
  Job& job = jobs_[slot];
  job.id = envelope.job_id;
  job.service = service;
  job.client_kind = PeerKind::kCourier;
  job.client = std::string(client);
  if (!current_user_.empty()) job.sender = SenderName(current_user_);
  job.envelope = std::move(frames[4]);
  job.payload = std::move(frames[5]);
  job.deadline_ms = envelope.deadline_ms;
  job.attempt = std::max<std::uint32_t>(envelope.attempt, 1);
  job.max_attempts = envelope.max_attempts;
  job.mode = envelope.mode;
  if (Enqueue(service, slot, now) == kNone) {
    ++counters_.busy_rejections;
    ++services_[service].busy_rejections;
    SendClientError(client, envelope.job_id, ErrorCode::kBusy, BusyReason(service));
    jobs_.Release(slot);
    return;
  }
  if (Stores(envelope.mode, service)) {
    StoreJob(slot, StoredOrigin::kCourier, true, now);  // ACCEPTed by OnStoreCommitted
  } else {
    jobs_[slot].seq = next_seq_++;
    jobs_[slot].accepted_ms = now.unix_ms;
    if (IsAcknowledged(envelope.mode)) {
      SendAccept(client, envelope.job_id);
    }
  }
  Dispatch(service, now);
  // A long queue may wait a while: its jobs should not pin receive buffers (OwnFrames). All
  // of them once it grows past the mark, then each job queued while it stays there.
  Service& entry = services_[service];
  if (entry.queue.size() <= kOwnFramesAbove) {
    entry.long_queue = false;
  } else if (!entry.long_queue) {
    entry.long_queue = true;
    for (const std::uint32_t queued : entry.queue) OwnFrames(jobs_[queued]);
  } else if (jobs_.IsLive(slot) && jobs_[slot].id == envelope.job_id && jobs_[slot].worker == kNone) {
    OwnFrames(jobs_[slot]);
  }
}

void Broker::OnQuery(std::span<zmq::message_t> frames, const Now& now) {
  if (frames.size() != 6 || frames[4].size() > 16) {
    ++counters_.malformed;
    LogBadInput(View(frames[0]), "malformed CRC01 QUERY");
    return;
  }
  std::string reply;
  try {
    const std::string name = detail::DecodeQueryName(View(frames[5]));
    if (name == wire::kJobQueryName) {
      // A job id is a read capability (PROTOCOL.md §6.5): whoever holds it may look it up.
      OnJobQuery(View(frames[0]), View(frames[4]), View(frames[5]), now);
      return;
    }
    if (!access_.IsOperator(current_user_)) {
      ++counters_.refused_peers;
      LogBadInput(View(frames[0]), "management query '" + (ServiceNameProblem(name).empty() ? name : std::string("?")) +
                                       "' from the non-operator key " + std::string(SenderName(current_user_)));
      SendCourierClient(View(frames[0]), static_cast<std::uint8_t>(ClientCommand::kQueryReply), View(frames[4]),
                        EncodeQueryFailure(ErrorCode::kUnauthorized,
                                           "management queries need an operator key: give this CURVE key role = "
                                           "\"operator\" in the broker's clients allow-list (the job query by id "
                                           "is open to every client)"),
                        true);
      return;
    }
    if (name == wire::kJobsQueryName) {
      StoreLookup lookup{.kind = StoreLookup::Kind::kJobs,
                         .client = std::string(View(frames[0])),
                         .correlation = std::string(View(frames[4])),
                         .id = {},
                         .jobs = wire::DecodeJobsQuery(View(frames[5]))};
      if (store_enabled_) {
        lookups_.push_back(std::move(lookup));
      } else {
        AnswerLookup(lookup, wire::JobsPage{});
      }
      return;
    }
    if (name == "services") {
      reply = BuildServicesReply();
    } else if (name == "workers") {
      reply = BuildWorkersReply(now);
    } else if (name == "stats") {
      reply = BuildStatsReply(now);
    } else {
      // Echo the name only when it is printable UTF-8: the reply is shown and turned into JSON.
      reply = EncodeQueryFailure(ErrorCode::kBadRequest, ServiceNameProblem(name).empty()
                                                             ? "unknown query '" + name + "'"
                                                             : "unknown query (its name is not printable UTF-8)");
    }
  } catch (const Error& error) {
    ++counters_.malformed;
    reply = EncodeQueryFailure(ErrorCode::kBadRequest, error.what());
  }
  SendCourierClient(View(frames[0]), static_cast<std::uint8_t>(ClientCommand::kQueryReply),
                    View(frames[4]), reply, true);
}

void Broker::OnWorker(std::span<zmq::message_t> frames, PeerKind kind, const Now& now) {
  const std::string_view identity = View(frames[0]);
  if (frames.size() < 4 || frames[3].size() != 1) {
    ProtocolError(identity, kind, "worker message without a one-byte command", now);
    return;
  }
  const auto command = static_cast<WorkerCommand>(CommandByte(frames[3]));
  if (command == WorkerCommand::kReady) {
    OnReady(frames, kind, now);
    return;
  }
  const std::uint32_t worker = FindWorker(identity);
  if (worker == kNone || workers_[worker].kind != kind) {
    if (command != WorkerCommand::kDisconnect) ProtocolError(identity, kind, "command before READY", now);
    return;
  }
  workers_[worker].expiry = now.steady + config_.expiry();
  const bool courier = kind == PeerKind::kCourier;
  switch (command) {
    case WorkerCommand::kHeartbeat:
      return;
    case WorkerCommand::kReply:
      OnWorkerReply(worker, frames, now);
      return;
    case WorkerCommand::kDisconnect:
      RemoveWorker(worker, false, now, true, WorkerExit::kSaidGoodbye);
      return;
    case WorkerCommand::kError:
      if (courier) {
        OnWorkerError(worker, frames, now);
        return;
      }
      break;
    case WorkerCommand::kCredit:
      if (courier && (frames.size() == 5 || frames.size() == 6)) {
        const std::uint32_t capacity = detail::DecodeCredit(View(frames[4]));
        // Frame 4 (optional): slots whose handler overran its deadline (shown, not acted on).
        const std::uint32_t stuck = frames.size() == 6 ? detail::DecodeCredit(View(frames[5])) : 0;
        workers_[worker].capacity = CapCapacity(capacity, identity);
        workers_[worker].stuck = stuck;
        Dispatch(workers_[worker].service, now);
        return;
      }
      break;
    case WorkerCommand::kReject:
      if (courier) {
        OnReject(worker, frames, now);
        return;
      }
      break;
    default:
      break;
  }
  ++counters_.unknown_command;
  ProtocolError(identity, kind, "unknown or malformed worker command", now);
}

void Broker::OnReady(std::span<zmq::message_t> frames, PeerKind kind, const Now& now) {
  const std::string_view identity = View(frames[0]);
  if (const std::uint32_t existing = FindWorker(identity); existing != kNone) {
    ProtocolError(identity, kind, "second READY", now);
    return;
  }
  const bool courier = kind == PeerKind::kCourier;
  if (frames.size() != (courier ? 6u : 5u)) {
    ProtocolError(identity, kind, "READY with the wrong number of frames", now);
    return;
  }
  const std::string_view name = View(frames[4]);
  if (const std::string_view problem = ServiceNameProblem(name); !problem.empty()) {
    ++counters_.invalid_service_names;
    ProtocolError(identity, kind, "READY for an invalid service name: " + std::string(problem), now);
    return;
  }
  if (name.starts_with(detail::kMmiPrefix)) {
    ProtocolError(identity, kind, "READY for an mmi.* service", now);
    return;
  }
  if (const std::string problem = access_.ReadyProblem(current_user_, name); !problem.empty()) {
    // Built-in services (courier.errors receives every dead letter and report) and services
    // the key's allow-list entry does not list are never served by it.
    ++counters_.refused_peers;
    ProtocolError(identity, kind, "READY refused: " + problem, now);
    return;
  }
  detail::ReadyInfo info;
  if (courier) info = detail::DecodeReadyInfo(View(frames[5]));  // throws → counted as malformed
  if (courier) info.capacity = CapCapacity(info.capacity, identity);
  const std::uint32_t service = FindOrAddService(name, now);
  if (service == kNone) {
    ProtocolError(identity, kind, "the broker holds too many services", now);
    return;
  }
  const std::uint32_t slot = workers_.Acquire();
  Worker& worker = workers_[slot];
  if (++worker_serial_ == 0) ++worker_serial_;
  worker.serial = worker_serial_;
  worker.identity = std::string(identity);
  worker.kind = kind;
  worker.service = service;
  worker.capacity = courier ? info.capacity : 1;  // an MDP worker holds one request at a time
  worker.weight = courier ? info.weight : 1;
  worker.info = std::move(info);
  worker.name = WorkerName(worker);
  worker.expiry = now.steady + config_.expiry();
  worker.last_sent = now.steady;
  worker.last_dispatch = now.steady;
  worker_index_.emplace(worker.identity, slot);
  services_[service].workers.push_back(slot);
  services_[service].served = true;
  spdlog::info("worker {} ready for '{}' ({}, capacity {}, weight {}{}{})", Printable(identity), name,
               courier ? "courier" : "mdp", worker.capacity, worker.weight,
               worker.info.host.empty() ? "" : ", host ", worker.info.host);
  CheckKeyFingerprints(slot);
  Dispatch(service, now);
}

bool Broker::PermitErrorSinkUse(std::span<zmq::message_t> frames, std::string_view header) {
  if (access_.IsOperator(current_user_)) return true;
  const std::string_view client = View(frames[0]);
  // A plain Majordomo request is a call: to courier.errors, that is a query or a replay.
  // (SUBMITs are checked by OnSubmit once it has decoded the envelope.)
  if (header != detail::kMdpClient || frames.size() < 4 || View(frames[3]) != detail::kErrorSinkService) return true;
  ++counters_.refused_peers;
  LogBadInput(client, "plain MDP request to courier.errors from the non-operator key " +
                          std::string(SenderName(current_user_)));
  return false;
}

bool Broker::PermitErrorSinkCall(std::string_view client, const detail::EnvelopeView& envelope) {
  // Reports are fire-and-forget sends; queries (list, show, replay...) are calls.
  if (!access_.enabled() || envelope.service != detail::kErrorSinkService || envelope.mode == ReplyMode::kSend ||
      access_.IsOperator(current_user_)) {
    return true;
  }
  ++counters_.refused_peers;
  LogBadInput(client, "courier.errors query from the non-operator key " + std::string(SenderName(current_user_)));
  SendClientError(client, envelope.job_id, ErrorCode::kUnauthorized,
                  "courier.errors queries and replays need an operator key: give this CURVE key role = "
                  "\"operator\" in the broker's clients allow-list (reports, mode send, are open to all)");
  return false;
}

std::uint32_t Broker::CapCapacity(std::uint32_t capacity, std::string_view identity) {
  const std::uint32_t cap = access_.CapacityCap(current_user_);
  if (cap == 0 || capacity <= cap) return capacity;
  const std::string_view name = SenderName(current_user_);
  if (capped_keys_.size() < 65536 && capped_keys_.emplace(std::string(name), true).second) {
    spdlog::warn("worker {} (CURVE key {}) claimed capacity {}: clamped to its allow-list max_capacity {}",
                 Printable(identity), name, capacity, cap);
  }
  return cap;
}

void Broker::OnWorkerReply(std::uint32_t worker_slot, std::span<zmq::message_t> frames, const Now& now) {
  Worker& worker = workers_[worker_slot];
  std::uint32_t slot = kNone;
  std::size_t body_begin = 0;
  if (worker.kind == PeerKind::kCourier) {
    if (frames.size() != 6) {
      ProtocolError(worker.identity, worker.kind, "REPLY takes exactly [envelope][payload]", now);
      return;
    }
    const detail::EnvelopeView envelope = detail::DecodeEnvelope(View(frames[4]));
    const std::uint32_t found = job_index_.Find(envelope.job_id);
    if (found != kNone && jobs_[found].worker == worker_slot) slot = found;
    body_begin = 4;
  } else {
    // MDP: [client][empty][body...]; the worker holds at most one job, so that is the one.
    if (frames.size() < 6 || frames[5].size() != 0) {
      ProtocolError(worker.identity, worker.kind, "MDP REPLY without client address and delimiter", now);
      return;
    }
    if (worker.held_first != kNone && jobs_[worker.held_first].worker == worker_slot) slot = worker.held_first;
    body_begin = 6;
  }
  if (slot == kNone) {
    ++counters_.late_replies;  // answered already (after a redelivery) or never ours
    return;
  }
  Job& job = jobs_[slot];
  const std::uint32_t service = job.service;
  if (job.answered) {
    // Its client was told deadline_exceeded while the worker held it: drop, free the credit.
    ++counters_.late_replies;
    CompleteJob(slot);
    Dispatch(service, now);
    return;
  }
  timings_.Record(service, services_[service].name, BrokerStage::kDispatch, now.steady - job.dispatched_at);
  if (job.mode == ReplyMode::kCall && job.client_kind != PeerKind::kInternal) {
    out_.clear();
    out_.emplace_back(job.client.data(), job.client.size());
    out_.emplace_back();
    if (job.client_kind == PeerKind::kCourier) {
      out_.emplace_back(detail::kCourierClient.data(), detail::kCourierClient.size());
      const auto command = static_cast<std::uint8_t>(ClientCommand::kReply);
      out_.emplace_back(&command, 1);
      for (std::size_t i = body_begin; i < frames.size(); ++i) out_.push_back(std::move(frames[i]));
    } else {
      out_.emplace_back(detail::kMdpClient.data(), detail::kMdpClient.size());
      const std::string& name = services_[service].name;
      out_.emplace_back(name.data(), name.size());
      // A Courier worker's reply is [envelope][payload]; an MDP client gets the payload.
      const std::size_t first = worker.kind == PeerKind::kCourier ? body_begin + 1 : body_begin;
      for (std::size_t i = first; i < frames.size(); ++i) out_.push_back(std::move(frames[i]));
    }
    const SendResult sent = SendFrames();
    if (sent == SendResult::kFull) {
      ++counters_.client_sends_full;  // a client that does not read: its answer is dropped, not held
    } else if (sent != SendResult::kSent) {
      ++counters_.unreachable_clients;
    }
  } else if (job.mode == ReplyMode::kEnqueue) {
    // Kept as the worker sent it, sealed; a Titanic (MDP) client gets the payload only.
    const bool payload_only = job.client_kind == PeerKind::kMdp && worker.kind == PeerKind::kCourier;
    std::vector<std::string> reply;
    for (std::size_t i = payload_only ? body_begin + 1 : body_begin; i < frames.size(); ++i) {
      reply.push_back(frames[i].to_string());
    }
    RecordResult(job, wire::JobState::kDone, ErrorCode::kInternal, {}, std::move(reply), now.unix_ms);
  }
  ++services_[service].replied;
  ++services_[service].answered;
  ++counters_.jobs_answered;
  CompleteJob(slot);
  Dispatch(service, now);
}

void Broker::OnWorkerError(std::uint32_t worker_slot, std::span<zmq::message_t> frames, const Now& now) {
  if (frames.size() != 5) {
    ProtocolError(workers_[worker_slot].identity, PeerKind::kCourier, "ERROR takes exactly [error body]", now);
    return;
  }
  const detail::ErrorBody body = detail::DecodeErrorBody(View(frames[4]));
  const std::uint32_t slot = job_index_.Find(body.job_id);
  if (slot == kNone || jobs_[slot].worker != worker_slot) {
    ++counters_.late_replies;
    return;
  }
  const std::uint32_t service = jobs_[slot].service;
  if (jobs_[slot].answered) {
    ++counters_.late_replies;
    CompleteJob(slot);
    Dispatch(service, now);
    return;
  }
  if (body.code == ErrorCode::kWorkerCrashed) {
    // The host survived its handler's process: the job is handed on, unless it is poison.
    ChargeCrash(slot, "the process running its handler on worker " + WorkerName(workers_[worker_slot]) + " died",
                now);
    Dispatch(service, now);
    return;
  }
  timings_.Record(service, services_[service].name, BrokerStage::kDispatch, now.steady - jobs_[slot].dispatched_at);
  ++counters_.jobs_answered;
  ++services_[service].answered;
  FailJob(slot, body.code, body.message);
  Dispatch(service, now);
}

void Broker::OnReject(std::uint32_t worker_slot, std::span<zmq::message_t> frames, const Now& now) {
  if (frames.size() != 5) {
    ProtocolError(workers_[worker_slot].identity, PeerKind::kCourier, "REJECT takes exactly [reject body]", now);
    return;
  }
  const detail::RejectBody body = detail::DecodeReject(View(frames[4]));
  const std::uint32_t found = job_index_.Find(body.job_id);
  if (found == kNone || jobs_[found].worker != worker_slot) {
    ++counters_.late_replies;
    return;
  }
  Job& job = jobs_[found];
  const std::uint32_t service = job.service;
  if (job.answered) {
    ++counters_.late_replies;
    CompleteJob(found);
  } else if (IsKeyReject(body.code)) {
    // The worker could not open the payload with its own keys: an attempt is spent, and the
    // job goes to another worker of the service (PickWorker avoids this one).
    const Worker& worker = workers_[worker_slot];
    job.rejected_by = worker.serial;
    if (bad_input_log_.Allow()) {
      spdlog::warn("worker {} of '{}' could not open job {} ({}): handing it to another worker",
                   WorkerName(worker), services_[service].name, job.id.Hex(), ToString(body.code));
    }
    std::string key = "the payload";
    try {
      key += " sealed with key id " + std::to_string(detail::DecodeEnvelope(View(job.envelope)).key_id);
    } catch (const Error&) {
      // The worker decoded it; a broker that cannot just leaves the key id out.
    }
    Requeue(found, true, now, body.code,
            "worker " + WorkerName(worker) + " could not open " + key + " (" + std::string(ToString(body.code)) + ")");
  } else {
    Requeue(found, false, now);  // busy, shutting_down: no attempt counted
  }
  Dispatch(service, now);
}

// ---------------------------------------------------------------------------------------
// Jobs

std::uint32_t Broker::Enqueue(std::uint32_t service, std::uint32_t slot, const Now& now, bool ignore_bounds) {
  Service& entry = services_[service];
  Job& job = jobs_[slot];
  std::size_t bytes = kJobOverheadBytes + job.envelope.size() + job.payload.size() + job.client.size();
  for (const auto& frame : job.extra_body) bytes += frame.size();
  if (ignore_bounds) {
    // Restored from the store: accepted once already, so never refused now.
  } else if (entry.queue.size() >= entry.policy.queue_limit) {
    last_bound_ = Bound::kJobs;
    return kNone;
  }
  if (entry.bytes + bytes > entry.policy.max_queued_bytes) {
    last_bound_ = Bound::kServiceBytes;
    ++counters_.bytes_rejections;
    return kNone;
  }
  if (held_bytes_ + bytes > config_.max_total_queued_bytes) {
    last_bound_ = Bound::kTotalBytes;
    ++counters_.bytes_rejections;
    return kNone;
  }
  job.bytes = static_cast<std::uint32_t>(bytes);
  entry.bytes += bytes;
  held_bytes_ += bytes;
  job.enqueued_at = now.steady;
  job.worker = kNone;
  job_index_.Insert(slot);
  entry.queue.push_back(slot);
  ++counters_.jobs_accepted;
  ++entry.accepted;
  return slot;
}

std::string Broker::BusyReason(std::uint32_t service) const {
  const Service& entry = services_[service];
  switch (last_bound_) {
    case Bound::kServiceBytes:
      return "queue for '" + entry.name + "' holds " + std::to_string(entry.bytes) +
             " bytes of jobs (max_queued_bytes " + std::to_string(entry.policy.max_queued_bytes) + ")";
    case Bound::kTotalBytes:
      return "the broker holds " + std::to_string(held_bytes_) + " bytes of jobs (max_total_queued_bytes " +
             std::to_string(config_.max_total_queued_bytes) + ")";
    case Bound::kJobs:
      break;
  }
  return "queue for '" + entry.name + "' is full (queue_limit " + std::to_string(entry.policy.queue_limit) + ")";
}

void Broker::Dispatch(std::uint32_t service, const Now& now) {
  Service& entry = services_[service];
  // Jobs at the front that wait for a worker other than the only one with credit (it could
  // not open them); the jobs behind them may still go to that worker.
  std::size_t held = 0;
  while (entry.queue.size() > held) {
    const auto at = entry.queue.begin() + static_cast<std::ptrdiff_t>(held);
    const std::uint32_t slot = *at;
    // Not before its commit (the newest jobs, at the back); and a draining broker keeps its
    // stored jobs for the next start rather than start them now.
    if (jobs_[slot].awaiting_commit) return;
    if (draining_ && jobs_[slot].durability != Durability::kMemory && jobs_[slot].client_kind != PeerKind::kInternal) {
      return;
    }
    if (jobs_[slot].deadline_ms <= now.unix_ms) {
      entry.queue.erase(at);
      ++counters_.expired;
      ++entry.expired;
      FailJob(slot, ErrorCode::kDeadlineExceeded, "deadline passed while queued");
      continue;
    }
    bool avoided = false;
    const auto pick_start = std::chrono::steady_clock::now();  // measured, not the injected clock
    const std::uint32_t worker = PickWorker(service, jobs_[slot].rejected_by, avoided);
    // Per dispatch: a service nobody serves (a hostile peer's, say) gets no timings kept.
    if (worker != kNone) {
      timings_.Record(service, entry.name, BrokerStage::kLbStrategy, std::chrono::steady_clock::now() - pick_start);
    }
    if (worker == kNone) {
      if (avoided && held < kMaxHeldLookahead) {
        ++held;
        continue;
      }
      return;
    }
    entry.queue.erase(at);
    if (const SendResult sent = SendRequest(worker, slot); sent != SendResult::kSent) {
      entry.queue.insert(entry.queue.begin() + static_cast<std::ptrdiff_t>(held), slot);
      // Its pipe is at the high-water mark: the job waits for the worker's next answer.
      if (sent == SendResult::kFull) return;
      // The worker is gone: its ROUTER route vanished. Drop the worker; the job stays queued.
      RemoveUnreachable(worker, now, false);
      held = 0;
      continue;
    }
    Job& job = jobs_[slot];
    Worker& holder = workers_[worker];
    timings_.Record(service, entry.name, BrokerStage::kQueueWait, now.steady - job.enqueued_at);
    job.dispatched_at = now.steady;
    Hold(slot, worker);
    in_flight_deadlines_.Insert(slot);
    if (job.durability != Durability::kMemory) {
      StoreOp op;
      op.kind = StoreOp::Kind::kDispatched;
      op.durability = Durability::kWrite;  // a lost mark costs an attempt number, not a job
      op.job.id = job.id;
      op.job.seq = job.seq;
      op.job.attempt = job.attempt;
      op.job.worker = holder.name;
      op.job.since_ms = now.unix_ms;
      store_ops_.push_back(std::move(op));
    }
    ++holder.in_flight;
    holder.last_sent = now.steady;
    holder.last_dispatch = now.steady;
    holder.dispatch_sequence = ++dispatch_sequence_;
    ++entry.in_flight;
    ++entry.dispatched;
  }
}

SendResult Broker::SendRequest(std::uint32_t worker_slot, std::uint32_t slot) {
  const Worker& worker = workers_[worker_slot];
  Job& job = jobs_[slot];
  const auto command = static_cast<std::uint8_t>(WorkerCommand::kRequest);
  const std::string_view header = HeaderFor(worker.kind);
  out_.clear();
  out_.emplace_back(worker.identity.data(), worker.identity.size());
  out_.emplace_back();
  out_.emplace_back(header.data(), header.size());
  out_.emplace_back(&command, 1);
  // copy() shares the received buffer (reference counted), so payloads are not copied.
  auto share = [this](zmq::message_t& frame) {
    out_.emplace_back();
    out_.back().copy(frame);
  };
  if (worker.kind == PeerKind::kCourier) {
    share(job.envelope);
    share(job.payload);
    // Who submitted it, when CURVE says (PROTOCOL.md §7.1): the worker names it in the
    // error reports it files for this job.
    if (!job.sender.empty()) out_.emplace_back(job.sender.data(), job.sender.size());
  } else {
    out_.emplace_back(job.client.data(), job.client.size());
    out_.emplace_back();
    if (job.client_kind == PeerKind::kMdp) {
      share(job.payload);
      for (auto& frame : job.extra_body) share(frame);
    } else {
      share(job.envelope);
      share(job.payload);
    }
  }
  return SendFrames();
}

void Broker::CompleteJob(std::uint32_t slot) {
  Job& job = jobs_[slot];
  if (job.durability != Durability::kMemory) {
    StoreOp op;
    op.kind = StoreOp::Kind::kRemoveJob;
    op.durability = Durability::kWrite;  // a lost removal runs the job again after a restart
    op.job.id = job.id;
    op.job.seq = job.seq;
    store_ops_.push_back(std::move(op));
  }
  NotifyWaiters(job.id);
  if (job.worker != kNone) {
    Worker& worker = workers_[job.worker];
    if (worker.in_flight > 0) --worker.in_flight;
    if (services_[job.service].in_flight > 0) --services_[job.service].in_flight;
    Unhold(slot);
  }
  if (job.dead_letter && dead_letters_queued_ > 0) --dead_letters_queued_;
  Service& owner = services_[job.service];
  owner.bytes -= std::min<std::size_t>(owner.bytes, job.bytes);
  held_bytes_ -= std::min<std::size_t>(held_bytes_, job.bytes);
  bytes_since_trim_ += job.bytes;
  // For a trim once quiet: a small job whose frames were never copied may have pinned a
  // whole libzmq receive buffer, which its release frees too.
  freed_since_trim_ += job.owns_frames ? job.bytes : std::max<std::size_t>(job.bytes, kSharedBufferBytes);
  if (bytes_since_trim_ >= kTrimAfterBytes) {
    bytes_since_trim_ = 0;
    release_memory_ = true;  // large frees: give the memory back on the next tick
  }
  in_flight_deadlines_.Erase(slot);
  job_index_.Erase(job.id);
  jobs_.Release(slot);
  if (jobs_.live() == 0 && jobs_.Trim()) {
    release_memory_ = true;  // a burst has drained: (next tick) give back the freed memory
  }
}

void Broker::OwnFrames(Job& job) {
  // libzmq decodes the messages of one read into a shared 8 KiB buffer (with ~10 KiB of
  // bookkeeping) that lives until the last frame in it is closed: a job that waits in a
  // long queue would pin ~2.5 KiB per 1 KiB payload. Larger frames have their own buffer.
  if (job.owns_frames) return;
  auto own = [](zmq::message_t& frame) {
    if (frame.size() <= kSharedBufferBytes) frame = zmq::message_t(frame.data(), frame.size());
  };
  own(job.envelope);
  own(job.payload);
  job.owns_frames = true;
}

void Broker::FailJob(std::uint32_t slot, ErrorCode code, std::string_view message, wire::JobState state) {
  const Job& job = jobs_[slot];
  RecordResult(job, state, code, message, {}, unix_now_ms_);
  ++services_[job.service].failed;
  if (job.client_kind == PeerKind::kCourier && job.mode == ReplyMode::kCall) {
    SendClientError(job, code, message);
  }
  CompleteJob(slot);
}

void Broker::Hold(std::uint32_t slot, std::uint32_t worker) {
  Job& job = jobs_[slot];
  Worker& holder = workers_[worker];
  job.worker = worker;
  job.held_prev = kNone;
  job.held_next = holder.held_first;
  if (holder.held_first != kNone) jobs_[holder.held_first].held_prev = slot;
  holder.held_first = slot;
}

void Broker::Unhold(std::uint32_t slot) {
  Job& job = jobs_[slot];
  if (job.worker == kNone) return;
  if (job.held_prev != kNone) {
    jobs_[job.held_prev].held_next = job.held_next;
  } else {
    workers_[job.worker].held_first = job.held_next;
  }
  if (job.held_next != kNone) jobs_[job.held_next].held_prev = job.held_prev;
  job.held_prev = kNone;
  job.held_next = kNone;
  job.worker = kNone;
}

void Broker::Requeue(std::uint32_t slot, bool count_attempt, const Now& now, ErrorCode exhausted,
                     std::string_view why) {
  Job& job = jobs_[slot];
  const std::uint32_t service = job.service;
  if (job.worker != kNone) {
    Worker& worker = workers_[job.worker];
    if (worker.in_flight > 0) --worker.in_flight;
    if (services_[service].in_flight > 0) --services_[service].in_flight;
    Unhold(slot);
  }
  in_flight_deadlines_.Erase(slot);
  if (count_attempt) {
    timings_.RecordError(service, services_[service].name, BrokerStage::kDispatch);
    if (job.attempt >= job.max_attempts) {
      DeadLetter(slot, exhausted,
                 std::string(why) + " on attempt " + std::to_string(job.attempt) + " of " +
                     std::to_string(job.max_attempts),
                 now);
      return;
    }
    ++job.attempt;
    ++counters_.redelivered;
    ++services_[service].redelivered;
    // A fresh buffer: the old one may still sit in ZeroMQ's pipe to the lost worker.
    zmq::message_t envelope(job.envelope.data(), job.envelope.size());
    if (envelope.size() >= detail::kMinEnvelopeBytes) {
      detail::PatchAttempt(static_cast<char*>(envelope.data()), envelope.size(), job.attempt);
    }
    job.envelope = std::move(envelope);
  }
  services_[service].queue.push_front(slot);
}

void Broker::ChargeCrash(std::uint32_t slot, std::string_view why, const Now& now) {
  Job& job = jobs_[slot];
  if (job.answered) {
    // Its client was told deadline_exceeded while it was held: it is not redelivered.
    CompleteJob(slot);
    return;
  }
  ++counters_.crashes;
  if (job.crashes < UINT16_MAX) ++job.crashes;
  const std::uint32_t max_crashes = services_[job.service].policy.max_crashes;
  if (job.crashes >= max_crashes) {
    ++counters_.poison_jobs;
    DeadLetter(slot, ErrorCode::kWorkerCrashed,
               "poison job: " + std::string(why) + "; " + std::to_string(job.crashes) + " worker crash" +
                   (job.crashes == 1 ? "" : "es") + " while holding it (max_crashes " + std::to_string(max_crashes) +
                   "), so it is not handed to another worker",
               now);
    return;
  }
  Requeue(slot, true, now, ErrorCode::kAttemptsExhausted, why);
}

void Broker::DeadLetter(std::uint32_t slot, ErrorCode code, std::string_view message, const Now& now) {
  ++counters_.dead_lettered;
  ++services_[jobs_[slot].service].dead_lettered;
  {
    const Job& job = jobs_[slot];
    spdlog::warn("job {} of '{}' dead-lettered: {}", job.id.Hex(), services_[job.service].name, message);
  }
  // The report carries the original envelope and still-sealed payload: the sink never
  // needs the key, and can replay the job as it was.
  if (jobs_[slot].client_kind != PeerKind::kInternal) {
    std::uint32_t report = kNone;
    if (dead_letters_queued_ < config_.dead_letter_buffer) {
      const Job& job = jobs_[slot];
      const std::string payload = EncodeDeadLetter(
          DeadLetterInput{.service = services_[job.service].name,
                          .job_id = job.id,
                          .attempt = job.attempt,
                          .max_attempts = job.max_attempts,
                          .code = code,
                          .message = message,
                          .envelope = job.envelope.to_string_view(),
                          .payload = job.payload.to_string_view(),
                          .time_ms = now.unix_ms,
                          .sender = job.sender},
          config_.bind.front());
      report = EnqueueInternal(detail::kErrorSinkService, payload, kDeadLetterLifetimeMs, now);
    }
    if (report == kNone) {
      ++counters_.dead_letter_dropped;
    } else {
      jobs_[report].dead_letter = true;
      ++dead_letters_queued_;
    }
  }
  FailJob(slot, code, message, wire::JobState::kDead);
  if (const std::uint32_t sink = FindService(detail::kErrorSinkService); sink != kNone) Dispatch(sink, now);
}

std::uint32_t Broker::EnqueueInternal(std::string_view service_name, const std::string& payload,
                                      std::uint64_t lifetime_ms, const Now& now) {
  const std::uint32_t service = FindOrAddService(service_name, now);
  if (service == kNone) return kNone;
  const std::uint32_t slot = NewBrokerJob(service, ReplyMode::kSend, lifetime_ms, PeerKind::kInternal, now);
  jobs_[slot].payload = zmq::message_t(payload.data(), payload.size());
  if (Enqueue(service, slot, now) == kNone) {
    jobs_.Release(slot);
    return kNone;
  }
  // Dead letters are kept like any accepted job (metrics reports are "memory" by policy);
  // nobody waits for their ACCEPT, so they are not held back for the commit.
  if (Stores(ReplyMode::kSend, service)) StoreJob(slot, StoredOrigin::kInternal, false, now);
  return slot;
}

std::uint32_t Broker::NewBrokerJob(std::uint32_t service, ReplyMode mode, std::uint64_t lifetime_ms,
                                   PeerKind client_kind, const Now& now) {
  Envelope envelope;
  envelope.job_id = JobId::Random();
  envelope.service = services_[service].name;
  envelope.created_at_ms = now.unix_ms;
  envelope.deadline_ms = now.unix_ms + lifetime_ms;
  envelope.max_attempts = config_.max_attempts;
  envelope.mode = mode;
  const std::string envelope_bytes = detail::EncodeEnvelope(envelope);
  const std::uint32_t slot = jobs_.Acquire();
  Job& job = jobs_[slot];
  job.id = envelope.job_id;
  job.service = service;
  job.client_kind = client_kind;
  job.envelope = zmq::message_t(envelope_bytes.data(), envelope_bytes.size());
  job.deadline_ms = envelope.deadline_ms;
  job.max_attempts = envelope.max_attempts;
  job.mode = mode;
  return slot;
}

void Broker::ReportMetrics(const Now& now) {
  // Only while a collector listens: otherwise the next report covers the longer interval.
  const std::uint32_t collector = FindService(detail::kMetricsService);
  if (collector == kNone || services_[collector].workers.empty()) return;
  const auto interval = std::chrono::duration_cast<std::chrono::milliseconds>(now.steady - last_metrics_);
  const std::string report = timings_.BuildReport(config_.bind.front(), static_cast<std::uint64_t>(interval.count()));
  if (report.empty()) return;
  if (EnqueueInternal(detail::kMetricsService, report, kMetricsLifetimeMs, now) == kNone) return;
  timings_.Commit();
  last_metrics_ = now.steady;
  Dispatch(collector, now);
}

bool Broker::IsUnknownService(std::uint32_t service, ReplyMode mode, const Now& now) const {
  // Enqueued jobs are work handed over for later: they wait for their service to appear.
  // Built-in services are known by name: reports and dead letters wait for a late sink.
  return !services_[service].served && mode != ReplyMode::kEnqueue &&
         now.steady - started_ >= config_.UnknownServiceGrace() && !IsBuiltinService(services_[service].name);
}

std::string Broker::UnknownServiceMessage(std::uint32_t service) const {
  return "no worker serves '" + services_[service].name + "' (none registered it since the broker started; " +
         "`courier services` lists those that are served)";
}

void Broker::ExpireQueued(const Now& now) {
  for (std::uint32_t service = 0; service < services_.capacity(); ++service) {
    if (!services_.IsLive(service)) continue;
    auto& queue = services_[service].queue;
    if (queue.empty()) continue;
    std::vector<std::uint32_t> expired;
    std::vector<std::uint32_t> unserved;
    std::erase_if(queue, [&](std::uint32_t slot) {
      const Job& job = jobs_[slot];
      if (job.deadline_ms <= now.unix_ms) {
        expired.push_back(slot);
        return true;
      }
      // Queued while the broker was starting up, for a service no worker came to serve.
      if (job.client_kind == PeerKind::kCourier && IsUnknownService(service, job.mode, now)) {
        unserved.push_back(slot);
        return true;
      }
      return false;
    });
    for (const std::uint32_t slot : expired) {
      ++counters_.expired;
      ++services_[service].expired;
      FailUnattended(slot, ErrorCode::kDeadlineExceeded, "deadline passed while queued", now);
    }
    for (const std::uint32_t slot : unserved) {
      ++counters_.unknown_service;
      FailUnattended(slot, ErrorCode::kNoSuchService, UnknownServiceMessage(service), now);
    }
  }
}

void Broker::FailUnattended(std::uint32_t slot, ErrorCode code, std::string_view message, const Now& now) {
  // A sent or enqueued job has nobody waiting to be told: it is dead-lettered (sealed
  // payload kept, replayable) like a job that ran out of attempts. Reports are not.
  const Job& job = jobs_[slot];
  if (job.client_kind != PeerKind::kInternal && job.mode != ReplyMode::kCall) {
    DeadLetter(slot, code, message, now);
  } else {
    FailJob(slot, code, message);
  }
}

void Broker::OnSlowClientDropped(std::string_view client, const Now& now) {
  ++counters_.slow_clients_dropped;
  for (std::uint32_t service = 0; service < services_.capacity(); ++service) {
    if (!services_.IsLive(service)) continue;
    std::vector<std::uint32_t> abandoned;
    std::erase_if(services_[service].queue, [&](std::uint32_t slot) {
      const Job& job = jobs_[slot];
      if (job.client_kind != PeerKind::kCourier || job.mode != ReplyMode::kCall || job.client != client) return false;
      abandoned.push_back(slot);
      return true;
    });
    for (const std::uint32_t slot : abandoned) {
      RecordResult(jobs_[slot], wire::JobState::kFailed, ErrorCode::kUnavailable,
                   "its client's connection was dropped (max_client_bytes)", {}, now.unix_ms);
      ++services_[service].failed;
      CompleteJob(slot);
    }
  }
}

void Broker::ExpireInFlight(const Now& now) {
  // Each job leaves the heap here, so a tick costs O(expired × log in-flight).
  for (std::uint32_t slot = in_flight_deadlines_.PopExpired(now.unix_ms); slot != kNone;
       slot = in_flight_deadlines_.PopExpired(now.unix_ms)) {
    Job& job = jobs_[slot];
    job.answered = true;  // still charged to its worker until it answers or is lost
    ++counters_.expired;
    ++services_[job.service].expired;
    ++services_[job.service].failed;
    if (job.client_kind == PeerKind::kCourier && job.mode == ReplyMode::kCall) {
      SendClientError(job, ErrorCode::kDeadlineExceeded, "deadline passed while a worker held the job");
    }
    RecordResult(job, wire::JobState::kFailed, ErrorCode::kDeadlineExceeded,
                 "deadline passed while a worker held the job", {}, now.unix_ms);
  }
}

// ---------------------------------------------------------------------------------------
// Ticks, workers and services

void Broker::OnTick(const Now& now) {
  unix_now_ms_ = now.unix_ms;
  if (!waiters_.empty()) ExpireWaiters(now);
  const auto monitor_start = std::chrono::steady_clock::now();  // lb_monitor: measured, not injected
  for (std::uint32_t slot = 0; slot < workers_.capacity(); ++slot) {
    Worker& worker = workers_[slot];
    if (!worker.live) continue;
    if (now.steady >= worker.expiry) {
      ++counters_.workers_expired;
      spdlog::warn("worker {} of '{}' expired after {} ms of silence", WorkerName(worker),
                   services_[worker.service].name, config_.expiry().count());
      RemoveWorker(slot, false, now);
      continue;
    }
    if (now.steady - worker.last_sent >= config_.heartbeat_interval) {
      worker.last_sent = now.steady;
      if (SendToWorker(worker.identity, worker.kind, static_cast<std::uint8_t>(WorkerCommand::kHeartbeat)) ==
          SendResult::kUnreachable) {
        RemoveUnreachable(slot, now);
      }
    }
  }
  if (probe_step_ < kProbeDelays.size() && now.steady >= probe_base_ + kProbeDelays[probe_step_]) {
    while (probe_step_ < kProbeDelays.size() && now.steady >= probe_base_ + kProbeDelays[probe_step_]) ++probe_step_;
    ProbeWorkers(now);
  }
  if (now.steady >= next_deadline_scan_) {
    ExpireQueued(now);
    ExpireInFlight(now);
    next_deadline_scan_ = now.steady + std::chrono::milliseconds(100);
  }
  timings_.RecordMonitor(std::chrono::steady_clock::now() - monitor_start);
  PruneServices(now);
  if (now.steady >= next_metrics_) {
    ReportMetrics(now);
    next_metrics_ = now.steady + std::chrono::seconds(1);
  }
  // A burst that is over still leaves what it freed in the allocator's arenas (libzmq's I/O
  // thread allocates every received message in an arena of its own): job bytes freed below
  // kTrimAfterBytes, messages dropped as bad input (no job counted them), what libzmq frees
  // when peers leave, services pruned long after. Once the broker is quiet, give that back
  // too: at once after a burst (at most once a second), and what trickles in after it every
  // few seconds. A few long-lived jobs must not keep a burst's index or deadline heap either.
  if (now.steady - last_trim_ >= std::chrono::seconds(1)) {
    const std::uint64_t recent = messages_ - messages_at_last_check_;
    messages_at_last_check_ = messages_;
    const bool quiet = recent < 10000 && held_bytes_ < kTrimQuietBytes;
    // A second after the last close: libzmq tears a pipe down in steps, across both threads.
    const bool peers_left = disconnects_since_trim_ > 0 && now.steady - last_disconnect_ >= std::chrono::seconds(1);
    const bool burst_over =
        freed_since_trim_ >= kTrimQuietBytes || messages_ - messages_at_trim_ >= 100000 || peers_left;
    const bool tail = (freed_since_trim_ > 0 || messages_ > messages_at_trim_) &&
                      now.steady - last_trim_ >= kTrimTailInterval;
    if (quiet && (burst_over || tail)) release_memory_ = true;
    if (job_index_.Shrink()) release_memory_ = true;
    if (in_flight_deadlines_.Shrink()) release_memory_ = true;
  }
  if (release_memory_) {
    release_memory_ = false;
    bytes_since_trim_ = 0;
    freed_since_trim_ = 0;
    disconnects_since_trim_ = 0;
    last_trim_ = now.steady;
    messages_at_trim_ = messages_;
#ifdef __GLIBC__
    ::malloc_trim(0);  // freed chunks inside the heap go back to the system too, not only its top
#endif
  }
}

void Broker::BeginDrain(const Now& now) {
  draining_ = true;
  for (std::uint32_t slot = 0; slot < services_.capacity(); ++slot) {
    if (!services_.IsLive(slot)) continue;
    Service& service = services_[slot];
    std::deque<std::uint32_t> queued;
    queued.swap(service.queue);
    for (const std::uint32_t slot : queued) {
      if (jobs_[slot].client_kind == PeerKind::kInternal || jobs_[slot].durability != Durability::kMemory) {
        // Reports wait for the sink as long as the drain lasts; stored jobs stay stored for
        // the next start (their clients were ACCEPTed, or are, once the commit is done).
        service.queue.push_back(slot);
      } else {
        FailJob(slot, ErrorCode::kShuttingDown, "the broker is shutting down");
      }
    }
  }
  (void)now;
}

void Broker::OnPeerDisconnected(const Now& now) {
  // A burst of closes (clients going away) shares one immediate probe; the delayed ones
  // start over from the latest close.
  ++disconnects_since_trim_;
  last_disconnect_ = now.steady;
  probe_base_ = now.steady;
  probe_step_ = 0;
  if (now.steady - last_probe_ >= kMinProbeGap) ProbeWorkers(now);
}

SteadyTime Broker::next_probe() const {
  return probe_step_ < kProbeDelays.size() ? probe_base_ + kProbeDelays[probe_step_] : SteadyTime::max();
}

void Broker::ProbeWorkers(const Now& now) {
  last_probe_ = now.steady;
  for (std::uint32_t slot = 0; slot < workers_.capacity(); ++slot) {
    Worker& worker = workers_[slot];
    if (!worker.live || worker.in_flight == 0) continue;
    worker.last_sent = now.steady;
    if (SendToWorker(worker.identity, worker.kind, static_cast<std::uint8_t>(WorkerCommand::kHeartbeat)) ==
        SendResult::kUnreachable) {
      RemoveUnreachable(slot, now);
    }
  }
}

void Broker::RemoveUnreachable(std::uint32_t slot, const Now& now, bool dispatch) {
  const Worker& worker = workers_[slot];
  if (!worker.live) return;
  ++counters_.workers_unreachable;
  spdlog::warn("worker {} of '{}' is gone (its connection closed) holding {} job(s)", WorkerName(worker),
               services_[worker.service].name, worker.in_flight);
  RemoveWorker(slot, false, now, dispatch);
}

bool Broker::Drained() const {
  for (std::uint32_t slot = 0; slot < jobs_.capacity(); ++slot) {
    if (!jobs_.IsLive(slot)) continue;
    const Job& job = jobs_[slot];
    if (job.client_kind != PeerKind::kInternal && job.worker != kNone && !job.answered) return false;
  }
  return true;
}

void Broker::DisconnectAll() {
  for (std::uint32_t slot = 0; slot < jobs_.capacity(); ++slot) {
    // A stored job stays in the store: the next start hands it out again (attempt + 1).
    if (jobs_.IsLive(slot) && jobs_[slot].client_kind != PeerKind::kInternal && !jobs_[slot].answered &&
        jobs_[slot].durability == Durability::kMemory) {
      FailJob(slot, ErrorCode::kShuttingDown, "the broker stopped before the job finished");
    }
  }
  for (std::uint32_t slot = 0; slot < workers_.capacity(); ++slot) {
    const Worker& worker = workers_[slot];
    if (worker.live) SendToWorker(worker.identity, worker.kind, static_cast<std::uint8_t>(WorkerCommand::kDisconnect));
  }
}

bool Broker::OwnsJob(const Job& job, std::string_view client) {
  if (job.client_kind != PeerKind::kCourier) return false;  // broker-made ids: nobody resends them
  if (!current_user_.empty() || !job.sender.empty()) {
    // CURVE: the submitter is the allow-listed key, whatever connection it comes on.
    return job.sender == SenderName(current_user_);
  }
  if (job.client == client) return true;
  // Without CURVE the submitter is the connection. A client that reconnects (a fresh socket
  // after its broker looked down) gets a new routing id: it may take the job over only when
  // the connection that submitted it is gone. Probe it with an empty-correlation PONG (proof
  // of life that no client mistakes for an answer): ROUTER_MANDATORY fails a gone peer.
  const std::string_view probe_correlation;
  out_.clear();
  out_.emplace_back(job.client.data(), job.client.size());
  out_.emplace_back();
  out_.emplace_back(detail::kCourierClient.data(), detail::kCourierClient.size());
  const auto command = static_cast<std::uint8_t>(ClientCommand::kPong);
  out_.emplace_back(&command, 1);
  out_.emplace_back(probe_correlation.data(), probe_correlation.size());
  out_.emplace_back(incarnation_.data(), incarnation_.size());
  return SendFrames() == SendResult::kUnreachable;
}

std::uint32_t Broker::FindWorker(std::string_view identity) const {
  const auto found = worker_index_.find(identity);
  return found == worker_index_.end() ? kNone : found->second;
}

std::uint32_t Broker::FindService(std::string_view name) const {
  const auto found = service_index_.find(name);
  return found == service_index_.end() ? kNone : found->second;
}

std::uint32_t Broker::FindOrAddService(std::string_view name, const Now& now, std::string_view creator,
                                       Refusal& refusal) {
  refusal = Refusal::kNone;
  if (const std::uint32_t found = FindService(name); found != kNone) {
    services_[found].last_used = now.steady;
    return found;
  }
  if (live_services_ >= (creator.empty() ? kMaxServices : kMaxClientServices)) {
    ++counters_.new_service_refusals;
    refusal = Refusal::kTableFull;
    return kNone;
  }
  if (!creator.empty()) {
    // Each creator may name only so many new services per window (O(1): one map entry).
    if (now.steady >= new_services_window_end_) {
      new_services_by_peer_.clear();
      new_services_window_end_ = now.steady + config_.new_services_window;
    }
    auto it = new_services_by_peer_.find(creator);
    if (it == new_services_by_peer_.end()) {
      if (new_services_by_peer_.size() >= kMaxTrackedCreators) {
        ++counters_.new_service_refusals;
        refusal = Refusal::kPeerQuota;
        return kNone;
      }
      it = new_services_by_peer_.emplace(std::string(creator), 0).first;
    }
    if (it->second >= config_.new_services_per_peer) {
      ++counters_.new_service_refusals;
      refusal = Refusal::kPeerQuota;
      return kNone;
    }
    ++it->second;
  }
  const std::uint32_t slot = services_.Acquire();
  Service& service = services_[slot];
  service.name = std::string(name);
  service.policy = config_.PolicyFor(name);
  service.last_used = now.steady;
  service_index_.emplace(service.name, slot);
  ++live_services_;
  return slot;
}

std::string Broker::RefusalMessage(Refusal refusal) const {
  if (refusal == Refusal::kPeerQuota) {
    return "this client named too many new services (at most " + std::to_string(config_.new_services_per_peer) +
           " per " + std::to_string(config_.new_services_window.count()) +
           " ms, new_services_per_peer): retry later or register a worker for the service first";
  }
  return "the broker holds too many services (" + std::to_string(live_services_) + ")";
}

void Broker::PruneServices(const Now& now) {
  // A bounded slice of the table per tick; a full sweep of 10000 services takes 20 ticks.
  const auto size = services_.capacity();
  if (size == 0) return;
  for (std::uint32_t n = 0; n < std::min(kPruneBatch, size); ++n) {
    if (prune_cursor_ >= size) prune_cursor_ = 0;
    const std::uint32_t slot = prune_cursor_++;
    if (!services_.IsLive(slot)) continue;
    Service& service = services_[slot];
    if (!service.workers.empty() || !service.queue.empty() || service.in_flight > 0) continue;
    if (now.steady - service.last_used < config_.service_grace) continue;
    service_index_.erase(service.name);
    timings_.Forget(slot);
    services_.Release(slot);  // a chunk of pruned services is given back whole
    freed_since_trim_ += kPrunedServiceBytes;
    --live_services_;
    ++counters_.services_pruned;
  }
}

void Broker::RemoveWorker(std::uint32_t slot, bool send_disconnect, const Now& now, bool dispatch, WorkerExit exit) {
  Worker& worker = workers_[slot];
  if (!worker.live) return;
  const std::uint32_t service = worker.service;
  if (send_disconnect) SendToWorker(worker.identity, worker.kind, static_cast<std::uint8_t>(WorkerCommand::kDisconnect));
  // Out of its service first: nothing below (a dead letter dispatched to courier.errors)
  // may pick it.
  std::erase(services_[service].workers, slot);
  services_[service].last_used = now.steady;  // its grace starts when its last worker leaves
  worker_index_.erase(worker.identity);
  std::vector<std::uint32_t> held;
  for (std::uint32_t job = worker.held_first; job != kNone; job = jobs_[job].held_next) held.push_back(job);
  std::reverse(held.begin(), held.end());  // the list is newest first: ties keep dispatch order
  // Each requeued job goes to the front: handled newest first, they queue oldest first.
  std::stable_sort(held.begin(), held.end(),
            [&](std::uint32_t a, std::uint32_t b) { return jobs_[a].dispatched_at < jobs_[b].dispatched_at; });
  if (exit == WorkerExit::kSaidGoodbye) {
    // A worker that says goodbye did not crash on what it holds. A Courier worker hands back
    // (REJECT) every job it will not finish before it says so: one still held was on its way
    // when the worker left, never seen, and costs no attempt. A plain MDP worker has no way
    // to hand a job back, so it may have started it: that costs an attempt, not a crash.
    const bool courier = worker.kind == PeerKind::kCourier;
    const std::string why = "worker " + WorkerName(worker) + " disconnected holding it";
    for (auto job = held.rbegin(); job != held.rend(); ++job) {
      if (jobs_[*job].answered) {
        CompleteJob(*job);
      } else if (courier) {
        Requeue(*job, false, now);
      } else {
        Requeue(*job, true, now, ErrorCode::kAttemptsExhausted, why);
      }
    }
  } else {
    const std::string why = "worker " + WorkerName(worker) + " was lost holding it";
    for (auto job = held.rbegin(); job != held.rend(); ++job) ChargeCrash(*job, why, now);
  }
  workers_.Release(slot);
  if (dispatch) Dispatch(service, now);
}

void Broker::ProtocolError(std::string_view identity, PeerKind kind, std::string_view why, const Now& now) {
  ++counters_.protocol_errors;
  LogBadInput(identity, why);
  const std::uint32_t worker = FindWorker(identity);
  if (worker != kNone) {
    RemoveWorker(worker, true, now);
  } else {
    SendToWorker(identity, kind, static_cast<std::uint8_t>(WorkerCommand::kDisconnect));
  }
}

// ---------------------------------------------------------------------------------------
// Output

SendResult Broker::SendFrames() {
  const SendResult result = outbox_.Send(out_);
  out_.clear();
  return result;
}

SendResult Broker::SendToWorker(std::string_view identity, PeerKind kind, std::uint8_t command) {
  const std::string_view header = HeaderFor(kind);
  out_.clear();
  out_.emplace_back(identity.data(), identity.size());
  out_.emplace_back();
  out_.emplace_back(header.data(), header.size());
  out_.emplace_back(&command, 1);
  return SendFrames();
}

std::string Broker::WorkerName(const Worker& worker) const {
  if (worker.info.instance.empty()) return Printable(worker.identity);
  return worker.info.instance + " (pid " + std::to_string(worker.info.pid) + ")";
}

void Broker::CheckKeyFingerprints(std::uint32_t slot) {
  const Worker& worker = workers_[slot];
  if (worker.info.keys.empty()) return;
  auto ids = [](const Worker& holder) {
    std::string text;
    for (const detail::KeyFingerprint& key : holder.info.keys) text += (text.empty() ? "" : ", ") + std::to_string(key.id);
    return text;
  };
  for (const std::uint32_t other_slot : services_[worker.service].workers) {
    if (other_slot == slot) continue;
    const Worker& other = workers_[other_slot];
    if (other.info.keys.empty()) continue;  // plain MDP, or a host that announces none
    bool shared = false;
    for (const detail::KeyFingerprint& key : worker.info.keys) {
      for (const detail::KeyFingerprint& theirs : other.info.keys) {
        if (theirs.id != key.id) continue;
        shared = true;
        if (theirs.fingerprint == key.fingerprint) continue;
        ++counters_.key_mismatches;
        if (key_log_.Allow()) {
          spdlog::warn("workers {} and {} of service '{}' hold different keys under id {}: their jobs will fail "
                       "to open on one of them",
                       WorkerName(other), WorkerName(worker), services_[worker.service].name, key.id);
        }
      }
    }
    // Key ids are random per keyring: two keyrings made apart share none. A worker holding
    // more keys than another (a rotation under way) still shares the older one.
    if (!shared) {
      ++counters_.key_mismatches;
      if (key_log_.Allow()) {
        spdlog::warn("workers {} (key ids {}) and {} (key ids {}) of service '{}' hold no key in common: a job "
                     "sealed for one fails unknown_key on the other (give them the same keyring)",
                     WorkerName(other), ids(other), WorkerName(worker), ids(worker), services_[worker.service].name);
      }
    }
  }
}

void Broker::SendClientError(const Job& job, ErrorCode code, std::string_view message) {
  SendClientError(job.client, job.id, code, message);
}

void Broker::SendClientError(std::string_view client, const JobId& id, ErrorCode code, std::string_view message) {
  const std::string body = detail::EncodeErrorBody(id, code, message);
  SendCourierClient(client, static_cast<std::uint8_t>(ClientCommand::kError), body);
}

void Broker::SendCourierClient(std::string_view client, std::uint8_t command, std::string_view body1,
                               std::string_view body2, bool two_bodies) {
  out_.clear();
  out_.emplace_back(client.data(), client.size());
  out_.emplace_back();
  out_.emplace_back(detail::kCourierClient.data(), detail::kCourierClient.size());
  out_.emplace_back(&command, 1);
  out_.emplace_back(body1.data(), body1.size());
  if (two_bodies) out_.emplace_back(body2.data(), body2.size());
  const SendResult sent = SendFrames();
  if (sent == SendResult::kFull) {
    ++counters_.client_sends_full;
  } else if (sent == SendResult::kUnreachable) {
    ++counters_.unreachable_clients;
  }
}

void Broker::LogBadInput(std::string_view identity, std::string_view what) {
  if (!bad_input_log_.Allow()) return;
  const std::size_t suppressed = bad_input_log_.TakeSuppressed();
  spdlog::warn("dropped input from peer {}: {}{}", Printable(identity), what,
               suppressed > 0 ? " (" + std::to_string(suppressed) + " similar messages suppressed)" : "");
}

std::size_t Broker::QueueDepth(std::string_view service) const {
  const std::uint32_t slot = FindService(service);
  return slot == kNone ? 0 : services_[slot].queue.size();
}

std::size_t Broker::WorkerCount(std::string_view service) const {
  const std::uint32_t slot = FindService(service);
  return slot == kNone ? 0 : services_[slot].workers.size();
}

}  // namespace courier::broker
