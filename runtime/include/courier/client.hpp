// courier/client.hpp — the client SDK: submit jobs to Courier services through one or more
// brokers, the way a gRPC channel or a brpc channel is used.
//
//   courier::Client client;                                   // local broker, user keyring
//   courier::Value reply = client.Call("echo", courier::Value::Object({{"text", "hi"}}));
//
//   std::future<courier::Value> later = client.Submit("resize", request);
//   client.Submit("resize", request, [](courier::Result result) { ... });   // callback
//   client.Send("audit", event);                              // fire-and-forget, acknowledged
//   courier::JobId id = client.Enqueue("render", scene);      // stored; fetch the result later:
//   courier::Value frame = client.Result(id, std::chrono::seconds(30));   // from any process
//   Thumbnail t = client.Call<Thumbnail>("resize", Resize{"a.png", 640});  // MSGPACK_DEFINE
//
// Contract
// - A Client is built from ClientOptions and keeps one background I/O thread that owns a
//   ZeroMQ DEALER socket per broker, and one callback thread that runs completion
//   callbacks. Every public method is thread-safe.
// - Every job is answered exactly once: a reply, or a courier::Error whose code() says why
//   (error.hpp). Call and Send throw it; Submit delivers it through the future or the
//   callback and never throws itself.
// - Payloads are MessagePack, sealed with the keyring's active key before they leave the
//   calling thread; replies are opened with any key the keyring holds. A reply must be a
//   sealed mode-2 envelope for the same job and service (PROTOCOL.md §5.1); anything else
//   fails the job with kUnauthenticated.
// - Each job has a deadline (CallOptions::deadline, default ClientOptions::deadline). It is
//   written in the envelope for the broker and worker, and enforced here too: past it the
//   job fails with kDeadlineExceeded even if no broker answers (kUnavailable if no broker
//   ever answered the client at all).
// - Retryable errors (busy, worker_lost, unavailable, shutting_down; see IsRetryable) are
//   retried with exponential backoff and jitter, always with the same job id and the same
//   sealed bytes, while the retry budget and the deadline allow. Other errors, handler
//   errors first of all, are never retried.
// - Several brokers: jobs are spread round-robin over the healthy brokers. A broker that
//   sends nothing (not even a PONG to the client's pings) for failover_timeout is marked
//   down and its unanswered jobs are resent, same id, to another healthy broker; it keeps
//   being pinged and is used again once it answers. A broker whose connection closes (its
//   process died) is marked down at once when another broker is up to take its jobs. A broker whose PONG shows it restarted
//   (a new incarnation) has forgotten its jobs: they are resent at once. A broker holding
//   jobs is pinged every heartbeat_interval even while it answers, so a restart faster
//   than failover_timeout is seen within an interval. A late or duplicate answer is
//   dropped.
// - Stored jobs (PROTOCOL.md §6.5): Enqueue returns once a broker has stored the job; that
//   broker runs it and keeps its outcome for the service's result_ttl. Job, Result and
//   ResultAsync look it up by id, asking every broker that is not down (ids are unique, so
//   at most one holds it); Jobs lists stored jobs. A job not yet accepted is resent like a
//   Send; once accepted it is never resent (it is in that broker's store).
// - At most max_in_flight jobs are outstanding; past that, submission blocks (kBlock,
//   bounded by the job's deadline) or fails at once with kBusy (kFailFast). A job's slot is
//   freed when its future is satisfied or after its callback has returned, so memory stays
//   bounded however fast callers submit.
// - Destruction fails whatever is still pending with kCancelled, stops and joins both
//   threads, and never hangs.
//
// Thread-safety: all members are safe to call concurrently. Callbacks run one at a time on
// the client's callback thread; a callback must not destroy its Client. A Submit made from a
// callback never blocks on the in-flight bound (it fails with kBusy instead), so a full
// client cannot deadlock on its own callback thread.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "courier/codec.hpp"
#include "courier/curve.hpp"
#include "courier/error.hpp"
#include "courier/job.hpp"
#include "courier/keyring.hpp"
#include "courier/value.hpp"

