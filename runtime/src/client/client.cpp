// courier::Client: the public face over ClientCore. Callers encode and seal on their own
// thread and hand the sealed job to the I/O thread through a mutex-protected queue plus an
// inproc PAIR wake-up; the I/O thread owns one DEALER per broker and drives the core;
// callbacks run on the callback thread.
#include "courier/client.hpp"

#include <spdlog/spdlog.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <future>
#include <map>
#include <mutex>
#include <thread>
#include <variant>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "client/callback_thread.hpp"
#include "client/client_core.hpp"
#include "client/discovery.hpp"
#include "client/in_flight.hpp"
#include "client/stored_jobs.hpp"
#include "client/timings.hpp"
#include "courier/reporting.hpp"
#include "curve_socket.hpp"
#include "envelope_codec.hpp"
#include "protocol.hpp"

namespace courier {
namespace {

using detail::SteadyClock;
using detail::SteadyTime;
using std::chrono::duration_cast;
using std::chrono::microseconds;
using std::chrono::milliseconds;
using std::chrono::nanoseconds;

constexpr int kMaxMessagesPerSocket = 512;  // per poll round, so one busy broker cannot starve the rest
constexpr milliseconds kMaxPollWait{250};
constexpr int kExtraHwm = 1000;             // pings and queries on top of max_in_flight jobs

// One DEALER per broker, owned by the I/O thread.
class DealerTransport final : public detail::Transport {
 public:
  // `curve` must be resolved (keys loaded), or off.
  DealerTransport(zmq::context_t& context, const std::vector<std::string>& endpoints, int hwm,
                  const CurveOptions& curve)
      : context_(context), endpoints_(endpoints), hwm_(hwm), curve_(curve) {
    sockets_.reserve(endpoints.size());
    monitors_.reserve(endpoints.size());
    for (std::size_t i = 0; i < endpoints.size(); ++i) {
      sockets_.push_back(Dial(i));
      monitors_.push_back(Monitor(sockets_.back()));
    }
  }

  bool Send(std::size_t broker, std::span<const std::string_view> frames) override {
    zmq::socket_t& socket = sockets_[broker];
    try {
      for (std::size_t i = 0; i < frames.size(); ++i) {
        const auto flags = i + 1 < frames.size() ? zmq::send_flags::sndmore | zmq::send_flags::dontwait
                                                 : zmq::send_flags::dontwait;
        // A multipart message is queued whole or not at all: only its first frame can
        // meet the high-water mark.
        if (!socket.send(zmq::const_buffer(frames[i].data(), frames[i].size()), flags)) return false;
      }
      return true;
    } catch (const zmq::error_t& error) {
      spdlog::warn("client: cannot send to {}: {}", endpoints_[broker], error.what());
      return false;
    }
  }

  void Redial(std::size_t broker) override {
    sockets_[broker].close();
    monitors_[broker].close();
    sockets_[broker] = Dial(broker);
    monitors_[broker] = Monitor(sockets_[broker]);
    changed_ = true;
  }

  std::vector<zmq::socket_t>& sockets() { return sockets_; }
  // One per broker socket: readable when that socket's connection closed (see Monitor).
  std::vector<zmq::socket_t>& monitors() { return monitors_; }

  // Returns: whether `broker`'s monitor reported a closed connection since the last call.
  bool TakeDisconnected(std::size_t broker) {
    bool disconnected = false;
    std::vector<zmq::message_t> event;
    while (zmq::recv_multipart(monitors_[broker], std::back_inserter(event), zmq::recv_flags::dontwait)) {
      std::uint16_t id = 0;
      if (!event.empty() && event[0].size() >= sizeof id) std::memcpy(&id, event[0].data(), sizeof id);
      disconnected = disconnected || id == ZMQ_EVENT_DISCONNECTED;
      event.clear();
    }
    return disconnected;
  }
  // Returns: whether a socket was replaced since the last call (poll items must be rebuilt).
  bool TakeChanged() { return std::exchange(changed_, false); }

 private:
  zmq::socket_t Dial(std::size_t broker) {
    zmq::socket_t socket(context_, zmq::socket_type::dealer);
    socket.set(zmq::sockopt::linger, 0);
    socket.set(zmq::sockopt::sndhwm, hwm_);
    socket.set(zmq::sockopt::rcvhwm, hwm_);
    socket.set(zmq::sockopt::maxmsgsize, static_cast<std::int64_t>(detail::kDefaultMaxMessageBytes + 4096));
    socket.set(zmq::sockopt::reconnect_ivl, 100);
    socket.set(zmq::sockopt::reconnect_ivl_max, 1000);
    detail::ApplyCurve(socket, curve_);
    try {
      socket.connect(endpoints_[broker]);
    } catch (const zmq::error_t& error) {
      throw Error(ErrorCode::kConfig, "broker endpoint '" + endpoints_[broker] + "': " + error.what());
    }
    return socket;
  }

  zmq::context_t& context_;
  const std::vector<std::string>& endpoints_;
  int hwm_;
  const CurveOptions& curve_;
  // A broker whose process dies closes its TCP connection at once; the socket monitor tells
  // the I/O thread, which fails that broker's jobs over without waiting for
  // failover_timeout of silence (silence still catches a hung host or a cut link).
  zmq::socket_t Monitor(zmq::socket_t& socket) {
    const std::string endpoint = "inproc://courier-client-monitor-" + std::to_string(++monitor_serial_) + "-" +
                                 std::to_string(reinterpret_cast<std::uintptr_t>(this));
    if (zmq_socket_monitor(socket.handle(), endpoint.c_str(), ZMQ_EVENT_DISCONNECTED) != 0) {
      throw zmq::error_t();
    }
    zmq::socket_t monitor(context_, zmq::socket_type::pair);
    monitor.set(zmq::sockopt::linger, 0);
    monitor.connect(endpoint);
    return monitor;
  }

