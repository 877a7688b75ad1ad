// The routing core's side of stored jobs (PROTOCOL.md §6.5, §6.6, §9.1): which jobs are
// stored, the ops it emits for the loop to commit, what it does once a commit is done,
// restart, job lookups and Titanic. Disk-free like the rest of the core.
#include <spdlog/spdlog.h>

#include <algorithm>

#include "broker.hpp"
#include "envelope_codec.hpp"
#include "protocol.hpp"

namespace courier::broker {
namespace {

using detail::ClientCommand;

constexpr std::string_view kTitanicRequest = "titanic.request";
constexpr std::string_view kTitanicReply = "titanic.reply";
constexpr std::string_view kTitanicClose = "titanic.close";

std::string_view View(const zmq::message_t& frame) { return frame.to_string_view(); }

std::uint64_t Ms(std::chrono::steady_clock::duration duration) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(duration).count();
  return ms < 0 ? 0 : static_cast<std::uint64_t>(ms);
}

PeerKind KindOf(StoredOrigin origin) {
  switch (origin) {
    case StoredOrigin::kTitanic:
      return PeerKind::kMdp;
    case StoredOrigin::kInternal:
      return PeerKind::kInternal;
    case StoredOrigin::kCourier:
      break;
  }
  return PeerKind::kCourier;
}

}  // namespace

bool Broker::Stores(ReplyMode mode, std::uint32_t service) const {
  return store_enabled_ && (mode == ReplyMode::kSend || mode == ReplyMode::kEnqueue) &&
         services_[service].policy.durability != Durability::kMemory;
}

void Broker::StoreJob(std::uint32_t slot, StoredOrigin origin, bool gate, const Now& now) {
  Job& job = jobs_[slot];
  job.durability = services_[job.service].policy.durability;
  job.seq = next_seq_++;
  job.accepted_ms = now.unix_ms;
  job.awaiting_commit = gate;
  if (gate) awaiting_commit_.emplace_back(slot, job.id);
  StoreOp op;
  op.kind = StoreOp::Kind::kAddJob;
  op.durability = job.durability;
  StoredJob& stored = op.job;
  stored.id = job.id;
  stored.seq = job.seq;
  stored.service = services_[job.service].name;
  stored.origin = origin;
  stored.mode = job.mode;
  stored.durability = job.durability;
  stored.envelope = job.envelope.to_string();
  stored.payload = job.payload.to_string();
  for (const auto& frame : job.extra_body) stored.extra_body.push_back(frame.to_string());
  stored.sender = job.sender;
  stored.attempt = job.attempt;
  stored.max_attempts = job.max_attempts;
  stored.deadline_ms = job.deadline_ms;
  stored.accepted_ms = now.unix_ms;
  stored.since_ms = now.unix_ms;
  store_ops_.push_back(std::move(op));
}

void Broker::RecordResult(const Job& job, wire::JobState state, ErrorCode code, std::string_view message,
                          std::vector<std::string> reply, std::uint64_t now_ms) {
  if (!store_enabled_ || job.mode != ReplyMode::kEnqueue) return;
  StoreOp op;
  op.kind = StoreOp::Kind::kAddResult;
  op.durability = job.durability;
  op.result_seq = job.seq;
  wire::JobRecord& result = op.result;
  result.id = job.id;
  result.service = services_[job.service].name;
  result.state = state;
  result.attempt = job.attempt;
  result.max_attempts = job.max_attempts;
  result.since_ms = now_ms;
  result.code = code;
  result.message = std::string(message);
  result.expires_ms = now_ms + static_cast<std::uint64_t>(services_[job.service].policy.result_ttl.count());
  result.durable = job.durability != Durability::kMemory;
  result.reply = std::move(reply);
  store_ops_.push_back(std::move(op));
  NotifyWaiters(job.id);
}