namespace courier {

class ConfigSection;

// What Submit does when max_in_flight jobs are already outstanding.
enum class OverflowPolicy : std::uint8_t {
  kBlock,     // wait for a free slot, at most until the job's deadline (then kDeadlineExceeded)
  kFailFast,  // fail the job at once with kBusy
};

// Returns: "block" or "fail_fast".
std::string_view ToString(OverflowPolicy policy) noexcept;

// How retryable failures are retried. The n-th retry (n = 0, 1, ...) waits
//   min(max_backoff, initial_backoff * multiplier^n) * (1 + jitter * u),  u uniform in [-1, 1].
struct RetryPolicy {
  std::uint32_t max_retries = 3;                  // resends after the first try; 0 disables retries
  std::chrono::milliseconds initial_backoff{50};  // default 50 ms
  std::chrono::milliseconds max_backoff{2000};    // default 2 s
  double multiplier = 2.0;                        // default 2, at least 1
  double jitter = 0.2;                            // default ±20 %, in [0, 1]
};

struct ClientOptions {
  static constexpr std::string_view kName = "client";

  // Broker endpoints (ZeroMQ syntax). Default: the local broker, tcp://127.0.0.1:5555.
  std::vector<std::string> brokers{"tcp://127.0.0.1:5555"};
  // Key file. Default (empty): Keyring::DefaultPath(), created with a fresh key if missing
  // (zero-config). An explicit path must exist.
  std::filesystem::path keyring_path;
  // An in-memory keyring; when set, keyring_path is ignored. Default: none.
  std::shared_ptr<const Keyring> keyring;
  // Deadline of a job that does not set its own. Default 30 s.
  std::chrono::milliseconds deadline{30000};
  // Deliveries to workers the broker may try (envelope max_attempts). Default 3.
  std::uint32_t max_attempts = 3;
  // Client-side retries of retryable errors. Default: see RetryPolicy.
  RetryPolicy retry;
  // Jobs outstanding at once, and what happens past the bound. Default 10000, kBlock.
  std::size_t max_in_flight = 10000;
  OverflowPolicy overflow = OverflowPolicy::kBlock;
  // Silence after which a broker is marked down and its jobs go elsewhere. Default 3 s.
  std::chrono::milliseconds failover_timeout{3000};
  // How often each broker is pinged. Default 1 s; must be below failover_timeout.
  std::chrono::milliseconds heartbeat_interval{1000};
  // Ship this client's stage timings (encode, seal, round_trip, open, decode) to
  // courier.metrics once a second and its failed jobs to courier.errors, through the same
  // brokers (`report = true`). Default true. A short-lived process pays up to a second at
  // destruction for the last report; the CLI turns it on only for load runs.
  bool report = true;
  // CurveZMQ transport security on every socket to the brokers (the job sockets and the
  // reporters'). Default: off. With it on, the key file is loaded when the Client is
  // built (Error(kConfig) if missing, malformed or readable by others), and a broker that
  // does not admit this key simply never answers: jobs fail with kUnavailable.
  CurveOptions curve;

  // Returns: options read from a client.toml table (every key optional, defaults above):
  //   brokers = ["tcp://127.0.0.1:5555"]
  //   keyring = "/path/to/keyring.toml"   # relative: to the file's directory
  //   deadline = "30s"              # or an integer of milliseconds
  //   max_attempts = 3
  //   max_in_flight = 10000
  //   overflow = "block"            # block | fail_fast
  //   failover_timeout = "3s"
  //   heartbeat_interval = "1s"
  //   report = true                 # stage timings and failures to courier.metrics/.errors
  //   [retry]
  //   max_retries = 3
  //   initial_backoff = "50ms"
  //   max_backoff = "2s"
  //   multiplier = 2.0
  //   jitter = 0.2
  //   [security]                    # CURVE (courier/curve.hpp); default off
  //   curve = true
  //   server_key = "<Z85>"          # or server_key_file = "broker.pub"
  //   key_file = "client.key"       # relative: to the file's directory
  // Keys the caller already read from `section` (a [log] table, say) are allowed; any
  // other unknown key is rejected. Throws: Error(kConfig) naming the file, line and key.
  static ClientOptions FromConfig(const ConfigSection& section);