  std::vector<zmq::socket_t> sockets_;
  std::vector<zmq::socket_t> monitors_;
  std::uint64_t monitor_serial_ = 0;
  bool changed_ = false;
};

std::shared_ptr<const Keyring> OpenKeyring(const ClientOptions& options) {
  if (options.keyring) {
    if (options.keyring->active_key_id() == 0) {
      throw Error(ErrorCode::kConfig, "client options: the in-memory keyring has no active key");
    }
    return options.keyring;
  }
  if (options.keyring_path.empty()) {
    return std::make_shared<const Keyring>(Keyring::LoadOrCreate(Keyring::DefaultPath()));
  }
  return std::make_shared<const Keyring>(Keyring::Load(options.keyring_path));
}

// Releases an in-flight slot when the last copy of a job's completion goes away.
class Permit {
 public:
  explicit Permit(detail::InFlightLimiter& limiter) : limiter_(&limiter) {}
  ~Permit() { limiter_->Release(); }
  Permit(const Permit&) = delete;
  Permit& operator=(const Permit&) = delete;

 private:
  detail::InFlightLimiter* limiter_;
};

}  // namespace

// ---- Impl ----------------------------------------------------------------------------------

class Client::Impl {
 public:
  explicit Impl(ClientOptions options);
  ~Impl() { Shutdown(); }

  void Shutdown() noexcept;
  void SubmitJob(std::string_view service, std::string plaintext, nanoseconds encode_time,
                 const CallOptions& call, ReplyMode mode, bool on_callback_thread, detail::RawCallback done);
  // Sends a query to `broker` (kNoBroker: any healthy one). `body` is the whole query body
  // for a query with arguments (empty: [name, {}]); the answer must come within `timeout`
  // (default: failover_timeout).
  std::future<detail::QueryOutcome> StartQuery(detail::QueryKind kind, std::string_view name, std::size_t broker,
                                               std::string body = {}, std::optional<milliseconds> timeout = {});
  detail::QueryOutcome RunQuery(detail::QueryKind kind, std::string_view name, std::size_t broker) {
    return StartQuery(kind, name, broker).get();
  }

  // Where a job lookup ended: the record and the endpoint that sent it, or the error.
  struct JobLookupResult {
    std::optional<wire::JobRecord> record;
    std::string broker;
    std::optional<Error> error;
  };
  // Asks every broker for job `id` (waiting up to `wait`); `done` runs once, on the I/O
  // thread (or on this one if the client is shutting down).
  void LookupJob(const JobId& id, milliseconds wait, std::function<void(JobLookupResult&&)> done);

  // Takes an in-flight slot (as a job does) for something answered later; nullptr and
  // `error` set when none is free in time (or the client is shutting down).
  std::shared_ptr<void> Admit(SteadyTime deadline, std::optional<Error>& error);

  const Keyring& keyring() const { return *keyring_; }

  void Record(std::string_view service, detail::TimedStage stage, nanoseconds time) {
    timings_.Record(service, stage, time);
  }
  bool OnCallbackThread() const { return callbacks_.OnThisThread(); }
  void Post(std::function<void()> task) { callbacks_.Post(std::move(task)); }

  std::vector<BrokerStatus> Brokers() const;
  ClientCounters Counters() const {
    std::lock_guard lock(status_mutex_);
    return counters_;
  }
  std::size_t InFlight() const { return limiter_.in_flight(); }
  std::vector<ServiceTimings> Timings() const { return timings_.Snapshot(); }
  const ClientOptions& options() const { return options_; }

 private:
  using Command = std::variant<detail::JobRequest, detail::QueryRequest>;

  void Enqueue(Command command);
  static void Cancel(Command& command, std::string_view why);
  struct JobLookupState;
  // Sends one `job` query of a lookup to `broker`.
  void AskForJob(const std::shared_ptr<JobLookupState>& state, std::size_t broker, milliseconds wait);
  void Run(std::promise<void>& started);
  void Loop(detail::ClientCore& core, DealerTransport& transport, zmq::socket_t& pipe);
  void Publish(const detail::ClientCore& core);

  // Failures only the client can see go to courier.errors (the others are reported by
  // the broker or worker that met them).
  void ReportFailure(const JobId& id, const std::string& service, std::string_view stage, const Error& error) {
    if (!errors_) return;
    ErrorReport report;
    report.service = service;
    report.job_id = id;
    report.stage = std::string(stage);
    report.code = error.code();
    report.message = error.what();
    errors_->Report(std::move(report));
  }

  const ClientOptions options_;
  const std::shared_ptr<const Keyring> keyring_;
  const CurveOptions curve_;        // options_.curve with its key pair loaded
  zmq::context_t context_{1};
  detail::InFlightLimiter limiter_;
  detail::TimingTable timings_;
  detail::CallbackThread callbacks_;

  std::mutex mutex_;                // guards the fields below, and wake_
  std::vector<Command> commands_;
  zmq::socket_t wake_;              // PAIR: the callers' end of the I/O thread's pipe
  bool stopping_ = false;
  bool closed_ = false;             // the I/O thread is gone: commands fail at once
  std::string pipe_endpoint_;
  std::thread io_;
  std::atomic<bool> shut_down_{false};

  mutable std::mutex status_mutex_;  // the I/O thread's published view
  std::vector<std::pair<BrokerHealth, std::size_t>> status_;
  ClientCounters counters_;