void Broker::SendAccept(std::string_view client, const JobId& id) {
  out_.clear();
  out_.emplace_back(client.data(), client.size());
  out_.emplace_back();
  out_.emplace_back(detail::kCourierClient.data(), detail::kCourierClient.size());
  const auto command = static_cast<std::uint8_t>(ClientCommand::kAccept);
  out_.emplace_back(&command, 1);
  out_.emplace_back(id.View().data(), id.View().size());
  const SendResult sent = SendFrames();
  if (sent == SendResult::kUnreachable) {
    ++counters_.unreachable_clients;
  } else if (sent == SendResult::kFull) {
    // A burst of ACCEPTs (a group commit, a turn of 1024 SUBMITs) can meet a pipe that
    // libzmq still counts as full although the client reads: an ACCEPT is the only proof
    // its job is kept, so it waits here (16 bytes a job) instead of being dropped.
    if (deferred_accepts_.size() < kMaxDeferredAccepts) {
      deferred_accepts_.push_back(DeferredAccept{std::string(client), id});
    } else {
      ++counters_.client_sends_full;
    }
  }
}

void Broker::FlushDeferredAccepts() {
  // Bounded work per turn: a client that never reads keeps its ACCEPTs waiting cheaply.
  const std::size_t tries = std::min(deferred_accepts_.size(), kDeferredAcceptsPerTurn);
  for (std::size_t i = 0; i < tries; ++i) {
    DeferredAccept accept = std::move(deferred_accepts_.front());
    deferred_accepts_.pop_front();
    SendAccept(accept.client, accept.id);  // back of the queue again if still full
  }
}

void Broker::SendAccepted(const Job& job) {
  if (job.client.empty()) return;  // restored: its submitter was ACCEPTed before the restart
  if (job.client_kind == PeerKind::kCourier) {
    SendAccept(job.client, job.id);
  } else if (job.client_kind == PeerKind::kMdp) {
    const std::string id = job.id.Hex();
    const std::string_view bodies[] = {"200", id};
    SendMdpClient(job.client, kTitanicRequest, bodies);
  }
}

void Broker::OnStoreCommitted(const CommitResult& result, const Now& now) {
  unix_now_ms_ = now.unix_ms;
  const auto batch = std::exchange(awaiting_commit_, {});
  const bool stored = result.status == CommitResult::Status::kOk;
  std::vector<std::uint32_t> services;
  std::size_t refused = 0;
  for (const auto& [slot, id] : batch) {
    if (!jobs_.IsLive(slot)) continue;  // ended meanwhile (deadline, drain)
    Job& job = jobs_[slot];
    if (job.id != id || !job.awaiting_commit) continue;
    job.awaiting_commit = false;
    services.push_back(job.service);
    if (stored) {
      SendAccepted(job);
      continue;
    }
    // Never stored: it leaves as if it had never been accepted, and its submitter is told.
    ++refused;
    ++counters_.store_refusals;
    auto& queue = services_[job.service].queue;
    if (const auto at = std::find(queue.rbegin(), queue.rend(), slot); at != queue.rend()) {
      queue.erase(std::next(at).base());
    }
    job.durability = Durability::kMemory;
    if (job.client_kind == PeerKind::kCourier) {
      const ErrorCode code =
          result.status == CommitResult::Status::kFull ? ErrorCode::kBusy : ErrorCode::kUnavailable;
      SendClientError(job, code, result.message);
    } else if (job.client_kind == PeerKind::kMdp) {
      const std::string_view bodies[] = {"500", result.message};
      SendMdpClient(job.client, kTitanicRequest, bodies);
    }
    CompleteJob(slot);
  }
  if (!stored && store_log_.Allow(now.steady)) {
    spdlog::error("{}: {} job(s) refused{}", result.message, refused,
                  refused == 0 ? " (none waiting; removals and results are kept for the next commit)" : "");
  }
  std::sort(services.begin(), services.end());
  services.erase(std::unique(services.begin(), services.end()), services.end());
  for (const std::uint32_t service : services) Dispatch(service, now);
}