  // Overrides fields from the environment, for tools and services that follow the
  // precedence flags > environment > file > defaults:
  //   COURIER_BROKERS      comma-separated endpoints (replaces `brokers`)
  //   COURIER_KEYRING      key file path (replaces `keyring_path`)
  //   COURIER_DEADLINE_MS  default deadline in milliseconds
  //   COURIER_CURVE_SERVER_KEY  the brokers' CURVE public key, or a file holding it
  //                             (turns CURVE on; replaces curve.server_public_key)
  //   COURIER_CURVE_KEY    this client's CURVE key pair file (replaces curve.key_file)
  // Unset or empty variables change nothing. Throws: Error(kConfig) for a malformed value.
  ClientOptions& ApplyEnvironment();
  // The same, reading variables through `lookup` (for tests); lookup returns nullopt when unset.
  ClientOptions& ApplyEnvironment(
      const std::function<std::optional<std::string>(std::string_view name)>& lookup);

  // Throws: Error(kConfig) saying which field is out of range.
  void Validate() const;
};

// Per-job settings; unset fields take the client's defaults.
struct CallOptions {
  std::optional<std::chrono::milliseconds> deadline;  // from now; > 0
  // Derives the job id from this key (Keyring::JobIdFor: a MAC under the active payload
  // key), so a job resubmitted with the same key, by this process or another holding the
  // same keyring, is recognised as the same job; nobody without the key can predict it. While a job
  // with that key is pending in this client, another one fails with kBadRequest.
  std::optional<std::string> idempotency_key;
  std::optional<std::uint32_t> max_attempts;  // broker deliveries, >= 1
  std::optional<std::uint32_t> max_retries;   // overrides RetryPolicy::max_retries
  std::array<std::uint8_t, 16> trace_id{};    // carried in the envelope; all zero: none
};

// The outcome of one job, handed to Submit's callback: a reply value or an error.
class Result {
 public:
  Result(JobId job_id, Value value, std::chrono::microseconds elapsed)
      : job_id_(job_id), outcome_(std::move(value)), elapsed_(elapsed) {}
  Result(JobId job_id, Error error, std::chrono::microseconds elapsed)
      : job_id_(job_id), outcome_(std::move(error)), elapsed_(elapsed) {}

  bool ok() const noexcept { return outcome_.index() == 0; }
  explicit operator bool() const noexcept { return ok(); }

  // Returns: the reply (nil for an accepted Send). Throws: the job's Error if it failed.
  const Value& value() const& {
    if (const Error* e = error()) throw *e;
    return std::get<Value>(outcome_);
  }
  Value value() && {
    if (const Error* e = error()) throw *e;
    return std::move(std::get<Value>(outcome_));
  }
  // Returns: the error, or nullptr if the job succeeded.
  const Error* error() const noexcept { return std::get_if<Error>(&outcome_); }

  const JobId& job_id() const noexcept { return job_id_; }
  // Time from admission (after any wait for an in-flight slot) to the answer.
  std::chrono::microseconds elapsed() const noexcept { return elapsed_; }