  // Declared last: destroyed first, while everything they read from is still alive.
  std::unique_ptr<ErrorReportSender> errors_;
  std::unique_ptr<MetricsReporter> metrics_;
};

Client::Impl::Impl(ClientOptions options)
    : options_((options.Validate(), std::move(options))),
      keyring_(OpenKeyring(options_)),
      curve_(options_.curve.Resolved()),
      limiter_(options_.max_in_flight) {
  status_.assign(options_.brokers.size(), {BrokerHealth::kConnecting, 0});
  if (options_.report) {
    ReporterOptions reporting;
    reporting.brokers = options_.brokers;
    reporting.reporter = "client";
    reporting.curve = curve_;
    errors_ = std::make_unique<ErrorReportSender>(reporting);
    metrics_ = std::make_unique<MetricsReporter>(reporting, [this] { return timings_.Totals(); });
  }
  char name[64];
  std::snprintf(name, sizeof name, "inproc://courier-client-%p", static_cast<void*>(this));
  pipe_endpoint_ = name;
  wake_ = zmq::socket_t(context_, zmq::socket_type::pair);
  wake_.set(zmq::sockopt::linger, 0);
  wake_.bind(pipe_endpoint_);
  // Synchronised start: the constructor returns once the I/O thread owns its sockets, or
  // rethrows what stopped it (a malformed endpoint, say).
  std::promise<void> started;
  std::future<void> ready = started.get_future();
  io_ = std::thread([this, &started] { Run(started); });
  try {
    ready.get();
  } catch (...) {
    io_.join();
    callbacks_.Stop();
    throw;
  }
}

void Client::Impl::Run(std::promise<void>& started) {
  std::optional<zmq::socket_t> pipe;
  std::optional<DealerTransport> transport;
  std::optional<detail::ClientCore> core;
  try {
    pipe.emplace(context_, zmq::socket_type::pair);
    pipe->set(zmq::sockopt::linger, 0);
    pipe->connect(pipe_endpoint_);
    const int hwm = static_cast<int>(std::min<std::size_t>(options_.max_in_flight + kExtraHwm, 10'000'000));
    transport.emplace(context_, options_.brokers, hwm, curve_);
    detail::CoreOptions core_options;
    core_options.failover_timeout = options_.failover_timeout;
    core_options.heartbeat_interval = options_.heartbeat_interval;
    core_options.retry = options_.retry;
    core_options.seed = std::random_device{}();
    core.emplace(options_.brokers, core_options, *transport, SteadyClock::now());
  } catch (...) {
    {
      std::lock_guard lock(mutex_);
      closed_ = true;
    }
    started.set_exception(std::current_exception());
    return;
  }
  started.set_value();

  try {
    Loop(*core, *transport, *pipe);
  } catch (const std::exception& error) {
    spdlog::error("client: I/O thread stopped: {}", error.what());
  }
  std::vector<Command> leftover;
  {
    std::lock_guard lock(mutex_);
    closed_ = true;
    leftover.swap(commands_);
  }
  core->FailAll(ErrorCode::kCancelled, "the client is shutting down", SteadyClock::now());
  for (Command& command : leftover) Cancel(command, "the client is shutting down");
  Publish(*core);
}

void Client::Impl::Loop(detail::ClientCore& core, DealerTransport& transport, zmq::socket_t& pipe) {
  std::vector<zmq::pollitem_t> items;
  auto rebuild = [&] {
    items.clear();
    items.push_back({pipe.handle(), 0, ZMQ_POLLIN, 0});
    for (auto& socket : transport.sockets()) items.push_back({socket.handle(), 0, ZMQ_POLLIN, 0});
    for (auto& monitor : transport.monitors()) items.push_back({monitor.handle(), 0, ZMQ_POLLIN, 0});
  };
  const std::size_t brokers = transport.sockets().size();
  rebuild();
  std::vector<zmq::message_t> message;
  std::vector<std::string_view> frames;
  std::vector<Command> commands;
  while (true) {
    SteadyTime now = SteadyClock::now();
    const auto wait = std::clamp(duration_cast<milliseconds>(core.NextWakeup() - now) + milliseconds(1),
                                 milliseconds(0), kMaxPollWait);
    try {
      zmq::poll(items, wait);
    } catch (const zmq::error_t& error) {
      if (error.num() != EINTR) throw;
      continue;
    }
    now = SteadyClock::now();

    if (items[0].revents & ZMQ_POLLIN) {
      zmq::message_t ignored;
      while (pipe.recv(ignored, zmq::recv_flags::dontwait)) {
      }
    }
    bool stop = false;
    {
      std::lock_guard lock(mutex_);
      commands.swap(commands_);
      stop = stopping_;
    }
    if (stop) {
      for (Command& command : commands) Cancel(command, "the client is shutting down");
      return;
    }
    for (Command& command : commands) {
      if (auto* job = std::get_if<detail::JobRequest>(&command)) {
        core.Submit(std::move(*job), now);
      } else {
        core.Query(std::move(std::get<detail::QueryRequest>(command)), now);
      }
    }
    commands.clear();

    for (std::size_t i = 1; i <= brokers; ++i) {
      if (!(items[i].revents & ZMQ_POLLIN)) continue;
      zmq::socket_t& socket = transport.sockets()[i - 1];
      for (int n = 0; n < kMaxMessagesPerSocket; ++n) {
        message.clear();
        if (!zmq::recv_multipart(socket, std::back_inserter(message), zmq::recv_flags::dontwait)) break;
        frames.clear();
        for (const auto& frame : message) frames.emplace_back(frame.data<char>(), frame.size());
        core.OnMessage(i - 1, frames, now);
      }
    }
    for (std::size_t b = 0; b < brokers; ++b) {
      // Read even when a Redial above replaced the monitor (then it is simply empty).
      if ((items[1 + brokers + b].revents & ZMQ_POLLIN) && transport.TakeDisconnected(b)) {
        core.OnDisconnected(b, now);
      }
    }
    core.OnTick(now);
    if (transport.TakeChanged()) rebuild();
    Publish(core);
  }
}

void Client::Impl::Publish(const detail::ClientCore& core) {
  std::lock_guard lock(status_mutex_);
  for (std::size_t i = 0; i < status_.size(); ++i) status_[i] = {core.health(i), core.assigned(i)};
  counters_ = core.counters();
}

std::vector<BrokerStatus> Client::Impl::Brokers() const {
  std::vector<BrokerStatus> out;
  std::lock_guard lock(status_mutex_);
  for (std::size_t i = 0; i < status_.size(); ++i) {
    out.push_back({options_.brokers[i], status_[i].first, status_[i].second});
  }
  return out;
}

void Client::Impl::Shutdown() noexcept {
  if (shut_down_.exchange(true)) return;
  if (callbacks_.OnThisThread()) {
    std::fputs("courier::Client destroyed from its own callback; this cannot be done safely\n", stderr);
    std::abort();
  }
  limiter_.Close();  // callers blocked on the in-flight bound fail with kCancelled
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    if (!closed_) {
      try {
        wake_.send(zmq::const_buffer("", 0), zmq::send_flags::dontwait);
      } catch (const zmq::error_t&) {
      }
    }
  }
  if (io_.joinable()) io_.join();
  callbacks_.Stop();  // runs the callbacks of everything the I/O thread just cancelled
  wake_.close();
}

