// broker.hpp — the routing core of courier-broker: a state machine whose events are
// multipart messages and clock ticks, and whose outputs go through an Outbox. It owns no
// socket, so it is tested frame-in/frame-out on a fake clock (broker_test.cpp).
//
// Contract (schemas/PROTOCOL.md): Majordomo (MDP/0.1) and Courier (CRC01/CRW01) peers on
// one ROUTER; bounded per-service queues; per-worker credit; four distribution strategies;
// heartbeats and expiry; prompt loss detection (OnPeerDisconnected probes the workers that
// hold jobs); redelivery with attempt and crash counting, dead-lettering to courier.errors
// (attempts exhausted, poison jobs); in-flight deadlines; management queries. Bad input is dropped, counted and logged
// (rate-limited); it never throws out of OnMessage.
// Thread-safety: none; one broker loop thread owns it.
#pragma once

#include <cstdint>
#include <deque>
#include <random>
#include <span>
#include <string>
#include <optional>
#include <unordered_map>
#include <utility>
#include <zmq.hpp>

#include "broker_config.hpp"
#include "broker_state.hpp"
#include "courier/error.hpp"
#include "courier/log.hpp"
#include "envelope_codec.hpp"
#include "reports.hpp"
#include "store_ops.hpp"
#include "zap.hpp"

namespace courier::broker {

enum class SendResult { kSent, kUnreachable, kFull };

// Where the broker's messages go. frames[0] is the peer's routing id.
class Outbox {
 public:
  virtual ~Outbox() = default;
  virtual SendResult Send(std::span<zmq::message_t> frames) = 0;
};

struct BrokerMetrics;  // broker_metrics.hpp

struct Counters {
  std::uint64_t malformed = 0;
  std::uint64_t unknown_command = 0;
  std::uint64_t oversized = 0;
  std::uint64_t protocol_errors = 0;
  std::uint64_t expired = 0;
  std::uint64_t busy_rejections = 0;
  std::uint64_t redelivered = 0;
  std::uint64_t dead_lettered = 0;
  std::uint64_t dead_letter_dropped = 0;
  std::uint64_t late_replies = 0;
  std::uint64_t unreachable_clients = 0;
  std::uint64_t workers_expired = 0;
  std::uint64_t refused_peers = 0;
  std::uint64_t jobs_accepted = 0;
  std::uint64_t jobs_answered = 0;
  std::uint64_t crashes = 0;              // crashes charged to jobs (worker lost, ERROR worker_crashed)
  std::uint64_t poison_jobs = 0;          // jobs dead-lettered at their service's max_crashes
  std::uint64_t workers_unreachable = 0;  // workers removed because a send failed EHOSTUNREACH
  std::uint64_t key_mismatches = 0;       // READYs whose key fingerprint differs from a peer's
  std::uint64_t foreign_job_ids = 0;      // SUBMITs refused: the job id belongs to another client's job
  std::uint64_t invalid_service_names = 0;  // SUBMIT/READY/MDP requests naming an invalid service
  std::uint64_t services_pruned = 0;      // services forgotten after service_grace with no worker or job
  std::uint64_t new_service_refusals = 0; // new service names refused (per-peer quota, table full)
  std::uint64_t bytes_rejections = 0;     // SUBMITs refused busy at max_queued_bytes / max_total_queued_bytes
  std::uint64_t deadline_rejections = 0;  // SUBMITs refused: deadline further ahead than max_deadline
  std::uint64_t unknown_service = 0;      // jobs answered no_such_service (no worker ever registered it)
  std::uint64_t client_sends_full = 0;
  std::uint64_t slow_clients_dropped = 0;  // connections shut down past max_client_bytes    // answers dropped: the client's pipe was at the high-water mark
  std::uint64_t store_refusals = 0;       // jobs refused because the store could not commit them
  std::uint64_t restored_jobs = 0;        // jobs loaded from the store at start
  std::uint64_t lookups = 0;              // job and jobs queries and titanic.reply answered
};

class Broker {
 public:
  Broker(BrokerConfig config, Outbox& outbox, std::uint64_t random_seed = std::random_device{}());
  Broker(const Broker&) = delete;
  Broker& operator=(const Broker&) = delete;