 private:
  JobId job_id_;
  std::variant<Value, Error> outcome_;
  std::chrono::microseconds elapsed_{0};
};

using Callback = std::function<void(Result)>;

// A service as one broker (or, merged, the cluster) reports it (QUERY "services").
struct ServiceInfo {
  std::string name;
  std::uint64_t workers = 0;
  std::uint64_t queued = 0;
  std::uint64_t in_flight = 0;
  std::string strategy;
  std::uint64_t dispatched = 0;
  std::uint64_t replied = 0;
  std::uint64_t failed = 0;
  std::vector<std::string> brokers;  // endpoints that reported it
};

// A payload key a worker announced in READY: its id and fingerprint, never the key. Two
// workers of one service showing different fingerprints under one id hold different keys.
struct WorkerKey {
  std::uint32_t id = 0;
  std::string fingerprint;  // 16 lowercase hex digits (Keyring::Fingerprint)
};

// A worker as a broker reports it (QUERY "workers").
struct WorkerInfo {
  std::string id;        // the broker's name for the worker (hex if binary)
  std::string service;
  std::string protocol;  // e.g. "courier" or "mdp"; as the broker says it
  std::uint64_t capacity = 0;
  std::uint64_t in_flight = 0;
  std::uint64_t weight = 0;
  std::string host;
  std::uint64_t pid = 0;
  std::string instance;
  std::uint64_t idle_ms = 0;
  std::uint64_t stuck = 0;       // slots whose handler overran its job's deadline (CREDIT)
  std::vector<WorkerKey> keys;   // empty for MDP workers and hosts that announce none
  std::string broker;    // endpoint of the broker that reported it
};

// One broker's answer to a query sent to every broker.
struct BrokerAnswer {
  std::string broker;
  std::optional<Value> result;  // set when the broker answered
  std::optional<Error> error;   // set when it did not (kUnavailable) or refused the query
};

// One broker's answer to Ping.
struct BrokerPing {
  std::string broker;
  std::optional<std::chrono::microseconds> round_trip;  // set when it answered
  std::optional<Error> error;
};

enum class BrokerHealth : std::uint8_t {
  kConnecting,  // not heard from yet; used only while no broker is known to be up
  kUp,          // heard from within failover_timeout
  kDown,        // silent for failover_timeout; retried by pings
};
std::string_view ToString(BrokerHealth health) noexcept;

struct BrokerStatus {
  std::string broker;
  BrokerHealth health = BrokerHealth::kConnecting;
  std::size_t in_flight = 0;  // jobs currently sent to it and unanswered
};

// Count, sum, min and max of one stage's durations.
struct StageStats {
  std::uint64_t count = 0;
  std::chrono::nanoseconds sum{0};
  std::chrono::nanoseconds min{0};
  std::chrono::nanoseconds max{0};
  std::chrono::nanoseconds mean() const {
    return count == 0 ? std::chrono::nanoseconds(0) : sum / static_cast<std::int64_t>(count);
  }
  void Add(std::chrono::nanoseconds sample);
};

// Client-side stage timings of one service, since the client started.
struct ServiceTimings {
  std::string service;
  StageStats encode;      // MessagePack encoding of the request
  StageStats seal;        // sealing the payload
  StageStats round_trip;  // first send to the broker until its answer arrived
  StageStats open;        // opening the sealed reply
  StageStats decode;      // decoding the reply
  std::uint64_t ok = 0;
  std::uint64_t failed = 0;
};

struct ClientCounters {
  std::uint64_t submitted = 0;
  std::uint64_t succeeded = 0;
  std::uint64_t failed = 0;
  std::uint64_t retries = 0;             // resends after a retryable error
  std::uint64_t failovers = 0;           // resends because a broker was marked down
  std::uint64_t broker_downs = 0;        // times a broker was marked down
  std::uint64_t broker_restarts = 0;     // times a broker's PONG showed a new incarnation
  std::uint64_t disconnects = 0;         // downs seen at once as a closed connection
  std::uint64_t duplicates_dropped = 0;  // answers for jobs already answered (or unknown)
  std::uint64_t malformed = 0;           // broker messages that could not be parsed
  std::uint64_t deadline_expired = 0;    // jobs failed by the client-side deadline
};

// Where a stored job is in its life, as the broker that accepted it says (PROTOCOL.md §6.5).
// kQueued and kRunning change; kDone, kFailed and kDead are final results, kept by the broker
// for the service's result_ttl (default 1 h) and then forgotten (kNotFound).
enum class JobState : std::uint8_t {
  kQueued,   // waiting for a worker
  kRunning,  // dispatched to a worker
  kDone,     // a reply is kept
  kFailed,   // the worker or the broker answered an error
  kDead,     // dead-lettered: attempts exhausted, or a poison job
};
// Returns: "queued", "running", "done", "failed" or "dead".
std::string_view ToString(JobState state) noexcept;
// Returns: the state with that name, or std::nullopt.
std::optional<JobState> ParseJobState(std::string_view name) noexcept;
// Returns: whether the state is final (kDone, kFailed, kDead).
bool IsFinished(JobState state) noexcept;

// A stored job as the broker holding it reports it (Client::Job, Client::Jobs).
struct JobStatus {
  JobId id;
  std::string service;
  JobState state = JobState::kQueued;
  std::uint32_t attempt = 0;       // deliveries so far, the current one while running
  std::uint32_t max_attempts = 0;
  std::string worker;              // kRunning: the worker holding it (host:pid, or its hex id); else ""
  std::uint64_t since_ms = 0;      // Unix ms when the job entered its state
  std::uint64_t expires_ms = 0;    // final states: Unix ms when the broker forgets the result; else 0
  bool durable = true;             // false: a durability = "memory" job, lost if its broker stops
  std::optional<Error> error;      // kFailed, kDead: the code and message
  std::optional<Value> result;     // kDone, from Job only: the reply, opened and verified
  std::string broker;              // endpoint of the broker that answered
};

// Which stored jobs Client::Jobs lists.
struct JobsFilter {
  std::string service;            // default "": every service
  std::optional<JobState> state;  // default: every state
  std::size_t limit = 100;        // rows at most, over all brokers together; >= 1; default 100
};

namespace detail {
// What the typed templates below need from the client's internals.
struct RawResult {
  JobId job_id;
  std::optional<Error> error;
  std::string plaintext;  // the opened reply's MessagePack (empty for an accepted Send)
  std::chrono::microseconds elapsed{0};
};
using RawCallback = std::function<void(RawResult&&)>;
// The SDK-side stages the typed templates time (not the worker's courier::Stage).
enum class CodecStage : std::uint8_t { kEncode, kDecode };
}  // namespace detail

class Client {
 public:
  // Connects to every broker in `options` (asynchronously: a broker need not be up yet).
  // Throws: Error(kConfig) for invalid options or key file, Error(kIo) for a bad endpoint.
  explicit Client(ClientOptions options = {});
  // Fails pending jobs with kCancelled, stops and joins the I/O and callback threads.
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;
  Client(Client&&) = delete;
  Client& operator=(Client&&) = delete;