void Client::Impl::Cancel(Command& command, std::string_view why) {
  if (auto* job = std::get_if<detail::JobRequest>(&command)) {
    detail::JobOutcome outcome;
    outcome.error = Error(ErrorCode::kCancelled, std::string(why));
    outcome.answered = SteadyClock::now();
    if (job->done) job->done(std::move(outcome));
  } else {
    auto& query = std::get<detail::QueryRequest>(command);
    detail::QueryOutcome outcome;
    outcome.error = Error(ErrorCode::kCancelled, std::string(why));
    outcome.answered = SteadyClock::now();
    if (query.done) query.done(std::move(outcome));
  }
}

void Client::Impl::Enqueue(Command command) {
  {
    std::lock_guard lock(mutex_);
    if (!closed_ && !stopping_) {
      const bool was_empty = commands_.empty();
      commands_.push_back(std::move(command));
      // One wake-up per batch: the I/O thread takes the whole queue each time it wakes.
      if (was_empty) {
        try {
          wake_.send(zmq::const_buffer("", 0), zmq::send_flags::dontwait);
        } catch (const zmq::error_t&) {
          // The I/O thread polls at least every kMaxPollWait and takes the queue anyway.
        }
      }
      return;
    }
  }
  Cancel(command, "the client is shutting down");
}

void Client::Impl::SubmitJob(std::string_view service, std::string plaintext, nanoseconds encode_time,
                             const CallOptions& call, ReplyMode mode, bool on_callback_thread,
                             detail::RawCallback done) {
  const SteadyTime admitted_start = SteadyClock::now();
  const JobId id = call.idempotency_key ? keyring_->JobIdFor(*call.idempotency_key) : JobId::Random();
  // Delivers a failure found before the job reached the I/O thread, on the thread the
  // caller expects completions on.
  auto fail = [&](ErrorCode code, std::string message) {
    timings_.RecordOutcome(service, false);
    detail::RawResult result;
    result.job_id = id;
    result.error = Error(code, std::move(message));
    if (on_callback_thread) {
      callbacks_.Post([done = std::move(done), result = std::move(result)]() mutable { done(std::move(result)); });
    } else {
      done(std::move(result));
    }
  };

  const milliseconds deadline = call.deadline.value_or(options_.deadline);
  if (service.empty() || service.size() > detail::kMaxServiceNameBytes) {
    return fail(ErrorCode::kBadRequest, "service name must be 1.." + std::to_string(detail::kMaxServiceNameBytes) + " bytes");
  }
  if (deadline <= milliseconds(0)) return fail(ErrorCode::kBadRequest, "deadline must be positive");
  const std::uint32_t max_attempts = call.max_attempts.value_or(options_.max_attempts);
  if (max_attempts < 1) return fail(ErrorCode::kBadRequest, "max_attempts must be at least 1");
  // Room for the envelope (at most 512 bytes), the tag and the framing: a bigger job would
  // only be dropped by the broker's transport, and the caller would wait for its deadline.
  if (plaintext.size() + 1024 > detail::kDefaultMaxMessageBytes) {
    return fail(ErrorCode::kTooLarge, "the request is " + std::to_string(plaintext.size()) +
                                          " bytes; a job carries at most " +
                                          std::to_string(detail::kDefaultMaxMessageBytes - 1024) + " (16 MiB with its envelope)");
  }
  const SteadyTime steady_deadline = admitted_start + deadline;

  // A callback that submits must not wait for a slot only callbacks can free.
  const OverflowPolicy policy = callbacks_.OnThisThread() ? OverflowPolicy::kFailFast : options_.overflow;
  switch (limiter_.Acquire(policy, steady_deadline)) {
    case detail::InFlightLimiter::Admission::kAdmitted:
      break;
    case detail::InFlightLimiter::Admission::kFull:
      return fail(ErrorCode::kBusy, "the client already has max_in_flight=" + std::to_string(options_.max_in_flight) +
                                        " jobs outstanding");
    case detail::InFlightLimiter::Admission::kTimedOut:
      return fail(ErrorCode::kDeadlineExceeded, "no in-flight slot was freed before the job's deadline (max_in_flight=" +
                                                    std::to_string(options_.max_in_flight) + ")");
    case detail::InFlightLimiter::Admission::kClosed:
      return fail(ErrorCode::kCancelled, "the client is shutting down");
  }
  auto permit = std::make_shared<Permit>(limiter_);
  const SteadyTime admitted = SteadyClock::now();

  Envelope envelope;
  envelope.job_id = id;
  envelope.service = std::string(service);
  envelope.created_at_ms = NowUnixMs();
  envelope.deadline_ms = envelope.created_at_ms + static_cast<std::uint64_t>(
                                                      duration_cast<milliseconds>(steady_deadline - admitted).count());
  if (envelope.deadline_ms <= envelope.created_at_ms) envelope.deadline_ms = envelope.created_at_ms + 1;
  envelope.max_attempts = max_attempts;
  envelope.trace_id = call.trace_id;
  envelope.mode = mode;
  Keyring::Sealed sealed;
  try {
    // key: the keyring is fixed for the client's life, so a job's key work is finding the
    // active key it seals with
    const SteadyTime key_start = SteadyClock::now();
    if (!keyring_->Holds(keyring_->active_key_id())) throw Error(ErrorCode::kConfig, "the keyring has no active key");
    const SteadyTime seal_start = SteadyClock::now();
    sealed = keyring_->Seal(std::move(envelope), plaintext);
    timings_.RecordSubmit(service, encode_time, seal_start - key_start, SteadyClock::now() - seal_start);
  } catch (const Error& error) {
    permit.reset();
    return fail(error.code(), error.what());
  }

  detail::JobRequest job;
  job.id = id;
  job.service = std::string(service);
  job.mode = mode;
  job.envelope = std::move(sealed.envelope);
  job.payload = std::move(sealed.payload);
  job.deadline = steady_deadline;
  job.max_retries = call.max_retries.value_or(options_.retry.max_retries);
  job.done = [this, id, mode, admitted, on_callback_thread, permit = std::move(permit),
              service_name = job.service, done = std::move(done)](detail::JobOutcome&& outcome) mutable {
    if (!outcome.error && outcome.first_sent != SteadyTime{}) {
      timings_.Record(service_name, detail::TimedStage::kRoundTrip, outcome.answered - outcome.first_sent);
    }
    auto finish = [this, id, mode, admitted, on_callback_thread, permit = std::move(permit), service_name,
                   done = std::move(done), outcome = std::move(outcome)]() mutable {
      detail::RawResult result;
      result.job_id = id;
      if (outcome.error) {
        result.error = std::move(outcome.error);
        if (result.error->code() == ErrorCode::kUnavailable) {
          ReportFailure(id, service_name, "round_trip", *result.error);  // no broker saw this job
        }
      } else if (mode == ReplyMode::kCall) {
        try {
          const SteadyTime open_start = SteadyClock::now();
          // PROTOCOL.md §5.1: the reply must be a mode-2 envelope for this job and service,
          // and sealed, since the request was: an unsealed or reflected "reply" could be
          // forged by anyone on the path. (A stored job's kept reply is opened the same way.)
          result.plaintext =
              detail::OpenReply(*keyring_, id, service_name, outcome.reply_envelope, outcome.reply_payload);
          timings_.Record(service_name, detail::TimedStage::kOpen, SteadyClock::now() - open_start);
        } catch (const Error& error) {
          result.error = error;
          ReportFailure(id, service_name, "open", error);  // only the client sees this one
        }
      }
      timings_.RecordOutcome(service_name, !result.error);
      result.elapsed = duration_cast<microseconds>(SteadyClock::now() - admitted);
      // A future's slot frees as it is satisfied (so a caller woken by it finds the slot
      // free); a callback's only once the callback has returned (so slow callbacks push
      // back on submitters instead of queueing without bound).
      if (!on_callback_thread) permit.reset();
      done(std::move(result));
      permit.reset();
    };
    if (on_callback_thread) {
      callbacks_.Post(std::move(finish));
    } else {
      finish();
    }
  };
  Enqueue(std::move(job));
}

