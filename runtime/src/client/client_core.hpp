// client_core.hpp — the client's routing state machine: pending jobs, brokers and their
// health, retries, failover, deadlines and management queries. Its events are broker
// messages, submissions and clock ticks; its outputs go through a Transport and the jobs'
// completions. It owns no socket and reads no clock, so it is tested frame-in/frame-out on
// a fake clock (client_core_test.cpp). The client's I/O thread drives it.
//
// Guarantees: every submitted job's completion runs exactly once (a reply, an acceptance or
// an error), from inside Submit, OnMessage, OnTick or FailAll; a job keeps its id and its
// sealed bytes across retries and failovers; answers for jobs no longer pending are dropped
// and counted. Completions must not call back into the core.
// Thread-safety: none; one thread owns it.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "courier/client.hpp"
#include "courier/error.hpp"
#include "courier/job.hpp"

namespace courier::detail {

using SteadyClock = std::chrono::steady_clock;
using SteadyTime = SteadyClock::time_point;

inline constexpr std::size_t kNoBroker = static_cast<std::size_t>(-1);

// How a job ended.
struct JobOutcome {
  std::optional<Error> error;   // set on failure
  std::string reply_envelope;   // a call's reply: envelope bytes...
  std::string reply_payload;    // ...and sealed payload; both empty for an accepted send
  std::size_t broker = kNoBroker;  // the broker that answered
  std::uint32_t sends = 0;      // times the job went out (first try, failovers, retries)
  std::uint32_t retries = 0;
  SteadyTime first_sent{};      // zero if it never went out
  SteadyTime answered{};
};
using JobCompletion = std::function<void(JobOutcome&&)>;

struct JobRequest {
  JobId id;
  std::string service;
  // kCall: completes on REPLY (or ERROR). kSend, kEnqueue: completes on ACCEPT (stored) or
  // ERROR; until then resent like a call on failover, never after.
  ReplyMode mode = ReplyMode::kCall;
  std::string envelope;               // sealed envelope wire bytes
  std::string payload;                // sealed payload
  SteadyTime deadline{};
  std::uint32_t max_retries = 0;
  JobCompletion done;
};

enum class QueryKind : std::uint8_t { kQuery, kPing };

struct QueryOutcome {
  std::optional<Error> error;
  std::string body;               // QUERY_REPLY body (empty for a PONG)
  std::size_t broker = kNoBroker;
  SteadyTime sent{};
  SteadyTime answered{};
};
using QueryCompletion = std::function<void(QueryOutcome&&)>;

struct QueryRequest {
  QueryKind kind = QueryKind::kQuery;
  std::string name;                 // query name ("services"...); unused for a ping
  // The whole QUERY body (PROTOCOL.md §9: [name, args]) for a query with arguments, e.g.
  // wire::EncodeQuery(JobQuery); empty: [name, {}].
  std::string body;
  std::size_t broker = kNoBroker;   // a given broker, or kNoBroker for any healthy one
  // When it fails kUnavailable without an answer. A query the broker may hold (a `job`
  // query with wait_ms) needs that wait on top of the usual failover_timeout.
  SteadyTime deadline{};
  QueryCompletion done;
};

// Where the core's messages go. Frames are everything after the DEALER's own framing:
// [empty]["CRC01"][command][bodies...].
class Transport {
 public:
  virtual ~Transport() = default;
  // Returns: false if the message cannot be queued now (high-water mark); nothing was sent.
  virtual bool Send(std::size_t broker, std::span<const std::string_view> frames) = 0;
  // Drops whatever is still queued for `broker` and dials it afresh.
  virtual void Redial(std::size_t broker) = 0;
};

struct CoreOptions {
  std::chrono::milliseconds failover_timeout{3000};
  std::chrono::milliseconds heartbeat_interval{1000};
  RetryPolicy retry;
  std::uint64_t seed = 0;  // for backoff jitter
};

// Returns: the wait before retry number `retry` (0-based) under `policy`; `unit` in [0, 1)
// picks the jitter (0.5 = none).
std::chrono::milliseconds Backoff(const RetryPolicy& policy, std::uint32_t retry, double unit);

class ClientCore {
 public:
  ClientCore(std::vector<std::string> endpoints, CoreOptions options, Transport& transport,
             SteadyTime now);
  ClientCore(const ClientCore&) = delete;
  ClientCore& operator=(const ClientCore&) = delete;