  // Submits a job and waits for its reply. Returns: the reply.
  // Throws: Error with the job's code (kHandlerError, kDeadlineExceeded, kUnavailable...).
  Value Call(std::string_view service, Value request, const CallOptions& options = {});

  // Typed form for MSGPACK_DEFINE structs (or anything msgpack-c packs and converts):
  //   Thumbnail t = client.Call<Thumbnail>("resize", Resize{"a.png", 640});
  // Throws: as Call, plus Error(kInvalidPayload) if the reply does not convert to Reply.
  template <class Reply, class Request>
  Reply Call(std::string_view service, const Request& request, const CallOptions& options = {});

  // Submits a job. Returns: a future for the reply; its get() throws the job's Error.
  // Never throws: a job that cannot even be submitted fails through the future.
  [[nodiscard]] std::future<Value> Submit(std::string_view service, Value request,
                                          const CallOptions& options = {});

  // Typed form of Submit; decoding to Reply happens before the future is satisfied.
  template <class Reply, class Request>
  [[nodiscard]] std::future<Reply> Submit(std::string_view service, const Request& request,
                                          const CallOptions& options = {});

  // Submits a job; `callback` runs exactly once, on the client's callback thread, with the
  // reply or the error. An exception from the callback is logged and swallowed.
  // Throws: Error(kBadRequest) only for an empty callback; job failures go to the callback.
  void Submit(std::string_view service, Value request, Callback callback,
              const CallOptions& options = {});

  // Submits every request as its own job (with an idempotency key, job i uses key + "/" + i).
  // Returns: one future per request, in order.
  [[nodiscard]] std::vector<std::future<Value>> SubmitBatch(std::string_view service,
                                                            std::vector<Value> requests,
                                                            const CallOptions& options = {});

  // Fire-and-forget: returns once a broker has accepted (queued) the job; no reply follows.
  // Returns: the job's id. Throws: Error if no broker accepts it (kBusy, kNoSuchService,
  // kUnavailable, kDeadlineExceeded...).
  JobId Send(std::string_view service, Value request, const CallOptions& options = {});
  // Typed form of Send.
  template <class Request>
    requires(!std::is_convertible_v<const Request&, Value>)
  JobId Send(std::string_view service, const Request& request, const CallOptions& options = {});
  // Asynchronous Send: `callback` gets a nil value once the job is accepted, or the error.
  // Throws: Error(kBadRequest) only for an empty callback.
  void Send(std::string_view service, Value request, Callback callback,
            const CallOptions& options = {});