void Broker::Restore(StoredJob&& stored, const Now& now) {
  unix_now_ms_ = now.unix_ms;
  const std::uint32_t service = FindOrAddService(stored.service, now);
  if (service == kNone) {
    spdlog::error("stored job {} of '{}' not restored: the service table is full", stored.id.Hex(), stored.service);
    return;
  }
  const std::uint32_t slot = jobs_.Acquire();
  Job& job = jobs_[slot];
  job.id = stored.id;
  job.service = service;
  job.client_kind = KindOf(stored.origin);
  job.sender = std::move(stored.sender);
  job.envelope = zmq::message_t(stored.envelope.data(), stored.envelope.size());
  job.payload = zmq::message_t(stored.payload.data(), stored.payload.size());
  for (const auto& frame : stored.extra_body) job.extra_body.emplace_back(frame.data(), frame.size());
  job.deadline_ms = stored.deadline_ms;
  job.attempt = std::max<std::uint32_t>(stored.attempt, 1);
  job.max_attempts = std::max<std::uint32_t>(stored.max_attempts, 1);
  job.mode = stored.mode;
  job.durability = stored.durability == Durability::kMemory ? Durability::kWrite : stored.durability;
  job.seq = stored.seq;
  job.accepted_ms = stored.accepted_ms;
  job.owns_frames = true;
  ++counters_.restored_jobs;
  if (stored.dispatched) {
    // A worker held it when the broker stopped: that attempt is spent.
    if (job.attempt >= job.max_attempts) {
      DeadLetter(slot, ErrorCode::kAttemptsExhausted,
                 "the broker stopped while a worker held it, on attempt " + std::to_string(job.attempt) + " of " +
                     std::to_string(job.max_attempts),
                 now);
      return;
    }
    ++job.attempt;
    ++counters_.redelivered;
    ++services_[service].redelivered;
  }
  Enqueue(service, slot, now, true);
  if (job.envelope.size() >= detail::kMinEnvelopeBytes) {
    detail::PatchAttempt(static_cast<char*>(job.envelope.data()), job.envelope.size(), job.attempt);
  }
}

void Broker::FinishRestore(std::uint64_t max_seq, const Now& now) {
  next_seq_ = std::max(next_seq_, max_seq + 1);
  if (counters_.restored_jobs > 0) {
    spdlog::info("restored {} stored job(s) ({} redelivered with attempt + 1)", counters_.restored_jobs,
                 counters_.redelivered);
  }
  for (std::uint32_t service = 0; service < services_.capacity(); ++service) {
    if (services_.IsLive(service) && !services_[service].queue.empty()) Dispatch(service, now);
  }
}

// ---------------------------------------------------------------------------------------
// Job lookups

wire::JobRecord Broker::LiveRecord(const Job& job, const Now& now) const {
  wire::JobRecord record;
  record.id = job.id;
  record.service = services_[job.service].name;
  record.attempt = job.attempt;
  record.max_attempts = job.max_attempts;
  record.durable = job.durability != Durability::kMemory;
  if (job.worker == kNone) {
    record.state = wire::JobState::kQueued;
    record.since_ms = job.accepted_ms != 0 ? job.accepted_ms : now.unix_ms - Ms(now.steady - job.enqueued_at);
  } else {
    record.state = wire::JobState::kRunning;
    record.worker = workers_[job.worker].name;
    record.since_ms = now.unix_ms - Ms(now.steady - job.dispatched_at);
  }
  return record;
}

void Broker::SendQueryReply(std::string_view client, std::string_view correlation, const std::string& body) {
  SendCourierClient(client, static_cast<std::uint8_t>(ClientCommand::kQueryReply), correlation, body, true);
}

void Broker::OnJobQuery(std::string_view client, std::string_view correlation, std::string_view body,
                        const Now& now) {
  wire::JobQuery query;
  try {
    query = wire::DecodeJobQuery(body);
  } catch (const Error& error) {
    ++counters_.malformed;
    SendQueryReply(client, correlation, EncodeQueryFailure(ErrorCode::kBadRequest, error.what()));
    return;
  }
  const std::uint32_t found = job_index_.Find(query.id);
  if (found != kNone && !jobs_[found].answered) {
    if (query.wait_ms > 0 && waiters_.size() < kMaxWaiters) {
      waiters_.emplace(query.id, Waiter{.client = std::string(client),
                                        .correlation = std::string(correlation),
                                        .until = now.steady + std::chrono::milliseconds(query.wait_ms)});
      return;
    }
    ++counters_.lookups;
    SendQueryReply(client, correlation, wire::EncodeQueryReply(wire::EncodeJobRecord(LiveRecord(jobs_[found], now))));
    return;
  }
  StoreLookup lookup{.kind = StoreLookup::Kind::kJob,
                     .client = std::string(client),
                     .correlation = std::string(correlation),
                     .id = query.id,
                     .jobs = {}};
  if (store_enabled_) {
    lookups_.push_back(std::move(lookup));
  } else {
    AnswerLookup(lookup, std::optional<wire::JobRecord>{});
  }
}