  // Handles one multipart message (frames[0] = sender's routing id). Frames may be moved from.
  // `role` is what the transport authenticated (PeerRole::kAny without CURVE): a client
  // header from a worker-only key, or a worker header from a client-only key, is refused.
  // `user_id` is the ZAP User-Id ("client:NAME", ...; empty without CURVE): NAME becomes the
  // sender of the jobs this message submits (recorded in their dead letters). It is only
  // read during the call.
  void OnMessage(std::span<zmq::message_t> frames, const Now& now, PeerRole role = PeerRole::kAny,
                 std::string_view user_id = {});
  // Replaces the CURVE access policy (the constructor loads it from config().security when
  // CURVE is on): operator keys, the services each worker key may serve, capacity caps.
  void UseAccessPolicy(AccessPolicy policy) { access_ = std::move(policy); }
  // Counts and logs (rate-limited) a peer the transport refused.
  void OnRefusedPeer(std::string_view key, std::string_view address);
  // Sends due heartbeats, purges expired workers, fails queued jobs past their deadline,
  // answers in-flight jobs past their deadline, and runs due re-probes (OnPeerDisconnected).
  void OnTick(const Now& now);
  // A connection to the broker's socket closed (the loop's socket monitor saw it): sends
  // HEARTBEAT to every worker that holds jobs, removing (and requeueing the jobs of) each
  // whose send fails kUnreachable, and probes again a little later (see next_probe), since
  // the socket may learn of the closed pipe slightly after the monitor does.
  void OnPeerDisconnected(const Now& now);
  // Returns: when OnTick should next run for a pending re-probe, or SteadyTime::max().
  SteadyTime next_probe() const;
  // Starts a graceful shutdown: new jobs are refused with shutting_down (retryable, so
  // clients resend them to another broker), queued calls are answered shutting_down, and
  // jobs in flight keep flowing back until they finish.
  void BeginDrain(const Now& now);
  // Returns: whether a drain has no client job left in flight.
  bool Drained() const;
  // Answers what is still in flight shutting_down and tells every worker DISCONNECT.
  void DisconnectAll();
  // Stored jobs (PROTOCOL.md §6.5). Without UseStore every job is handled as durability
  // "memory" (the routing core alone, as in its unit tests); with it, send and enqueue jobs
  // of services whose durability is not "memory" are ACCEPTed only after OnStoreCommitted.
  void UseStore() { store_enabled_ = true; }
  // Returns: the store ops emitted since the last call (the loop commits them as one batch).
  std::vector<StoreOp> TakeStoreOps() { return std::exchange(store_ops_, {}); }
  // The batch last taken was committed (or not): ACCEPTs the jobs it stored and lets them
  // be dispatched, or refuses them busy (store full) / unavailable (store failing).
  void OnStoreCommitted(const CommitResult& result, const Now& now);
  // Feeds back one job loaded from the store at start, before any message: queued jobs keep
  // their place; a job a worker held goes back with attempt + 1 (dead-lettered past
  // max_attempts). `max_seq` (FinishRestore) keeps new jobs sorted after the restored ones.
  void Restore(StoredJob&& stored, const Now& now);
  void FinishRestore(std::uint64_t max_seq, const Now& now);
  // Returns: the lookups the store must answer (after this turn's commit).
  std::vector<StoreLookup> TakeLookups() { return std::exchange(lookups_, {}); }
  // Answers a `job` query or titanic.reply with what the store holds under its id.
  void AnswerLookup(const StoreLookup& lookup, const std::optional<wire::JobRecord>& record);
  // Answers a `jobs` query with a page read from the store.
  void AnswerLookup(const StoreLookup& lookup, const wire::JobsPage& page);
  // Retries the ACCEPTs that met a full pipe (at most kDeferredAcceptsPerTurn); the loop
  // calls it every turn.
  void FlushDeferredAccepts();

  // The 8 random bytes PONG carries: they change when a broker restarts.
  const std::string& incarnation() const { return incarnation_; }