std::future<detail::QueryOutcome> Client::Impl::StartQuery(detail::QueryKind kind, std::string_view name,
                                                           std::size_t broker, std::string body,
                                                           std::optional<milliseconds> timeout) {
  auto promise = std::make_shared<std::promise<detail::QueryOutcome>>();
  std::future<detail::QueryOutcome> future = promise->get_future();
  detail::QueryRequest query;
  query.kind = kind;
  query.name = std::string(name);
  query.body = std::move(body);
  query.broker = broker;
  query.deadline = SteadyClock::now() + timeout.value_or(options_.failover_timeout);
  query.done = [promise](detail::QueryOutcome&& outcome) { promise->set_value(std::move(outcome)); };
  Enqueue(std::move(query));
  return future;
}

struct Client::Impl::JobLookupState {
  JobLookupState(const JobId& id, std::vector<std::string> endpoints, milliseconds wait, SteadyTime started,
                 std::function<void(JobLookupResult&&)> on_done)
      : lookup(id, std::move(endpoints), wait, started), done(std::move(on_done)) {}
  std::mutex mutex;  // answers arrive on the I/O thread, cancellations on any
  detail::JobLookup lookup;
  std::function<void(JobLookupResult&&)> done;  // empty once called
};

void Client::Impl::LookupJob(const JobId& id, milliseconds wait, std::function<void(JobLookupResult&&)> done) {
  auto state = std::make_shared<JobLookupState>(id, options_.brokers, wait, SteadyClock::now(), std::move(done));
  if (state->lookup.done()) {  // no broker configured
    JobLookupResult result;
    result.error = state->lookup.error();
    state->done(std::move(result));
    return;
  }
  // Every broker at once: ids are unique, so at most one holds the job, and the others say
  // not_found at once; a broker marked down is answered unavailable by the core at once.
  for (std::size_t broker = 0; broker < options_.brokers.size(); ++broker) AskForJob(state, broker, wait);
}

void Client::Impl::AskForJob(const std::shared_ptr<JobLookupState>& state, std::size_t broker, milliseconds wait) {
  detail::QueryRequest query =
      detail::JobQueryRequest(state->lookup.id(), wait, broker, options_.failover_timeout, SteadyClock::now());
  const milliseconds asked = std::min(wait, milliseconds(static_cast<std::int64_t>(wire::kMaxJobWaitMs)));
  query.done = [this, state, broker, asked](detail::QueryOutcome&& outcome) {
    std::unique_lock lock(state->mutex);
    const detail::JobLookup::Step step = state->lookup.OnAnswer(broker, outcome, asked, SteadyClock::now());
    if (step.kind == detail::JobLookup::Step::Kind::kAskAgain) {
      lock.unlock();
      AskForJob(state, step.broker, step.wait);
      return;
    }
    if (step.kind != detail::JobLookup::Step::Kind::kDone || !state->done) return;
    JobLookupResult result;
    if (state->lookup.record()) {
      result.record = state->lookup.TakeRecord();
      result.broker = options_.brokers[state->lookup.record_broker()];
    } else {
      result.error = state->lookup.error();
    }
    auto done = std::move(state->done);
    state->done = nullptr;
    lock.unlock();
    done(std::move(result));
  };
  Enqueue(std::move(query));
}