void Broker::NotifyWaiters(const JobId& id) {
  if (waiters_.empty()) return;
  const auto [begin, end] = waiters_.equal_range(id);
  for (auto it = begin; it != end; ++it) {
    lookups_.push_back(StoreLookup{.kind = StoreLookup::Kind::kJob,
                                   .client = std::move(it->second.client),
                                   .correlation = std::move(it->second.correlation),
                                   .id = id,
                                   .jobs = {}});
  }
  waiters_.erase(begin, end);
}

void Broker::ExpireWaiters(const Now& now) {
  for (auto it = waiters_.begin(); it != waiters_.end();) {
    if (it->second.until > now.steady) {
      ++it;
      continue;
    }
    const std::uint32_t found = job_index_.Find(it->first);
    if (found != kNone && !jobs_[found].answered) {
      ++counters_.lookups;
      SendQueryReply(it->second.client, it->second.correlation,
                     wire::EncodeQueryReply(wire::EncodeJobRecord(LiveRecord(jobs_[found], now))));
    } else {
      lookups_.push_back(StoreLookup{.kind = StoreLookup::Kind::kJob,
                                     .client = std::move(it->second.client),
                                     .correlation = std::move(it->second.correlation),
                                     .id = it->first,
                                     .jobs = {}});
    }
    it = waiters_.erase(it);
  }
}

void Broker::AnswerLookup(const StoreLookup& lookup, const std::optional<wire::JobRecord>& record) {
  ++counters_.lookups;
  if (lookup.kind == StoreLookup::Kind::kTitanicReply) {
    if (!record) {
      const std::string_view bodies[] = {"400"};
      SendMdpClient(lookup.client, kTitanicReply, bodies);
    } else if (record->state == wire::JobState::kDone) {
      std::vector<std::string_view> bodies{"200"};
      for (const auto& frame : record->reply) bodies.push_back(frame);
      SendMdpClient(lookup.client, kTitanicReply, bodies);
    } else {
      const std::string why = std::string(ToString(record->code)) + ": " + record->message;
      const std::string_view bodies[] = {"500", why};
      SendMdpClient(lookup.client, kTitanicReply, bodies);
    }
    return;
  }
  if (!record) {
    SendQueryReply(lookup.client, lookup.correlation,
                   EncodeQueryFailure(ErrorCode::kNotFound,
                                      "no job " + lookup.id.Hex() +
                                          " here: never accepted by this broker, or its result expired"));
    return;
  }
  SendQueryReply(lookup.client, lookup.correlation, wire::EncodeQueryReply(wire::EncodeJobRecord(*record)));
}

void Broker::AnswerLookup(const StoreLookup& lookup, const wire::JobsPage& page) {
  ++counters_.lookups;
  SendQueryReply(lookup.client, lookup.correlation, wire::EncodeQueryReply(wire::EncodeJobsPage(page)));
}

// ---------------------------------------------------------------------------------------
// Titanic (RFC 9)

void Broker::SendMdpClient(std::string_view client, std::string_view service,
                           std::span<const std::string_view> bodies) {
  out_.clear();
  out_.emplace_back(client.data(), client.size());
  out_.emplace_back();
  out_.emplace_back(detail::kMdpClient.data(), detail::kMdpClient.size());
  out_.emplace_back(service.data(), service.size());
  for (const auto& body : bodies) out_.emplace_back(body.data(), body.size());
  if (SendFrames() != SendResult::kSent) ++counters_.unreachable_clients;
}

