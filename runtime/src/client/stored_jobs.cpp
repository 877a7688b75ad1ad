#include "client/stored_jobs.hpp"

#include <algorithm>
#include <utility>

#include "envelope_codec.hpp"

namespace courier {

std::string_view ToString(JobState state) noexcept { return wire::ToString(static_cast<wire::JobState>(state)); }

std::optional<JobState> ParseJobState(std::string_view name) noexcept {
  const auto state = wire::ParseJobState(name);
  if (!state) return std::nullopt;
  return static_cast<JobState>(*state);
}

bool IsFinished(JobState state) noexcept {
  return state == JobState::kDone || state == JobState::kFailed || state == JobState::kDead;
}

}  // namespace courier

namespace courier::detail {
namespace {

using std::chrono::milliseconds;

// Public and wire states are the same list in the same order (PROTOCOL.md §6.5).
static_assert(static_cast<int>(JobState::kQueued) == static_cast<int>(wire::JobState::kQueued));
static_assert(static_cast<int>(JobState::kRunning) == static_cast<int>(wire::JobState::kRunning));
static_assert(static_cast<int>(JobState::kDone) == static_cast<int>(wire::JobState::kDone));
static_assert(static_cast<int>(JobState::kFailed) == static_cast<int>(wire::JobState::kFailed));
static_assert(static_cast<int>(JobState::kDead) == static_cast<int>(wire::JobState::kDead));

JobState FromWire(wire::JobState state) { return static_cast<JobState>(state); }
wire::JobState ToWire(JobState state) { return static_cast<wire::JobState>(state); }

milliseconds CapWait(milliseconds wait) {
  return std::clamp(wait, milliseconds(0), milliseconds(static_cast<std::int64_t>(wire::kMaxJobWaitMs)));
}

std::string FormatWait(milliseconds wait) {
  if (wait.count() % 1000 == 0) return std::to_string(wait.count() / 1000) + " s";
  return std::to_string(wait.count()) + " ms";
}

}  // namespace

std::string OpenReply(const Keyring& keyring, const JobId& id, std::string_view service,
                      std::string_view envelope, std::string_view payload) {
  const EnvelopeView reply = DecodeEnvelope(envelope);  // Error(kBadRequest) if malformed
  if (reply.mode != ReplyMode::kReply) {
    throw Error(ErrorCode::kUnauthenticated,
                "the reply envelope is not a reply (mode " + std::to_string(static_cast<int>(reply.mode)) + ")");
  }
  if (reply.job_id != id || reply.service != service) {
    throw Error(ErrorCode::kUnauthenticated, "the reply envelope names another job or service");
  }
  if (reply.key_id == kUnsealedKeyId) {
    throw Error(ErrorCode::kUnauthenticated, "the reply to a sealed request is unsealed");
  }
  return keyring.Open(envelope, payload);
}

QueryRequest JobQueryRequest(const JobId& id, milliseconds wait, std::size_t broker, milliseconds failover_timeout,
                             SteadyTime now) {
  const milliseconds asked = CapWait(wait);
  QueryRequest query;
  query.kind = QueryKind::kQuery;
  query.name = std::string(wire::kJobQueryName);
  query.body = wire::EncodeQuery(wire::JobQuery{.id = id, .wait_ms = static_cast<std::uint64_t>(asked.count())});
  query.broker = broker;
  query.deadline = now + asked + failover_timeout;
  return query;
}

// ---- JobLookup -----------------------------------------------------------------------------

JobLookup::JobLookup(const JobId& id, std::vector<std::string> endpoints, milliseconds wait, SteadyTime started)
    : id_(id),
      endpoints_(std::move(endpoints)),
      wait_until_(started + std::max(wait, milliseconds(0))),
      answers_(endpoints_.size()),
      answered_(endpoints_.size(), false),
      outstanding_(endpoints_.size()) {
  if (endpoints_.empty()) {
    done_ = true;
    error_ = Error(ErrorCode::kUnavailable, "job " + id_.Hex() + ": no broker is configured");
  }
}

JobLookup::Step JobLookup::OnAnswer(std::size_t broker, const QueryOutcome& outcome, milliseconds asked,
                                    SteadyTime now) {
  Step step;
  if (done_ || broker >= endpoints_.size()) {
    step.kind = done_ ? Step::Kind::kDone : Step::Kind::kPending;
    return step;
  }
  std::optional<wire::JobRecord> record;
  std::optional<Error> error = outcome.error;
  if (!error) {
    try {
      record = wire::DecodeJobRecord(wire::QueryResult(outcome.body));
      if (record->id != id_) throw Error(ErrorCode::kBadRequest, "the broker answered about another job");
    } catch (const Error& refused) {
      record.reset();
      error = refused;
    }
  }
  if (record) {
    const bool final_state = IsFinished(FromWire(record->state));
    // The broker holds a question for at most wire::kMaxJobWaitMs; a longer wait is made of
    // several. Asked again only if this one was held (a broker that answers a waiting
    // question at once would otherwise be asked in a tight loop).
    const bool held = outcome.answered - outcome.sent >= asked / 2;
    if (!final_state && now < wait_until_ && asked > milliseconds(0) && held) {
      step.kind = Step::Kind::kAskAgain;
      step.broker = broker;
      step.wait = std::chrono::ceil<milliseconds>(wait_until_ - now);
      return step;
    }
    done_ = true;
    record_ = std::move(record);
    record_broker_ = broker;
    step.kind = Step::Kind::kDone;
    return step;
  }
  if (!answered_[broker]) {
    answered_[broker] = true;
    --outstanding_;
  }
  answers_[broker] = std::move(error);
  if (outstanding_ == 0) {
    Decide();
    step.kind = Step::Kind::kDone;
  }
  return step;
}

void JobLookup::Decide() {
  done_ = true;
  std::string not_found;
  for (std::size_t i = 0; i < endpoints_.size(); ++i) {
    if (answers_[i] && answers_[i]->code() == ErrorCode::kNotFound) {
      not_found += (not_found.empty() ? "" : ", ") + endpoints_[i];
    }
  }
  for (std::size_t i = 0; i < endpoints_.size(); ++i) {
    if (!answers_[i] || answers_[i]->code() == ErrorCode::kNotFound) continue;
    // A broker that could not say (down, silent, refusing) may be the one holding the job.
    std::string message = "job " + id_.Hex() + ": ";
    if (!not_found.empty()) message += "not on " + not_found + "; ";
    message += endpoints_[i] + ": " + answers_[i]->what();
    error_ = Error(answers_[i]->code(), message);
    return;
  }
  error_ = Error(ErrorCode::kNotFound, "no broker holds job " + id_.Hex() + " (asked " + not_found +
                                           "): never stored, or its result expired");
}

// ---- records -------------------------------------------------------------------------------

JobStatus ToJobStatus(wire::JobRecord record, std::string broker, const Keyring* keyring) {
  JobStatus status;
  status.id = record.id;
  status.service = std::move(record.service);
  status.state = FromWire(record.state);
  status.attempt = record.attempt;
  status.max_attempts = record.max_attempts;
  status.worker = std::move(record.worker);
  status.since_ms = record.since_ms;
  status.expires_ms = record.expires_ms;
  status.durable = record.durable;
  status.broker = std::move(broker);
  if (status.state == JobState::kFailed || status.state == JobState::kDead) {
    status.error = Error(record.code, record.message.empty() ? std::string(ToString(record.code)) : record.message);
  }
  if (status.state == JobState::kDone && keyring != nullptr) {
    if (record.reply.size() != 2) {
      throw Error(ErrorCode::kBadRequest, "job " + status.id.Hex() + ": the kept reply has " +
                                              std::to_string(record.reply.size()) +
                                              " frames, not a Courier reply's two (envelope, payload)");
    }
    status.result = DecodeValue(OpenReply(*keyring, status.id, status.service, record.reply[0], record.reply[1]));
  }
  return status;
}

Value ResultOf(JobStatus status, milliseconds wait) {
  switch (status.state) {
    case JobState::kDone:
      if (!status.result) throw Error(ErrorCode::kBadRequest, "job " + status.id.Hex() + " is done but has no reply");
      return std::move(*status.result);
    case JobState::kFailed:
    case JobState::kDead:
      if (status.error) throw *status.error;
      throw Error(ErrorCode::kInternal, "job " + status.id.Hex() + " is " + std::string(ToString(status.state)));
    case JobState::kQueued:
    case JobState::kRunning:
      break;
  }
  throw Error(ErrorCode::kDeadlineExceeded, "job " + status.id.Hex() + " still " + std::string(ToString(status.state)) +
                                                " after " + FormatWait(wait));
}

// ---- jobs listing --------------------------------------------------------------------------

namespace {

bool Matches(const JobStatus& row, const JobsFilter& filter) {
  return (filter.service.empty() || row.service == filter.service) && (!filter.state || row.state == *filter.state);
}

}  // namespace

std::optional<std::string> NextJobsQuery(const JobsCursor& cursor, const JobsFilter& filter) {
  if (cursor.finished || cursor.rows.size() >= filter.limit) return std::nullopt;
  wire::JobsQuery query;
  query.service = filter.service;
  if (filter.state) query.state = ToWire(*filter.state);
  query.limit = static_cast<std::uint32_t>(
      std::min<std::size_t>(filter.limit - cursor.rows.size(), wire::kMaxJobsPage));
  query.after = cursor.after;
  return wire::EncodeQuery(query);
}

void AddJobsAnswer(JobsCursor& cursor, const QueryOutcome& outcome, const JobsFilter& filter) {
  if (cursor.finished) return;
  if (outcome.error) {
    cursor.error = outcome.error;
    cursor.finished = true;
    return;
  }
  wire::JobsPage page;
  try {
    page = wire::DecodeJobsPage(wire::QueryResult(outcome.body));
  } catch (const Error& error) {
    cursor.error = error;
    cursor.finished = true;
    return;
  }
  for (wire::JobRecord& record : page.rows) {
    if (cursor.rows.size() >= filter.limit) break;
    JobStatus row = ToJobStatus(std::move(record), cursor.broker, nullptr);
    if (Matches(row, filter)) cursor.rows.push_back(std::move(row));
  }
  // A cursor that does not move forward would page forever.
  if (page.rows.empty() || page.next == 0 || page.next <= cursor.after || cursor.rows.size() >= filter.limit) {
    cursor.finished = true;
  }
  cursor.after = page.next;
}

std::vector<JobStatus> MergeJobs(const std::vector<JobsCursor>& cursors, std::size_t limit) {
  bool any_answered = false;
  for (const JobsCursor& cursor : cursors) any_answered = any_answered || !cursor.error || !cursor.rows.empty();
  if (!any_answered) {
    for (const JobsCursor& cursor : cursors) {
      if (cursor.error) throw Error(cursor.error->code(), cursor.broker + ": " + cursor.error->what());
    }
    throw Error(ErrorCode::kUnavailable, "no broker is configured");
  }
  std::vector<JobStatus> merged;
  std::vector<std::size_t> next(cursors.size(), 0);
  while (merged.size() < limit) {
    std::size_t best = kNoBroker;
    for (std::size_t i = 0; i < cursors.size(); ++i) {
      if (next[i] >= cursors[i].rows.size()) continue;
      if (best == kNoBroker || cursors[i].rows[next[i]].since_ms < cursors[best].rows[next[best]].since_ms) best = i;
    }
    if (best == kNoBroker) break;
    merged.push_back(cursors[best].rows[next[best]++]);
  }
  return merged;
}

}  // namespace courier::detail