  const Counters& counters() const { return counters_; }
  const BrokerConfig& config() const { return config_; }
  // Introspection for tests and management queries.
  std::size_t QueueDepth(std::string_view service) const;
  std::size_t WorkerCount(std::string_view service) const;
  std::size_t LiveJobs() const { return jobs_.live(); }
  std::size_t LiveWorkers() const { return workers_.live(); }
  // Returns: bytes of jobs held (queued or in flight), all services together.
  std::size_t HeldBytes() const { return held_bytes_; }
  // The loop's connection count and how many connections it closed at max_connections
  // (shown by the stats query).
  void SetConnections(std::size_t live, std::uint64_t refused) {
    connections_ = live;
    connections_refused_ = refused;
  }
  // The loop shut a client's connection down: more than max_client_bytes waited for it.
  // Its calls still queued are dropped (nobody will read their answers); sent and
  // enqueued jobs are accepted work and stay.
  void OnSlowClientDropped(std::string_view client, const Now& now);
  // Returns: a copy of the counters and a row per service, for /metrics (broker_metrics.hpp).
  BrokerMetrics MetricsSnapshot(const Now& now) const;
  // Returns: jobs in flight whose deadline has not been answered yet.
  std::size_t UnexpiredInFlight() const { return in_flight_deadlines_.size(); }

 private:
  // Inbound, by peer protocol.
  void OnMdpClient(std::span<zmq::message_t> frames, const Now& now);
  void OnCourierClient(std::span<zmq::message_t> frames, const Now& now);
  void OnWorker(std::span<zmq::message_t> frames, PeerKind kind, const Now& now);
  void OnSubmit(std::span<zmq::message_t> frames, const Now& now);
  void OnQuery(std::span<zmq::message_t> frames, const Now& now);
  void OnMmi(std::span<zmq::message_t> frames);
  // titanic.request / .reply / .close from an MDP client (PROTOCOL.md §6.6).
  void OnTitanic(std::span<zmq::message_t> frames, const Now& now);
  void OnTitanicRequest(std::span<zmq::message_t> frames, const Now& now);
  void SendMdpClient(std::string_view client, std::string_view service, std::span<const std::string_view> bodies);
  // A `job` query: answered now for a job held in memory, parked while the caller waits,
  // or passed to the store (TakeLookups).
  void OnJobQuery(std::string_view client, std::string_view correlation, std::string_view body, const Now& now);
  // Returns: the record of a job the broker holds (queued or running).
  wire::JobRecord LiveRecord(const Job& job, const Now& now) const;
  void SendQueryReply(std::string_view client, std::string_view correlation, const std::string& body);
  // Parked `job` queries whose wait ran out: answered with the job's state now.
  void ExpireWaiters(const Now& now);
  // The job under `id` finished or has a result: its parked queries go to the store.
  void NotifyWaiters(const JobId& id);

  // Store.
  // Returns: whether a job of `mode` for `service` is stored before it is ACCEPTed.
  bool Stores(ReplyMode mode, std::uint32_t service) const;
  // Makes a newly queued job a stored one (kAddJob); with `gate`, it waits for the commit.
  void StoreJob(std::uint32_t slot, StoredOrigin origin, bool gate, const Now& now);
  // Records an enqueued job's outcome (kAddResult) for lookups; no-op for other modes.
  void RecordResult(const Job& job, wire::JobState state, ErrorCode code, std::string_view message,
                    std::vector<std::string> reply, std::uint64_t now_ms);
  // Sends what a stored job's submitter gets once its commit is done (ACCEPT, or Titanic 200).
  void SendAccepted(const Job& job);
  // Sends ACCEPT; one that meets a full pipe waits in deferred_accepts_ for the next turn.
  void SendAccept(std::string_view client, const JobId& id);