void Broker::OnTitanic(std::span<zmq::message_t> frames, const Now& now) {
  const std::string_view client = View(frames[0]);
  const std::string_view name = View(frames[3]);
  if (name == kTitanicRequest) {
    OnTitanicRequest(frames, now);
    return;
  }
  if (name != kTitanicReply && name != kTitanicClose) {
    const std::string_view bodies[] = {"501"};
    SendMdpClient(client, name, bodies);
    return;
  }
  const auto id = frames.size() > 4 ? JobId::FromHex(View(frames[4])) : std::nullopt;
  if (name == kTitanicClose) {
    if (id && store_enabled_) {
      StoreOp op;
      op.kind = StoreOp::Kind::kRemoveResult;
      op.durability = Durability::kWrite;
      op.job.id = *id;
      store_ops_.push_back(std::move(op));
    }
    const std::string_view bodies[] = {"200"};
    SendMdpClient(client, name, bodies);
    return;
  }
  if (!id) {
    const std::string_view bodies[] = {"400"};
    SendMdpClient(client, name, bodies);
    return;
  }
  if (const std::uint32_t found = job_index_.Find(*id); found != kNone && !jobs_[found].answered) {
    const std::string_view bodies[] = {"300"};
    SendMdpClient(client, name, bodies);
    return;
  }
  StoreLookup lookup{.kind = StoreLookup::Kind::kTitanicReply, .client = std::string(client), .correlation = {},
                     .id = *id, .jobs = {}};
  if (store_enabled_) {
    lookups_.push_back(std::move(lookup));
  } else {
    AnswerLookup(lookup, std::optional<wire::JobRecord>{});
  }
}

void Broker::OnTitanicRequest(std::span<zmq::message_t> frames, const Now& now) {
  const std::string_view client = View(frames[0]);
  auto refuse = [&](std::string_view why) {
    const std::string_view bodies[] = {"500", why};
    SendMdpClient(client, kTitanicRequest, bodies);
  };
  if (frames.size() < 5) {
    ++counters_.malformed;
    refuse("titanic.request takes [service][request frames...]");
    return;
  }
  const std::string_view service_name = View(frames[4]);
  if (const std::string_view problem = ServiceNameProblem(service_name); !problem.empty()) {
    ++counters_.invalid_service_names;
    refuse("invalid service name: " + std::string(problem));
    return;
  }
  if (service_name.starts_with(detail::kMmiPrefix) || service_name.starts_with(kTitanicPrefix)) {
    refuse("mmi.* and titanic.* are answered by the broker, not stored");
    return;
  }
  if (service_name.starts_with("courier.")) {
    // Built-in services take reports and operators' queries, never a plain MDP client's
    // stored request (with CURVE, courier.errors queries need an operator key).
    refuse("courier.* services are not reachable through Titanic");
    return;
  }
  if (draining_) {
    refuse("the broker is shutting down");
    return;
  }
  Refusal refusal = Refusal::kNone;
  const std::uint32_t service = FindOrAddService(service_name, now, client, refusal);
  if (service == kNone) {
    ++counters_.busy_rejections;
    refuse(RefusalMessage(refusal));
    return;
  }
  // A broker-made envelope, as for any MDP request (PROTOCOL.md §8), in mode enqueue.
  const auto lifetime = std::min(services_[service].policy.result_ttl, config_.max_deadline);
  const std::uint32_t slot =
      NewBrokerJob(service, ReplyMode::kEnqueue, static_cast<std::uint64_t>(lifetime.count()), PeerKind::kMdp, now);
  Job& job = jobs_[slot];
  job.client = std::string(client);
  if (frames.size() > 5) job.payload = zmq::message_t(frames[5].data(), frames[5].size());
  for (std::size_t i = 6; i < frames.size(); ++i) job.extra_body.emplace_back(frames[i].data(), frames[i].size());
  job.owns_frames = true;
  if (Enqueue(service, slot, now) == kNone) {
    ++counters_.busy_rejections;
    ++services_[service].busy_rejections;
    const std::string why = BusyReason(service);
    jobs_.Release(slot);
    refuse(why);
    return;
  }
  if (Stores(ReplyMode::kEnqueue, service)) {
    StoreJob(slot, StoredOrigin::kTitanic, true, now);
  } else {
    jobs_[slot].seq = next_seq_++;
    jobs_[slot].accepted_ms = now.unix_ms;
    SendAccepted(jobs_[slot]);
  }
  Dispatch(service, now);
}

}  // namespace courier::broker