std::shared_ptr<void> Client::Impl::Admit(SteadyTime deadline, std::optional<Error>& error) {
  const OverflowPolicy policy = callbacks_.OnThisThread() ? OverflowPolicy::kFailFast : options_.overflow;
  switch (limiter_.Acquire(policy, deadline)) {
    case detail::InFlightLimiter::Admission::kAdmitted:
      return std::make_shared<Permit>(limiter_);
    case detail::InFlightLimiter::Admission::kFull:
      error = Error(ErrorCode::kBusy, "the client already has max_in_flight=" + std::to_string(options_.max_in_flight) +
                                          " jobs outstanding");
      break;
    case detail::InFlightLimiter::Admission::kTimedOut:
      error = Error(ErrorCode::kDeadlineExceeded, "no in-flight slot was freed in time (max_in_flight=" +
                                                      std::to_string(options_.max_in_flight) + ")");
      break;
    case detail::InFlightLimiter::Admission::kClosed:
      error = Error(ErrorCode::kCancelled, "the client is shutting down");
      break;
  }
  return nullptr;
}

// ---- Client --------------------------------------------------------------------------------

Client::Client(ClientOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}

Client::~Client() {
  // Stop first: completions still running on the I/O thread may use this object.
  impl_->Shutdown();
}

void Client::SubmitRaw(std::string_view service, std::string plaintext, nanoseconds encode_time,
                       const CallOptions& options, ReplyMode mode, bool on_callback_thread,
                       detail::RawCallback done) {
  impl_->SubmitJob(service, std::move(plaintext), encode_time, options, mode, on_callback_thread, std::move(done));
}

void Client::RecordStage(std::string_view service, detail::CodecStage stage, nanoseconds time) {
  impl_->Record(service, stage == detail::CodecStage::kEncode ? detail::TimedStage::kEncode : detail::TimedStage::kDecode,
                time);
}

namespace {

// Encodes a request, timing it. Throws: as EncodeValue.
std::optional<std::string> EncodeTimed(const Value& request, nanoseconds& took) {
  const SteadyTime start = SteadyClock::now();
  std::string bytes = EncodeValue(request);
  took = SteadyClock::now() - start;
  return bytes;
}

}  // namespace

std::future<Value> Client::Submit(std::string_view service, Value request, const CallOptions& options) {
  auto promise = std::make_shared<std::promise<Value>>();
  std::future<Value> future = promise->get_future();
  nanoseconds encode_time{0};
  std::optional<std::string> plaintext;
  try {
    plaintext = EncodeTimed(request, encode_time);
  } catch (...) {
    promise->set_exception(std::current_exception());
    return future;
  }
  SubmitRaw(service, std::move(*plaintext), encode_time, options, ReplyMode::kCall, false,
            [this, promise, name = std::string(service)](detail::RawResult&& raw) {
              if (raw.error) {
                promise->set_exception(std::make_exception_ptr(*raw.error));
                return;
              }
              try {
                const SteadyTime start = SteadyClock::now();
                Value reply = DecodeValue(raw.plaintext);
                impl_->Record(name, detail::TimedStage::kDecode, SteadyClock::now() - start);
                promise->set_value(std::move(reply));
              } catch (...) {
                promise->set_exception(std::current_exception());
              }
            });
  return future;
}

Value Client::Call(std::string_view service, Value request, const CallOptions& options) {
  return Submit(service, std::move(request), options).get();
}

namespace {

void RunCallback(const Callback& callback, courier::Result result) {
  try {
    callback(std::move(result));
  } catch (const std::exception& error) {
    spdlog::error("client: a completion callback threw: {}", error.what());
  } catch (...) {
    spdlog::error("client: a completion callback threw a non-standard exception");
  }
}

}  // namespace

void Client::Submit(std::string_view service, Value request, Callback callback, const CallOptions& options) {
  if (!callback) throw Error(ErrorCode::kBadRequest, "Client::Submit: the callback is empty");
  nanoseconds encode_time{0};
  std::optional<std::string> plaintext;
  try {
    plaintext = EncodeTimed(request, encode_time);
  } catch (const Error& error) {
    impl_->Post([callback, error] { RunCallback(callback, courier::Result(JobId{}, error, microseconds(0))); });
    return;
  }
  SubmitRaw(service, std::move(*plaintext), encode_time, options, ReplyMode::kCall, true,
            [this, callback = std::move(callback), name = std::string(service)](detail::RawResult&& raw) {
              if (raw.error) {
                RunCallback(callback, courier::Result(raw.job_id, std::move(*raw.error), raw.elapsed));
                return;
              }
              std::optional<courier::Result> result;
              try {
                const SteadyTime start = SteadyClock::now();
                Value reply = DecodeValue(raw.plaintext);
                impl_->Record(name, detail::TimedStage::kDecode, SteadyClock::now() - start);
                result.emplace(raw.job_id, std::move(reply), raw.elapsed);
              } catch (const Error& error) {
                result.emplace(raw.job_id, error, raw.elapsed);
              }
              RunCallback(callback, std::move(*result));
            });
}

std::vector<std::future<Value>> Client::SubmitBatch(std::string_view service, std::vector<Value> requests,
                                                    const CallOptions& options) {
  std::vector<std::future<Value>> futures;
  futures.reserve(requests.size());
  CallOptions each = options;
  for (std::size_t i = 0; i < requests.size(); ++i) {
    if (options.idempotency_key) each.idempotency_key = *options.idempotency_key + "/" + std::to_string(i);
    futures.push_back(Submit(service, std::move(requests[i]), each));
  }
  return futures;
}

JobId Client::SubmitAcknowledged(std::string_view service, std::string plaintext, nanoseconds encode_time,
                                 const CallOptions& options, ReplyMode mode) {
  auto promise = std::make_shared<std::promise<JobId>>();
  std::future<JobId> future = promise->get_future();
  SubmitRaw(service, std::move(plaintext), encode_time, options, mode, false, [promise](detail::RawResult&& raw) {
    if (raw.error) {
      promise->set_exception(std::make_exception_ptr(*raw.error));
    } else {
      promise->set_value(raw.job_id);
    }
  });
  return future.get();
}