  // Stored job (mode 3, PROTOCOL.md §6.5): returns once a broker has stored the job. That
  // broker runs it and keeps the outcome under the returned id for the service's
  // result_ttl; fetch it with Result or Job, from this process or any other with the
  // keyring. The deadline (CallOptions::deadline) bounds how long the job may wait for a
  // worker, not how long its result is kept.
  // Returns: the job's id. Throws: Error if no broker stores it (kBusy, kUnavailable,
  // kDeadlineExceeded...), as Send.
  JobId Enqueue(std::string_view service, Value request, const CallOptions& options = {});
  // Typed form of Enqueue.
  template <class Request>
    requires(!std::is_convertible_v<const Request&, Value>)
  JobId Enqueue(std::string_view service, const Request& request, const CallOptions& options = {});
  // Asynchronous Enqueue: `callback` gets a nil value once the job is stored, or the error.
  // Throws: Error(kBadRequest) only for an empty callback.
  void Enqueue(std::string_view service, Value request, Callback callback,
               const CallOptions& options = {});

  // Looks up a stored job by id. Asks every broker that is not down with the `job` query
  // (PROTOCOL.md §9.1) and uses the first answer that is not kNotFound. With `wait` > 0 a
  // broker holds the question until the job is final or `wait` has passed (the answer then
  // shows the state it is in; waits over 60 s are made of several questions). A kDone job's
  // reply is opened and verified as a call's (PROTOCOL.md §5.1) into JobStatus::result.
  // Returns: the job's status. Throws: Error(kNotFound) if every broker answered that it
  // holds no such job (never stored, or its result expired); Error(kUnavailable) if none
  // holds it but some did not answer (in failover_timeout after `wait`); a broker's other
  // refusal as it sent it; Error(kUnauthenticated), kUnknownKey... if a kDone reply does
  // not open or does not belong to the job; Error(kBadRequest) for a negative wait.
  JobStatus Job(const JobId& id, std::chrono::milliseconds wait = std::chrono::milliseconds(0));

  // Waits up to `wait` for a stored job's outcome (Job(id, wait)).
  // Returns: the reply of a kDone job. Throws: the job's Error if it failed or is dead
  // (kHandlerError, kAttemptsExhausted, kDeadlineExceeded...); Error(kDeadlineExceeded,
  // "job ... still queued after ...") if it is not final when `wait` ends; otherwise as Job.
  Value Result(const JobId& id, std::chrono::milliseconds wait);
  // Asynchronous Result: `callback` runs once, on the client's callback thread, with the
  // reply or the error, as Submit's callbacks do. Like a job, the lookup holds one of the
  // max_in_flight slots until its callback has returned (overflow applies as for Submit).
  // Throws: Error(kBadRequest) only for an empty callback.
  void ResultAsync(const JobId& id, std::chrono::milliseconds wait, Callback callback);

  // Lists stored jobs and kept results of every broker that is not down (the `jobs` query,
  // following each broker's pages), at most filter.limit rows in all, merged in each
  // broker's acceptance order by since_ms. Rows carry no result (Job fetches one). A
  // broker that does not answer is left out (and logged).
  // Throws: Error(kBadRequest) for limit 0; Error(kUnavailable), or the broker's refusal,
  // if no broker answered.
  std::vector<JobStatus> Jobs(const JobsFilter& filter = {});

  // Discovery. Each asks one healthy broker (the Cluster forms ask every broker that is
  // not down and merge), waiting at most failover_timeout for an answer.
  // Throws: Error(kUnavailable) if no broker answers; the broker's error if it refuses.
  // Returns: whether some worker currently serves `service`.
  bool ServiceAvailable(std::string_view service);
  std::vector<ServiceInfo> Services();
  std::vector<WorkerInfo> Workers();
  // Returns: every broker's services merged by name (counts summed, but each worker
  // counted once however many brokers it registered with), sorted by name.
  // Throws: Error(kUnavailable) only if no broker answered.
  std::vector<ServiceInfo> ClusterServices();
  std::vector<WorkerInfo> ClusterWorkers();
  // Returns: the raw result of the management query `name` ("services", "workers", "stats").
  Value Query(std::string_view name);
  // Returns: one answer per configured broker, in the order of ClientOptions::brokers.
  std::vector<BrokerAnswer> QueryAll(std::string_view name);
  // Returns: one PING round trip per configured broker, in order.
  std::vector<BrokerPing> Ping();