  void OnReady(std::span<zmq::message_t> frames, PeerKind kind, const Now& now);
  // With CURVE: drops (counts in refused_peers) a plain MDP request to courier.errors from a
  // key that is not an operator's; SUBMITs are PermitErrorSinkCall's. Returns: whether the
  // message may go on.
  bool PermitErrorSinkUse(std::span<zmq::message_t> frames, std::string_view header);
  // With CURVE: a call or enqueue to courier.errors (a query, a replay) needs an operator
  // key; refuses it unauthorized otherwise. Returns: whether it may go on.
  bool PermitErrorSinkCall(std::string_view client, const detail::EnvelopeView& envelope);
  // Returns: `capacity`, clamped to the worker key's max_capacity (logged once per key).
  std::uint32_t CapCapacity(std::uint32_t capacity, std::string_view identity);
  void OnWorkerReply(std::uint32_t worker, std::span<zmq::message_t> frames, const Now& now);
  void OnWorkerError(std::uint32_t worker, std::span<zmq::message_t> frames, const Now& now);
  void OnReject(std::uint32_t worker, std::span<zmq::message_t> frames, const Now& now);

  // Jobs.
  // Returns: the job's slot, or kNone if a bound of the queue is hit (the caller answers busy
  // with BusyReason()).
  std::uint32_t Enqueue(std::uint32_t service, std::uint32_t job, const Now& now, bool ignore_bounds = false);
  // Returns: why the last Enqueue refused, for the client's busy message.
  std::string BusyReason(std::uint32_t service) const;
  void Dispatch(std::uint32_t service, const Now& now);
  SendResult SendRequest(std::uint32_t worker, std::uint32_t job);
  void CompleteJob(std::uint32_t job);
  // Ends a job that did not succeed: its client is told (calls), its outcome kept
  // (enqueue: `state` failed, or dead for a dead letter).
  void FailJob(std::uint32_t job, ErrorCode code, std::string_view message,
               wire::JobState state = wire::JobState::kFailed);
  // Marks the job held by `worker` (Job::worker, and the worker's list of held jobs).
  void Hold(std::uint32_t slot, std::uint32_t worker);
  // Takes the job off its worker's list; Job::worker becomes kNone.
  void Unhold(std::uint32_t slot);
  // Puts a job back at the front of its queue, freeing its worker's credit. With
  // count_attempt, attempt + 1; past max_attempts it is dead-lettered with `exhausted` and
  // a message made of `why` (what happened) and the attempt count.
  void Requeue(std::uint32_t job, bool count_attempt, const Now& now,
               ErrorCode exhausted = ErrorCode::kAttemptsExhausted, std::string_view why = "worker lost");
  // A crash is charged to a held job (its worker was lost, or it answered worker_crashed):
  // at the service's max_crashes the job is dead-lettered as a poison job, otherwise it is
  // requeued with one more attempt. A job whose client was told deadline_exceeded while in
  // flight is dropped instead.
  void ChargeCrash(std::uint32_t job, std::string_view why, const Now& now);
  // Answers, in flight, the jobs whose deadline has passed (they stay charged to the worker).
  void ExpireInFlight(const Now& now);
  // Returns: whether a job of `mode` for `service` is refused no_such_service: no worker has
  // registered it and the broker is past its start-up grace.
  bool IsUnknownService(std::uint32_t service, ReplyMode mode, const Now& now) const;
  std::string UnknownServiceMessage(std::uint32_t service) const;
  // Fails a job taken off its queue: dead-lettered when nobody waits for its answer.
  void FailUnattended(std::uint32_t slot, ErrorCode code, std::string_view message, const Now& now);
  void DeadLetter(std::uint32_t job, ErrorCode code, std::string_view message, const Now& now);
  // Queues a broker-made, unsealed, fire-and-forget job. Returns: its slot, or kNone if
  // the service's queue is full.
  std::uint32_t EnqueueInternal(std::string_view service, const std::string& payload,
                                std::uint64_t lifetime_ms, const Now& now);
  // Returns: the slot of a new job with a broker-made, unsealed envelope (a plain
  // Majordomo request, a report, a Titanic request) for `service`; not queued yet.
  std::uint32_t NewBrokerJob(std::uint32_t service, ReplyMode mode, std::uint64_t lifetime_ms, PeerKind client_kind,
                             const Now& now);
  void ReportMetrics(const Now& now);
  // Gives a queued job's frames buffers of their own (see OnSubmit).
  static void OwnFrames(Job& job);
  void ExpireQueued(const Now& now);