void Client::SubmitAcknowledged(std::string_view service, const Value& request, Callback callback,
                                const CallOptions& options, ReplyMode mode) {
  nanoseconds encode_time{0};
  std::optional<std::string> plaintext;
  try {
    plaintext = EncodeTimed(request, encode_time);
  } catch (const Error& error) {
    impl_->Post([callback, error] { RunCallback(callback, courier::Result(JobId{}, error, microseconds(0))); });
    return;
  }
  SubmitRaw(service, std::move(*plaintext), encode_time, options, mode, true,
            [callback = std::move(callback)](detail::RawResult&& raw) {
              if (raw.error) {
                RunCallback(callback, courier::Result(raw.job_id, std::move(*raw.error), raw.elapsed));
              } else {
                RunCallback(callback, courier::Result(raw.job_id, Value(), raw.elapsed));
              }
            });
}

JobId Client::Send(std::string_view service, Value request, const CallOptions& options) {
  nanoseconds encode_time{0};
  std::optional<std::string> plaintext = EncodeTimed(request, encode_time);
  return SubmitAcknowledged(service, std::move(*plaintext), encode_time, options, ReplyMode::kSend);
}

void Client::Send(std::string_view service, Value request, Callback callback, const CallOptions& options) {
  if (!callback) throw Error(ErrorCode::kBadRequest, "Client::Send: the callback is empty");
  SubmitAcknowledged(service, request, std::move(callback), options, ReplyMode::kSend);
}

// ---- stored jobs ---------------------------------------------------------------------------

JobId Client::Enqueue(std::string_view service, Value request, const CallOptions& options) {
  nanoseconds encode_time{0};
  std::optional<std::string> plaintext = EncodeTimed(request, encode_time);
  return SubmitAcknowledged(service, std::move(*plaintext), encode_time, options, ReplyMode::kEnqueue);
}

void Client::Enqueue(std::string_view service, Value request, Callback callback, const CallOptions& options) {
  if (!callback) throw Error(ErrorCode::kBadRequest, "Client::Enqueue: the callback is empty");
  SubmitAcknowledged(service, request, std::move(callback), options, ReplyMode::kEnqueue);
}

namespace {

void CheckWait(milliseconds wait, std::string_view what) {
  if (wait < milliseconds(0)) throw Error(ErrorCode::kBadRequest, std::string(what) + ": the wait must not be negative");
}

}  // namespace

JobStatus Client::Job(const JobId& id, milliseconds wait) {
  CheckWait(wait, "Client::Job");
  auto promise = std::make_shared<std::promise<Impl::JobLookupResult>>();
  std::future<Impl::JobLookupResult> future = promise->get_future();
  impl_->LookupJob(id, wait, [promise](Impl::JobLookupResult&& result) { promise->set_value(std::move(result)); });
  Impl::JobLookupResult result = future.get();
  if (result.error) throw *result.error;
  // Opened here, on the caller's thread, not on the I/O thread.
  return detail::ToJobStatus(std::move(*result.record), std::move(result.broker), &impl_->keyring());
}

Value Client::Result(const JobId& id, milliseconds wait) { return detail::ResultOf(Job(id, wait), wait); }

void Client::ResultAsync(const JobId& id, milliseconds wait, Callback callback) {
  if (!callback) throw Error(ErrorCode::kBadRequest, "Client::ResultAsync: the callback is empty");
  const SteadyTime started = SteadyClock::now();
  auto fail = [&](const Error& error) {
    impl_->Post([callback, id, error] { RunCallback(callback, courier::Result(id, error, microseconds(0))); });
  };
  if (wait < milliseconds(0)) return fail(Error(ErrorCode::kBadRequest, "Client::ResultAsync: the wait must not be negative"));
  // Holds an in-flight slot like a job, so pending lookups stay bounded too.
  std::optional<Error> refused;
  std::shared_ptr<void> permit = impl_->Admit(started + wait + impl_->options().failover_timeout, refused);
  if (!permit) return fail(*refused);
  impl_->LookupJob(id, wait, [this, id, wait, started, permit, callback = std::move(callback)](
                                 Impl::JobLookupResult&& found) mutable {
    impl_->Post([this, id, wait, started, permit = std::move(permit), callback = std::move(callback),
                 found = std::move(found)]() mutable {
      std::optional<courier::Result> result;
      try {
        if (found.error) throw *found.error;
        Value value = detail::ResultOf(
            detail::ToJobStatus(std::move(*found.record), std::move(found.broker), &impl_->keyring()), wait);
        result.emplace(id, std::move(value), duration_cast<microseconds>(SteadyClock::now() - started));
      } catch (const Error& error) {
        result.emplace(id, error, duration_cast<microseconds>(SteadyClock::now() - started));
      }
      RunCallback(callback, std::move(*result));
      permit.reset();
    });
  });
}

std::vector<JobStatus> Client::Jobs(const JobsFilter& filter) {
  if (filter.limit == 0) throw Error(ErrorCode::kBadRequest, "JobsFilter::limit must be at least 1");
  const auto& brokers = impl_->options().brokers;
  std::vector<detail::JobsCursor> cursors(brokers.size());
  for (std::size_t i = 0; i < brokers.size(); ++i) cursors[i].broker = brokers[i];
  // One page from every broker at once, then the next pages of those that have more.
  while (true) {
    std::vector<std::pair<std::size_t, std::future<detail::QueryOutcome>>> pending;
    for (std::size_t i = 0; i < cursors.size(); ++i) {
      if (std::optional<std::string> body = detail::NextJobsQuery(cursors[i], filter)) {
        pending.emplace_back(i, impl_->StartQuery(detail::QueryKind::kQuery, wire::kJobsQueryName, i, std::move(*body)));
      }
    }
    if (pending.empty()) break;
    for (auto& [i, answer] : pending) detail::AddJobsAnswer(cursors[i], answer.get(), filter);
  }
  std::vector<JobStatus> rows = detail::MergeJobs(cursors, filter.limit);  // throws if none answered
  for (const detail::JobsCursor& cursor : cursors) {
    if (cursor.error) spdlog::warn("client: {} did not list its stored jobs: {}", cursor.broker, cursor.error->what());
  }
  return rows;
}