  // Takes a job and sends it to a healthy broker. A job whose id is already pending fails
  // at once with kBadRequest; one already past its deadline with kDeadlineExceeded.
  void Submit(JobRequest job, SteadyTime now);
  // Sends a management query or a ping.
  void Query(QueryRequest query, SteadyTime now);
  // One message from `broker`: [empty]["CRC01"][command][bodies...]. Malformed input is
  // counted and dropped; never throws.
  void OnMessage(std::size_t broker, std::span<const std::string_view> frames, SteadyTime now);
  // The transport saw `broker`'s connection close (its process died, or its host reset the
  // connection): a broker that was up is marked down now and its jobs fail over to another
  // broker that is up, instead of after failover_timeout of silence. Ignored for a broker
  // not up, and when no other broker is up (see the definition).
  void OnDisconnected(std::size_t broker, SteadyTime now);
  // Pings, marks silent brokers down (failing their jobs over), resends due retries and
  // fails jobs and queries past their deadline.
  void OnTick(SteadyTime now);
  // Returns: when OnTick next has something to do.
  SteadyTime NextWakeup() const;
  // Fails every pending job and query with `code` (shutdown).
  void FailAll(ErrorCode code, std::string_view message, SteadyTime now);

  std::size_t pending_jobs() const { return jobs_.size(); }
  std::size_t pending_queries() const { return queries_.size(); }
  std::size_t broker_count() const { return brokers_.size(); }
  BrokerHealth health(std::size_t broker) const { return brokers_[broker].health; }
  std::size_t assigned(std::size_t broker) const { return brokers_[broker].assigned; }
  const std::string& endpoint(std::size_t broker) const { return brokers_[broker].endpoint; }
  const ClientCounters& counters() const { return counters_; }

 private:
  struct Broker {
    std::string endpoint;
    BrokerHealth health = BrokerHealth::kConnecting;
    SteadyTime last_heard{};     // or the time it was (re)dialled
    SteadyTime next_ping{};
    SteadyTime last_redial{};
    std::size_t assigned = 0;    // jobs sent to it and unanswered
    bool ever_heard = false;
    std::string incarnation;     // from its PONGs; a change means it restarted
  };
  enum class JobState : std::uint8_t { kSent, kBackoff };
  struct Job {
    JobRequest request;
    JobState state = JobState::kSent;
    std::size_t broker = kNoBroker;  // when kSent
    std::size_t avoid = kNoBroker;   // a broker to skip on the next send, if another is healthy
    SteadyTime resend_at{};          // when kBackoff
    std::uint32_t sends = 0;
    std::uint32_t retries = 0;
    SteadyTime first_sent{};
    std::optional<Error> last_error;
  };
  struct PendingQuery {
    QueryRequest request;
    std::size_t broker = kNoBroker;
    bool any_broker = false;
    SteadyTime sent{};
  };

  using JobMap = std::unordered_map<JobId, Job, JobIdHash>;

  // Returns: a broker to send to (up first, then connecting; round robin; `avoid` only if
  // nothing else is usable; never an `excluded` one), or kNoBroker.
  std::size_t PickBroker(std::size_t avoid, const std::vector<bool>* excluded);
  // Sends (or resends) a job; on no usable broker, handles it as kUnavailable.
  void Dispatch(JobMap::iterator job, SteadyTime now);
  bool SendJob(Job& job, std::size_t broker, SteadyTime now);
  // A retryable failure of the current try: schedule a retry or complete with `error`.
  void RetryOrFail(JobMap::iterator job, Error error, SteadyTime now);
  void Complete(JobMap::iterator job, JobOutcome outcome, SteadyTime now);
  void Unassign(Job& job);

  void OnReply(std::size_t broker, std::string_view envelope, std::string_view payload, SteadyTime now);
  void OnAccept(std::size_t broker, std::string_view job_id, SteadyTime now);
  void OnError(std::size_t broker, std::string_view body, SteadyTime now);
  void OnQueryAnswer(std::size_t broker, std::string_view correlation, std::string body,
                     bool pong, SteadyTime now);
  void Heard(std::size_t broker, SteadyTime now);
  void MarkDown(std::size_t broker, SteadyTime now);
  // A PONG's incarnation differs from the last one: the broker restarted and forgot every
  // job it held, so they are resent now (PROTOCOL.md §6.4).
  void OnIncarnation(std::size_t broker, std::string_view incarnation, SteadyTime now);
  // Resends the jobs and queries outstanding on `broker` (it is down, or forgot them).
  void Strand(std::size_t broker, SteadyTime now, bool broker_is_down);

  bool SendQuery(std::uint64_t id, PendingQuery& query);
  void CompleteQuery(std::map<std::uint64_t, PendingQuery>::iterator query, QueryOutcome outcome);
  void Ping(std::size_t broker, SteadyTime now);

  std::vector<Broker> brokers_;
  CoreOptions options_;
  Transport& transport_;
  std::mt19937_64 random_;
  std::size_t cursor_ = 0;
  JobMap jobs_;
  std::set<std::pair<SteadyTime, JobId>> deadlines_;
  std::set<std::pair<SteadyTime, JobId>> backoffs_;
  std::map<std::uint64_t, PendingQuery> queries_;  // by correlation id
  std::uint64_t next_correlation_ = 1;
  ClientCounters counters_;
  std::vector<bool> refused_;  // Dispatch's brokers whose pipe was full, reused
};

}  // namespace courier::detail