  // Workers and services.
  // Returns: whether a SUBMIT from `client` (with current_user_) may stand for `job`, a job
  // the broker holds under the same id: the same CURVE key name, or without CURVE the same
  // connection, or a new connection when the one that submitted it is gone (probed).
  bool OwnsJob(const Job& job, std::string_view client);
  std::uint32_t FindWorker(std::string_view identity) const;
  std::uint32_t FindService(std::string_view name) const;
  // Why FindOrAddService refused to add a service.
  enum class Refusal { kNone, kTableFull, kPeerQuota };
  // Returns: the service's slot, adding it if new, or kNone (`refusal` says why). `creator`
  // is the client creating it (its CURVE key name, else its routing id), charged against
  // new_services_per_peer and kept below kMaxClientServices; empty for workers and the
  // broker's own reports.
  std::uint32_t FindOrAddService(std::string_view name, const Now& now, std::string_view creator,
                                 Refusal& refusal);
  std::uint32_t FindOrAddService(std::string_view name, const Now& now) {
    Refusal refusal = Refusal::kNone;
    return FindOrAddService(name, now, {}, refusal);
  }
  // Forgets, bounded work per call, services with no worker and no job for service_grace.
  void PruneServices(const Now& now);
  // Returns: the message a client gets when FindOrAddService refused.
  std::string RefusalMessage(Refusal refusal) const;
  // Returns: the worker to send the service's next job to, or kNone. `avoid` (a worker
  // serial, 0 for none) is skipped while another worker of the service takes jobs; `held`
  // tells whether it was skipped although it had credit (the job waits for the others).
  std::uint32_t PickWorker(std::uint32_t service, std::uint32_t avoid, bool& held);
  // Forgets a worker; each job it held is charged a crash (ChargeCrash), oldest first.
  // How a worker left: lost (crashed, expired, unreachable, misbehaved) charges a crash to
  // each job it held; a goodbye (DISCONNECT) does not.
  enum class WorkerExit { kLost, kSaidGoodbye };
  void RemoveWorker(std::uint32_t worker, bool send_disconnect, const Now& now, bool dispatch = true,
                    WorkerExit exit = WorkerExit::kLost);
  // A send to the worker failed kUnreachable: its connection is gone.
  void RemoveUnreachable(std::uint32_t worker, const Now& now, bool dispatch = true);
  // Sends HEARTBEAT to every worker that holds jobs; removes the unreachable ones.
  void ProbeWorkers(const Now& now);
  // Warns (rate-limited) when the new worker's key fingerprints disagree with another
  // worker's of its service under the same key id.
  void CheckKeyFingerprints(std::uint32_t worker);
  std::string WorkerName(const Worker& worker) const;
  void ProtocolError(std::string_view identity, PeerKind kind, std::string_view why, const Now& now);

  // Output.
  SendResult SendFrames();
  SendResult SendToWorker(std::string_view identity, PeerKind kind, std::uint8_t command);
  void SendClientError(const Job& job, ErrorCode code, std::string_view message);
  void SendClientError(std::string_view client, const JobId& id, ErrorCode code, std::string_view message);
  void SendCourierClient(std::string_view client, std::uint8_t command, std::string_view body1,
                         std::string_view body2 = {}, bool two_bodies = false);
  void LogBadInput(std::string_view identity, std::string_view what);

  std::string BuildServicesReply() const;
  std::string BuildWorkersReply(const Now& now) const;
  std::string BuildStatsReply(const Now& now) const;