// ---- discovery -----------------------------------------------------------------------------

namespace {

[[noreturn]] void Rethrow(const detail::QueryOutcome& outcome) { throw *outcome.error; }

}  // namespace

Value Client::Query(std::string_view name) {
  detail::QueryOutcome outcome = impl_->RunQuery(detail::QueryKind::kQuery, name, detail::kNoBroker);
  if (outcome.error) Rethrow(outcome);
  return detail::DecodeQueryReply(outcome.body);
}

std::vector<BrokerAnswer> Client::QueryAll(std::string_view name) {
  const auto& brokers = impl_->options().brokers;
  // Ask every broker at once: the slowest bounds the wait, not the sum.
  std::vector<std::future<detail::QueryOutcome>> pending;
  for (std::size_t i = 0; i < brokers.size(); ++i) {
    pending.push_back(impl_->StartQuery(detail::QueryKind::kQuery, name, i));
  }
  std::vector<BrokerAnswer> answers(brokers.size());
  for (std::size_t i = 0; i < brokers.size(); ++i) {
    answers[i].broker = brokers[i];
    detail::QueryOutcome outcome = pending[i].get();
    if (outcome.error) {
      answers[i].error = *outcome.error;
      continue;
    }
    try {
      answers[i].result = detail::DecodeQueryReply(outcome.body);
    } catch (const Error& error) {
      answers[i].error = error;
    }
  }
  return answers;
}

std::vector<BrokerPing> Client::Ping() {
  const auto& brokers = impl_->options().brokers;
  std::vector<std::future<detail::QueryOutcome>> pending;
  for (std::size_t i = 0; i < brokers.size(); ++i) {
    pending.push_back(impl_->StartQuery(detail::QueryKind::kPing, {}, i));
  }
  std::vector<BrokerPing> pings(brokers.size());
  for (std::size_t i = 0; i < brokers.size(); ++i) {
    pings[i].broker = brokers[i];
    detail::QueryOutcome outcome = pending[i].get();
    if (outcome.error) {
      pings[i].error = *outcome.error;
    } else {
      pings[i].round_trip = duration_cast<microseconds>(outcome.answered - outcome.sent);
    }
  }
  return pings;
}

std::vector<ServiceInfo> Client::Services() {
  detail::QueryOutcome outcome = impl_->RunQuery(detail::QueryKind::kQuery, "services", detail::kNoBroker);
  if (outcome.error) Rethrow(outcome);
  return detail::ParseServices(detail::DecodeQueryReply(outcome.body), impl_->options().brokers[outcome.broker]);
}

std::vector<WorkerInfo> Client::Workers() {
  detail::QueryOutcome outcome = impl_->RunQuery(detail::QueryKind::kQuery, "workers", detail::kNoBroker);
  if (outcome.error) Rethrow(outcome);
  return detail::ParseWorkers(detail::DecodeQueryReply(outcome.body), impl_->options().brokers[outcome.broker]);
}

namespace {

// Returns: the answers that came back. Throws: the first error if none did.
std::vector<BrokerAnswer> Answered(std::vector<BrokerAnswer> answers) {
  std::vector<BrokerAnswer> ok;
  for (auto& answer : answers) {
    if (answer.result) ok.push_back(std::move(answer));
  }
  if (ok.empty()) {
    for (auto& answer : answers) {
      if (answer.error) throw *answer.error;
    }
    throw Error(ErrorCode::kUnavailable, "no broker answered");
  }
  return ok;
}

}  // namespace

std::vector<ServiceInfo> Client::ClusterServices() {
  std::vector<std::vector<ServiceInfo>> per_broker;
  std::vector<std::optional<std::vector<WorkerInfo>>> workers;  // to count each worker once
  // Both questions at once: a broker that is down costs one failover_timeout, not two.
  std::future<std::vector<BrokerAnswer>> worker_answers =
      std::async(std::launch::async, [this] { return QueryAll("workers"); });
  const std::vector<BrokerAnswer> service_answers = QueryAll("services");
  std::map<std::string, std::vector<WorkerInfo>> listed;
  for (const auto& answer : worker_answers.get()) {
    if (!answer.result) continue;
    try {
      listed.emplace(answer.broker, detail::ParseWorkers(*answer.result, answer.broker));
    } catch (const Error&) {
      // that broker's own count is used instead
    }
  }
  for (const auto& answer : Answered(service_answers)) {
    per_broker.push_back(detail::ParseServices(*answer.result, answer.broker));
    const auto found = listed.find(answer.broker);
    workers.push_back(found == listed.end() ? std::nullopt : std::optional(std::move(found->second)));
  }
  return detail::MergeServices(per_broker, workers);
}

std::vector<WorkerInfo> Client::ClusterWorkers() {
  std::vector<std::vector<WorkerInfo>> per_broker;
  for (const auto& answer : Answered(QueryAll("workers"))) {
    per_broker.push_back(detail::ParseWorkers(*answer.result, answer.broker));
  }
  return detail::MergeWorkers(per_broker);
}

bool Client::ServiceAvailable(std::string_view service) {
  for (const ServiceInfo& info : Services()) {
    if (info.name == service) return info.workers > 0;
  }
  return false;
}

// ---- accessors -----------------------------------------------------------------------------

std::vector<BrokerStatus> Client::brokers() const { return impl_->Brokers(); }
std::vector<ServiceTimings> Client::timings() const { return impl_->Timings(); }
ClientCounters Client::counters() const { return impl_->Counters(); }
std::size_t Client::in_flight() const { return impl_->InFlight(); }
const ClientOptions& Client::options() const { return impl_->options(); }

}  // namespace courier
