#include "client/client_core.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <utility>

#include "envelope_codec.hpp"
#include "frames.hpp"
#include "protocol.hpp"

namespace courier::detail {
namespace {

constexpr auto kCommandFrame = 2;  // [empty][header][command]...

std::string EncodeCorrelation(std::uint64_t id) {
  std::string out(8, '\0');
  for (int i = 7; i >= 0; --i) {
    out[static_cast<std::size_t>(i)] = static_cast<char>(id & 0xff);
    id >>= 8;
  }
  return out;
}

std::optional<std::uint64_t> DecodeCorrelation(std::string_view bytes) {
  if (bytes.size() != 8) return std::nullopt;
  std::uint64_t id = 0;
  for (const char c : bytes) id = (id << 8) | static_cast<std::uint8_t>(c);
  return id;
}

std::string_view CommandByte(ClientCommand command, std::array<char, 1>& storage) {
  storage[0] = static_cast<char>(command);
  return {storage.data(), 1};
}

}  // namespace

std::chrono::milliseconds Backoff(const RetryPolicy& policy, std::uint32_t retry, double unit) {
  const double initial = static_cast<double>(std::max<std::int64_t>(0, policy.initial_backoff.count()));
  const double cap = static_cast<double>(std::max<std::int64_t>(0, policy.max_backoff.count()));
  const double multiplier = std::max(1.0, policy.multiplier);
  // Exponent capped so the power cannot overflow to infinity before the min() below.
  const double grown = initial * std::pow(multiplier, std::min<std::uint32_t>(retry, 64));
  const double base = std::min(cap, grown);
  const double jitter = std::clamp(policy.jitter, 0.0, 1.0);
  const double factor = 1.0 + jitter * (2.0 * std::clamp(unit, 0.0, 1.0) - 1.0);
  return std::chrono::milliseconds(static_cast<std::int64_t>(std::llround(std::max(0.0, base * factor))));
}

ClientCore::ClientCore(std::vector<std::string> endpoints, CoreOptions options, Transport& transport,
                       SteadyTime now)
    : options_(options), transport_(transport), random_(options.seed) {
  brokers_.reserve(endpoints.size());
  for (auto& endpoint : endpoints) {
    Broker broker;
    broker.endpoint = std::move(endpoint);
    broker.last_heard = now;
    broker.last_redial = now;
    broker.next_ping = now;  // the first tick pings every broker
    brokers_.push_back(std::move(broker));
  }
}

// ---- jobs ----------------------------------------------------------------------------------

void ClientCore::Submit(JobRequest request, SteadyTime now) {
  ++counters_.submitted;
  const JobId id = request.id;
  if (jobs_.count(id) != 0) {
    ++counters_.failed;
    JobOutcome outcome;
    outcome.error = Error(ErrorCode::kBadRequest,
                          "job " + id.Hex() + " is already in flight from this client "
                          "(an idempotency key may be used by one pending job at a time)");
    outcome.answered = now;
    if (request.done) request.done(std::move(outcome));
    return;
  }
  if (now >= request.deadline) {
    ++counters_.failed;
    ++counters_.deadline_expired;
    JobOutcome outcome;
    outcome.error = Error(ErrorCode::kDeadlineExceeded,
                          "job " + id.Hex() + " for '" + request.service + "' was past its deadline before it was sent");
    outcome.answered = now;
    if (request.done) request.done(std::move(outcome));
    return;
  }
  Job job;
  const SteadyTime deadline = request.deadline;
  job.request = std::move(request);
  const auto [it, inserted] = jobs_.emplace(id, std::move(job));
  deadlines_.emplace(deadline, id);
  Dispatch(it, now);
}

std::size_t ClientCore::PickBroker(std::size_t avoid, const std::vector<bool>* excluded) {
  const std::size_t count = brokers_.size();
  std::size_t best = kNoBroker;
  int best_score = 1 << 20;
  for (std::size_t step = 0; step < count; ++step) {
    const std::size_t index = (cursor_ + step) % count;
    const Broker& broker = brokers_[index];
    if (broker.health == BrokerHealth::kDown) continue;
    if (excluded != nullptr && (*excluded)[index]) continue;
    const int score = (broker.health == BrokerHealth::kUp ? 0 : 2) + (index == avoid ? 1 : 0);
    if (score < best_score) {
      best_score = score;
      best = index;
    }
  }
  if (best != kNoBroker) cursor_ = (best + 1) % count;
  return best;
}

bool ClientCore::SendJob(Job& job, std::size_t broker, SteadyTime now) {
  std::array<char, 1> command;
  const std::array<std::string_view, 5> frames{
      std::string_view(), kCourierClient, CommandByte(ClientCommand::kSubmit, command),
      job.request.envelope, job.request.payload};
  if (!transport_.Send(broker, frames)) return false;
  job.state = JobState::kSent;
  job.broker = broker;
  ++brokers_[broker].assigned;
  if (job.sends == 0) job.first_sent = now;
  ++job.sends;
  return true;
}

void ClientCore::Dispatch(JobMap::iterator it, SteadyTime now) {
  Job& job = it->second;
  Unassign(job);
  std::vector<bool>& refused = refused_;  // reused: no allocation per job
  refused.assign(brokers_.size(), false);
  for (std::size_t tries = 0; tries < brokers_.size(); ++tries) {
    const std::size_t broker = PickBroker(job.avoid, &refused);
    if (broker == kNoBroker) break;
    if (SendJob(job, broker, now)) {
      job.avoid = kNoBroker;
      return;
    }
    refused[broker] = true;  // its pipe is full: try another
  }
  std::string message = "no broker is reachable (";
  for (std::size_t i = 0; i < brokers_.size(); ++i) {
    if (i != 0) message += ", ";
    message += brokers_[i].endpoint + " " + std::string(ToString(brokers_[i].health));
  }
  message += ")";
  RetryOrFail(it, Error(ErrorCode::kUnavailable, message), now);
}

void ClientCore::Unassign(Job& job) {
  if (job.state == JobState::kSent && job.broker != kNoBroker) {
    --brokers_[job.broker].assigned;
    job.broker = kNoBroker;
  }
}

void ClientCore::RetryOrFail(JobMap::iterator it, Error error, SteadyTime now) {
  Job& job = it->second;
  if (job.retries < job.request.max_retries) {
    std::uniform_real_distribution<double> unit(0.0, 1.0);
    const auto wait = Backoff(options_.retry, job.retries, unit(random_));
    if (now + wait < job.request.deadline) {
      job.avoid = job.broker;
      Unassign(job);
      job.state = JobState::kBackoff;
      job.resend_at = now + wait;
      ++job.retries;
      ++counters_.retries;
      job.last_error = std::move(error);
      backoffs_.emplace(job.resend_at, it->first);
      return;
    }
  }
  JobOutcome outcome;
  outcome.error = std::move(error);
  Complete(it, std::move(outcome), now);
}

void ClientCore::Complete(JobMap::iterator it, JobOutcome outcome, SteadyTime now) {
  Job& job = it->second;
  Unassign(job);
  deadlines_.erase({job.request.deadline, it->first});
  if (job.state == JobState::kBackoff) backoffs_.erase({job.resend_at, it->first});
  outcome.sends = job.sends;
  outcome.retries = job.retries;
  outcome.first_sent = job.first_sent;
  outcome.answered = now;
  JobCompletion done = std::move(job.request.done);
  jobs_.erase(it);
  if (outcome.error) {
    ++counters_.failed;
  } else {
    ++counters_.succeeded;
  }
  if (done) {
    try {
      done(std::move(outcome));
    } catch (...) {
      // Completions are the client's own and do not throw; never let one unwind the core.
    }
  }
}

// ---- inbound -------------------------------------------------------------------------------

void ClientCore::OnMessage(std::size_t broker, std::span<const std::string_view> frames, SteadyTime now) {
  if (broker >= brokers_.size() || frames.size() < 3 || !frames[0].empty() ||
      frames[1] != kCourierClient || frames[kCommandFrame].size() != 1) {
    ++counters_.malformed;
    return;
  }
  const auto command = static_cast<ClientCommand>(static_cast<std::uint8_t>(frames[kCommandFrame][0]));
  try {
    switch (command) {
      case ClientCommand::kReply:
        if (frames.size() < 5) break;
        Heard(broker, now);
        OnReply(broker, frames[3], frames[4], now);
        return;
      case ClientCommand::kAccept:
        if (frames.size() < 4) break;
        Heard(broker, now);
        OnAccept(broker, frames[3], now);
        return;
      case ClientCommand::kError:
        if (frames.size() < 4) break;
        Heard(broker, now);
        OnError(broker, frames[3], now);
        return;
      case ClientCommand::kQueryReply:
        if (frames.size() < 5) break;
        Heard(broker, now);
        OnQueryAnswer(broker, frames[3], std::string(frames[4]), false, now);
        return;
      case ClientCommand::kPong:
        if (frames.size() < 4) break;
        Heard(broker, now);
        // Older brokers send no incarnation; then only timeouts reveal a restart.
        if (frames.size() >= 5 && !frames[4].empty()) OnIncarnation(broker, frames[4], now);
        OnQueryAnswer(broker, frames[3], std::string(), true, now);
        return;
      default:
        // A newer broker's command: the broker is alive, the message is not for us.
        Heard(broker, now);
        ++counters_.malformed;
        return;
    }
  } catch (const Error&) {
    // A body that does not decode (the frame count was right).
  }
  ++counters_.malformed;
}

void ClientCore::Heard(std::size_t broker, SteadyTime now) {
  Broker& b = brokers_[broker];
  b.last_heard = now;
  b.ever_heard = true;
  b.health = BrokerHealth::kUp;
  // Ping a broker once it has been quiet for an interval (PROTOCOL.md §6.4); one that holds
  // jobs of ours is pinged every interval even while it talks: the incarnation in its PONG
  // is the only sign that it restarted and forgot them while the transport reconnected by
  // itself, and the new process keeps answering the jobs sent since.
  if (b.assigned == 0) b.next_ping = std::max(b.next_ping, now + options_.heartbeat_interval);
}

void ClientCore::OnReply(std::size_t broker, std::string_view envelope, std::string_view payload,
                         SteadyTime now) {
  const EnvelopeView view = DecodeEnvelope(envelope);  // throws Error(kBadRequest): malformed
  const auto it = jobs_.find(view.job_id);
  if (it == jobs_.end() || it->second.request.mode != ReplyMode::kCall) {
    ++counters_.duplicates_dropped;
    return;
  }
  JobOutcome outcome;
  outcome.reply_envelope = std::string(envelope);
  outcome.reply_payload = std::string(payload);
  outcome.broker = broker;
  Complete(it, std::move(outcome), now);
}

void ClientCore::OnAccept(std::size_t broker, std::string_view raw_id, SteadyTime now) {
  const auto id = JobId::FromBytes(raw_id);
  if (!id) throw Error(ErrorCode::kBadRequest, "ACCEPT: job id must be 16 bytes");
  const auto it = jobs_.find(*id);
  // Send and enqueue jobs are answered by ACCEPT once stored (PROTOCOL.md §6.3); a call
  // never is.
  if (it == jobs_.end() || it->second.request.mode == ReplyMode::kCall) {
    ++counters_.duplicates_dropped;
    return;
  }
  JobOutcome outcome;
  outcome.broker = broker;
  Complete(it, std::move(outcome), now);
}

void ClientCore::OnError(std::size_t broker, std::string_view raw, SteadyTime now) {
  ErrorBody body = DecodeErrorBody(raw);
  const auto it = jobs_.find(body.job_id);
  if (it == jobs_.end()) {
    ++counters_.duplicates_dropped;
    return;
  }
  Job& job = it->second;
  std::string message = body.message.empty() ? std::string(ToString(body.code)) : std::move(body.message);
  Error error(body.code, message);
  if (IsRetryable(body.code)) {
    // Only the broker holding the current try may fail it; a stale broker's transient
    // error (from before a failover, say) must not start a second retry chain.
    if (job.state != JobState::kSent || job.broker != broker) {
      ++counters_.duplicates_dropped;
      return;
    }
    RetryOrFail(it, std::move(error), now);
    return;
  }
  JobOutcome outcome;
  outcome.error = std::move(error);
  outcome.broker = broker;
  Complete(it, std::move(outcome), now);
}

// ---- brokers -------------------------------------------------------------------------------

void ClientCore::Ping(std::size_t broker, SteadyTime now) {
  std::array<char, 1> command;
  const std::string correlation = EncodeCorrelation(next_correlation_++);
  const std::array<std::string_view, 4> frames{std::string_view(), kCourierClient,
                                               CommandByte(ClientCommand::kPing, command), correlation};
  transport_.Send(broker, frames);  // a full pipe is itself a sign of trouble; silence decides
  brokers_[broker].next_ping = now + options_.heartbeat_interval;
}

void ClientCore::OnDisconnected(std::size_t broker, SteadyTime now) {
  // Only an up broker: a connection that never got as far as an answer (refused, or a
  // failed CURVE handshake) closes again on every retry and must not redial in a loop.
  if (brokers_[broker].health != BrokerHealth::kUp) return;
  // Only with another broker up to take its jobs. Alone, a broker that closed its
  // connection is most often restarting: the socket reconnects by itself, the new
  // incarnation's PONG resends what it forgot (OnIncarnation), and silence still marks it
  // down if it stays away; failing over to nowhere would only spend the jobs' retries.
  bool another_up = false;
  for (std::size_t i = 0; i < brokers_.size(); ++i) {
    another_up = another_up || (i != broker && brokers_[i].health == BrokerHealth::kUp);
  }
  if (!another_up) return;
  ++counters_.disconnects;
  MarkDown(broker, now);
}

void ClientCore::MarkDown(std::size_t broker, SteadyTime now) {
  Broker& b = brokers_[broker];
  b.health = BrokerHealth::kDown;
  ++counters_.broker_downs;
  // A fresh socket drops the jobs still queued for it, which go elsewhere now.
  transport_.Redial(broker);
  b.last_redial = now;
  Ping(broker, now);
  Strand(broker, now, true);
}

void ClientCore::OnIncarnation(std::size_t broker, std::string_view incarnation, SteadyTime now) {
  Broker& b = brokers_[broker];
  if (b.incarnation == incarnation) return;
  const bool restarted = !b.incarnation.empty();
  b.incarnation = std::string(incarnation);
  if (!restarted) return;
  ++counters_.broker_restarts;
  Strand(broker, now, false);
}

void ClientCore::Strand(std::size_t broker, SteadyTime now, bool broker_is_down) {
  std::vector<JobId> stranded;
  for (const auto& [id, job] : jobs_) {
    if (job.state == JobState::kSent && job.broker == broker) stranded.push_back(id);
  }
  for (const JobId& id : stranded) {
    const auto it = jobs_.find(id);
    if (it == jobs_.end()) continue;
    ++counters_.failovers;
    Dispatch(it, now);
  }

  std::vector<std::uint64_t> queries;
  for (const auto& [id, query] : queries_) {
    if (query.broker == broker && query.request.kind == QueryKind::kQuery) queries.push_back(id);
  }
  for (const std::uint64_t id : queries) {
    const auto it = queries_.find(id);
    if (it == queries_.end()) continue;
    if (!broker_is_down || it->second.any_broker) {
      const std::size_t other = broker_is_down ? PickBroker(kNoBroker, nullptr) : broker;
      if (other != kNoBroker) {
        it->second.broker = other;
        it->second.sent = now;
        if (SendQuery(id, it->second)) continue;
      }
    }
    QueryOutcome outcome;
    outcome.error = Error(ErrorCode::kUnavailable,
                          "broker " + brokers_[broker].endpoint + " stopped answering (no traffic for " +
                              std::to_string(options_.failover_timeout.count()) + " ms)");
    outcome.broker = broker;
    outcome.answered = now;
    CompleteQuery(it, std::move(outcome));
  }
}

void ClientCore::OnTick(SteadyTime now) {
  for (std::size_t i = 0; i < brokers_.size(); ++i) {
    Broker& broker = brokers_[i];
    if (broker.health != BrokerHealth::kDown && now - broker.last_heard >= options_.failover_timeout) {
      MarkDown(i, now);
    } else if (broker.health == BrokerHealth::kDown && now - broker.last_redial >= options_.failover_timeout) {
      // Bound what queues up for a broker that is away: start from a clean socket.
      transport_.Redial(i);
      broker.last_redial = now;
      Ping(i, now);
    }
    if (now >= broker.next_ping) Ping(i, now);
  }

  while (!deadlines_.empty() && deadlines_.begin()->first <= now) {
    const JobId id = deadlines_.begin()->second;
    const auto it = jobs_.find(id);
    if (it == jobs_.end()) {
      deadlines_.erase(deadlines_.begin());
      continue;
    }
    const Job& job = it->second;
    const bool never_reached =
        (job.state == JobState::kSent && job.broker != kNoBroker && !brokers_[job.broker].ever_heard) ||
        (job.state == JobState::kBackoff && job.last_error && job.last_error->code() == ErrorCode::kUnavailable);
    ++counters_.deadline_expired;
    JobOutcome outcome;
    if (never_reached) {
      std::string message = "no broker answered before the job's deadline (";
      for (std::size_t i = 0; i < brokers_.size(); ++i) {
        if (i != 0) message += ", ";
        message += brokers_[i].endpoint;
      }
      outcome.error = Error(ErrorCode::kUnavailable, message + ")");
    } else {
      std::string message = "job " + id.Hex() + " for '" + job.request.service + "' passed its deadline";
      if (job.last_error) message += std::string(" (last error: ") + job.last_error->what() + ")";
      outcome.error = Error(ErrorCode::kDeadlineExceeded, message);
    }
    Complete(it, std::move(outcome), now);
  }

  while (!backoffs_.empty() && backoffs_.begin()->first <= now) {
    const JobId id = backoffs_.begin()->second;
    backoffs_.erase(backoffs_.begin());
    const auto it = jobs_.find(id);
    if (it == jobs_.end() || it->second.state != JobState::kBackoff) continue;
    it->second.state = JobState::kSent;
    it->second.broker = kNoBroker;
    Dispatch(it, now);
  }

  for (auto it = queries_.begin(); it != queries_.end();) {
    if (it->second.request.deadline > now) {
      ++it;
      continue;
    }
    const auto next = std::next(it);
    QueryOutcome outcome;
    const std::string endpoint =
        it->second.broker == kNoBroker ? std::string("any broker") : brokers_[it->second.broker].endpoint;
    outcome.error = Error(ErrorCode::kUnavailable, "no answer from " + endpoint + " in time");
    outcome.broker = it->second.broker;
    outcome.answered = now;
    CompleteQuery(it, std::move(outcome));
    it = next;
  }
}

SteadyTime ClientCore::NextWakeup() const {
  SteadyTime next = SteadyTime::max();
  for (const Broker& broker : brokers_) {
    next = std::min(next, broker.next_ping);
    next = std::min(next, (broker.health == BrokerHealth::kDown ? broker.last_redial : broker.last_heard) +
                              options_.failover_timeout);
  }
  if (!deadlines_.empty()) next = std::min(next, deadlines_.begin()->first);
  if (!backoffs_.empty()) next = std::min(next, backoffs_.begin()->first);
  for (const auto& [id, query] : queries_) next = std::min(next, query.request.deadline);
  return next;
}

void ClientCore::FailAll(ErrorCode code, std::string_view message, SteadyTime now) {
  while (!jobs_.empty()) {
    JobOutcome outcome;
    outcome.error = Error(code, std::string(message));
    Complete(jobs_.begin(), std::move(outcome), now);
  }
  while (!queries_.empty()) {
    QueryOutcome outcome;
    outcome.error = Error(code, std::string(message));
    outcome.answered = now;
    CompleteQuery(queries_.begin(), std::move(outcome));
  }
}

// ---- queries -------------------------------------------------------------------------------

void ClientCore::Query(QueryRequest request, SteadyTime now) {
  const std::uint64_t id = next_correlation_++;
  PendingQuery query;
  query.any_broker = request.broker == kNoBroker;
  query.broker = request.broker;
  query.sent = now;
  const QueryKind kind = request.kind;
  query.request = std::move(request);
  // Not a structured binding: clang 14 (the fuzz build) cannot capture one in a lambda.
  const auto it = queries_.emplace(id, std::move(query)).first;

  auto fail = [&](std::string message) {
    QueryOutcome outcome;
    outcome.error = Error(ErrorCode::kUnavailable, std::move(message));
    outcome.broker = it->second.broker;
    outcome.answered = now;
    CompleteQuery(it, std::move(outcome));
  };
  if (it->second.any_broker) {
    it->second.broker = PickBroker(kNoBroker, nullptr);
    if (it->second.broker == kNoBroker) return fail("no broker is reachable");
  } else if (it->second.broker >= brokers_.size()) {
    return fail("no such broker");
  } else if (kind == QueryKind::kQuery && brokers_[it->second.broker].health == BrokerHealth::kDown) {
    // A down broker is still pinged (Ping asks every broker); queries skip it.
    return fail("broker " + brokers_[it->second.broker].endpoint + " is down");
  }
  if (!SendQuery(id, it->second)) {
    fail("cannot queue a message for " + brokers_[it->second.broker].endpoint);
  }
}

bool ClientCore::SendQuery(std::uint64_t id, PendingQuery& query) {
  std::array<char, 1> command;
  const std::string correlation = EncodeCorrelation(id);
  if (query.request.kind == QueryKind::kPing) {
    const std::array<std::string_view, 4> frames{std::string_view(), kCourierClient,
                                                 CommandByte(ClientCommand::kPing, command), correlation};
    return transport_.Send(query.broker, frames);
  }
  const std::string named = query.request.body.empty() ? EncodeQuery(query.request.name) : std::string();
  const std::string_view body = query.request.body.empty() ? std::string_view(named) : query.request.body;
  const std::array<std::string_view, 5> frames{std::string_view(), kCourierClient,
                                               CommandByte(ClientCommand::kQuery, command), correlation, body};
  return transport_.Send(query.broker, frames);
}

void ClientCore::OnQueryAnswer(std::size_t broker, std::string_view correlation, std::string body,
                               bool pong, SteadyTime now) {
  const auto id = DecodeCorrelation(correlation);
  if (!id) {
    if (!pong) ++counters_.malformed;
    return;  // a PONG to someone else's ping format: still proof of life
  }
  const auto it = queries_.find(*id);
  if (it == queries_.end()) return;  // our own heartbeat pings, or a late answer
  if (it->second.broker != broker) return;
  if (pong != (it->second.request.kind == QueryKind::kPing)) {
    ++counters_.malformed;
    return;
  }
  QueryOutcome outcome;
  outcome.body = std::move(body);
  outcome.broker = broker;
  outcome.sent = it->second.sent;
  outcome.answered = now;
  CompleteQuery(it, std::move(outcome));
}

void ClientCore::CompleteQuery(std::map<std::uint64_t, PendingQuery>::iterator it, QueryOutcome outcome) {
  QueryCompletion done = std::move(it->second.request.done);
  if (outcome.sent == SteadyTime{}) outcome.sent = it->second.sent;
  queries_.erase(it);
  if (done) {
    try {
      done(std::move(outcome));
    } catch (...) {
    }
  }
}

}  // namespace courier::detail