  BrokerConfig config_;
  Outbox& outbox_;
  std::mt19937_64 random_;
  SlotPool<Job> jobs_;
  SlotPool<Worker> workers_;
  // Stable slots: references to a service are held across calls that may add one (a dead
  // letter creates courier.errors); a chunk of pruned services is given back whole.
  SlotPool<Service> services_;
  JobIndex job_index_{jobs_, std::random_device{}()};
  InFlightDeadlines in_flight_deadlines_{jobs_};
  std::uint32_t worker_serial_ = 0;
  bool release_memory_ = false;  // a burst drained: return freed memory to the system on the next tick
  std::unordered_map<std::string, std::uint32_t, StringHash, std::equal_to<>> worker_index_;
  std::unordered_map<std::string, std::uint32_t, StringHash, std::equal_to<>> service_index_;
  std::size_t live_services_ = 0;
  std::size_t connections_ = 0;
  std::uint64_t connections_refused_ = 0;
  std::size_t held_bytes_ = 0;          // Job::bytes of every job held
  std::size_t bytes_since_trim_ = 0;    // bytes freed since memory was last given back
  std::size_t freed_since_trim_ = 0;    // the same, counting the receive buffers jobs pinned
  SteadyTime last_trim_{};
  std::uint64_t messages_ = 0;               // messages handled (OnMessage)
  std::uint64_t messages_at_trim_ = 0;
  std::uint64_t disconnects_since_trim_ = 0;  // connections closed since the last trim
  SteadyTime last_disconnect_{};
  std::uint64_t messages_at_last_check_ = 0;
  enum class Bound { kJobs, kServiceBytes, kTotalBytes } last_bound_ = Bound::kJobs;
  std::uint32_t prune_cursor_ = 0;
  // New service names per creator in the current new_services_window.
  std::unordered_map<std::string, std::uint32_t, StringHash, std::equal_to<>> new_services_by_peer_;
  SteadyTime new_services_window_end_{};
  std::vector<zmq::message_t> out_;  // reused for every send
  Counters counters_;
  RateLimiter bad_input_log_{20, std::chrono::seconds(1)};
  RateLimiter key_log_{5, std::chrono::seconds(60)};
  SteadyTime probe_base_{};          // when the last disconnect was seen
  std::size_t probe_step_ = SIZE_MAX;  // next entry of kProbeDelays, or past its end: none due
  SteadyTime last_probe_{};
  SteadyTime started_{};
  SteadyTime next_deadline_scan_{};
  std::size_t dead_letters_queued_ = 0;
  std::uint64_t dispatch_sequence_ = 0;
  bool draining_ = false;
  std::string incarnation_;
  std::string_view current_user_;  // the User-Id of the message OnMessage is handling
  AccessPolicy access_;            // CURVE allow-list rights (no CURVE: grants all)
  std::unordered_map<std::string, bool, StringHash, std::equal_to<>> capped_keys_;  // caps logged once
  BrokerTimings timings_;
  // Store (UseStore).
  bool store_enabled_ = false;
  std::uint64_t unix_now_ms_ = 0;  // the clock of the event being handled (for results)
  std::vector<StoreOp> store_ops_;
  std::vector<std::pair<std::uint32_t, JobId>> awaiting_commit_;  // jobs of the batch being committed
  std::uint64_t next_seq_ = 1;
  std::vector<StoreLookup> lookups_;
  struct Waiter {
    std::string client;
    std::string correlation;
    SteadyTime until;
  };
  std::unordered_multimap<JobId, Waiter, JobIdHash> waiters_;  // parked `job` queries by job id
  RateLimiter store_log_{1, std::chrono::seconds(1)};
  struct DeferredAccept {
    std::string client;
    JobId id;
  };
  std::deque<DeferredAccept> deferred_accepts_;
  SteadyTime next_metrics_{};
  SteadyTime last_metrics_{};
};

inline constexpr std::size_t kMaxServices = 10000;
// Clients may fill the table only this far: the rest is kept for workers' READYs.
inline constexpr std::size_t kMaxClientServices = kMaxServices - 1000;
// Creators tracked per new_services_window; past it, new names from new creators are refused.
inline constexpr std::size_t kMaxTrackedCreators = 65536;
// Services PruneServices looks at per tick.
inline constexpr std::uint32_t kPruneBatch = 512;
inline constexpr std::string_view kTitanicPrefix = "titanic.";
// `job` queries that may wait at once; more are answered at once with the current state.
inline constexpr std::size_t kMaxWaiters = 10000;
// ACCEPTs held for clients whose pipe was full, retried every turn; past it, dropped.
inline constexpr std::size_t kMaxDeferredAccepts = 200000;
inline constexpr std::size_t kDeferredAcceptsPerTurn = 2048;

}  // namespace courier::broker