  // Accessors (snapshots; cheap).
  std::vector<BrokerStatus> brokers() const;
  std::vector<ServiceTimings> timings() const;
  ClientCounters counters() const;
  std::size_t in_flight() const;
  const ClientOptions& options() const;

 private:
  class Impl;

  // Submits MessagePack `plaintext`; `done` runs exactly once, on the I/O thread, or on the
  // callback thread when `on_callback_thread`.
  void SubmitRaw(std::string_view service, std::string plaintext, std::chrono::nanoseconds encode_time,
                 const CallOptions& options, ReplyMode mode, bool on_callback_thread,
                 detail::RawCallback done);
  // Submits a send or enqueue job and waits for its ACCEPT. Returns: its id.
  JobId SubmitAcknowledged(std::string_view service, std::string plaintext, std::chrono::nanoseconds encode_time,
                           const CallOptions& options, ReplyMode mode);
  // Submits a send or enqueue job; `callback` gets a nil value once it is accepted.
  void SubmitAcknowledged(std::string_view service, const Value& request, Callback callback,
                          const CallOptions& options, ReplyMode mode);
  void RecordStage(std::string_view service, detail::CodecStage stage, std::chrono::nanoseconds time);

  template <class T>
  static std::string EncodePayload(const T& value) {
    if constexpr (std::is_same_v<T, Value>) {
      return EncodeValue(value);
    } else {
      return Encode(value);
    }
  }
  template <class T>
  static T DecodePayload(std::string_view bytes) {
    if constexpr (std::is_same_v<T, Value>) {
      return DecodeValue(bytes);
    } else {
      return Decode<T>(bytes);
    }
  }

  std::unique_ptr<Impl> impl_;
};

// ---- templates ----------------------------------------------------------------------------

template <class Reply, class Request>
std::future<Reply> Client::Submit(std::string_view service, const Request& request,
                                  const CallOptions& options) {
  auto promise = std::make_shared<std::promise<Reply>>();
  std::future<Reply> future = promise->get_future();
  std::string plaintext;
  const auto started = std::chrono::steady_clock::now();
  try {
    plaintext = EncodePayload(request);
  } catch (...) {
    promise->set_exception(std::current_exception());
    return future;
  }
  const auto encode_time = std::chrono::steady_clock::now() - started;
  std::string name(service);
  SubmitRaw(service, std::move(plaintext), encode_time, options, ReplyMode::kCall, false,
            [this, promise, name](detail::RawResult&& raw) {
              if (raw.error) {
                promise->set_exception(std::make_exception_ptr(*raw.error));
                return;
              }
              try {
                const auto decode_started = std::chrono::steady_clock::now();
                Reply reply = DecodePayload<Reply>(raw.plaintext);
                RecordStage(name, detail::CodecStage::kDecode,
                            std::chrono::steady_clock::now() - decode_started);
                promise->set_value(std::move(reply));
              } catch (...) {
                promise->set_exception(std::current_exception());
              }
            });
  return future;
}

template <class Reply, class Request>
Reply Client::Call(std::string_view service, const Request& request, const CallOptions& options) {
  return Submit<Reply, Request>(service, request, options).get();
}

template <class Request>
  requires(!std::is_convertible_v<const Request&, Value>)
JobId Client::Send(std::string_view service, const Request& request, const CallOptions& options) {
  const auto started = std::chrono::steady_clock::now();
  std::string plaintext = EncodePayload(request);
  return SubmitAcknowledged(service, std::move(plaintext), std::chrono::steady_clock::now() - started, options,
                            ReplyMode::kSend);
}

template <class Request>
  requires(!std::is_convertible_v<const Request&, Value>)
JobId Client::Enqueue(std::string_view service, const Request& request, const CallOptions& options) {
  const auto started = std::chrono::steady_clock::now();
  std::string plaintext = EncodePayload(request);
  return SubmitAcknowledged(service, std::move(plaintext), std::chrono::steady_clock::now() - started, options,
                            ReplyMode::kEnqueue);
}

}  // namespace courier
