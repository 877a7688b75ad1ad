// ErrorReportSender and MetricsReporter: actor threads over ReportChannel.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <optional>

#include <spdlog/spdlog.h>

#include "actor.hpp"
#include "courier/log.hpp"
#include "courier/reporting.hpp"
#include "protocol.hpp"
#include "report_buffer.hpp"
#include "report_channel.hpp"
#include "report_codec.hpp"
#include "stage_delta.hpp"

namespace courier {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

namespace {

void Validate(const ReporterOptions& options) {
  if (options.brokers.empty()) throw Error(ErrorCode::kConfig, "a reporter needs at least one broker");
  if (options.buffer_limit == 0 || options.batch_limit == 0 || options.batch_bytes == 0) {
    throw Error(ErrorCode::kConfig, "reporter buffer_limit, batch_limit and batch_bytes must be positive");
  }
  if (options.flush_interval.count() <= 0 || options.metrics_interval.count() <= 0 ||
      options.accept_timeout.count() <= 0 || options.retry_initial.count() <= 0 ||
      options.retry_max < options.retry_initial) {
    throw Error(ErrorCode::kConfig, "reporter intervals must be positive (and retry_max >= retry_initial)");
  }
}

std::string DefaultInstance(const std::string& configured) {
  if (!configured.empty()) return configured;
  return detail::LocalHostName() + ":" + std::to_string(::getpid());
}

detail::ChannelOptions ChannelFor(const ReporterOptions& options, std::string_view service) {
  detail::ChannelOptions channel;
  channel.brokers = options.brokers;
  channel.service = std::string(service);
  channel.keyring = options.keyring;
  channel.curve = options.curve;
  channel.accept_timeout = options.accept_timeout;
  channel.retry_initial = options.retry_initial;
  channel.retry_max = options.retry_max;
  return channel;
}

int PollTimeout(Clock::time_point now, Clock::time_point wake) {
  if (wake <= now) return 0;
  const auto left = std::chrono::duration_cast<milliseconds>(wake - now).count() + 1;
  // At most 100 ms, so a Flush() from another thread is noticed promptly.
  return static_cast<int>(std::min<std::int64_t>(left, 100));
}

// Polls the pipe and the channel's sockets. Returns: true if the pipe said $TERM.
bool PollOnce(zmq::socket_t& pipe, detail::ReportChannel& channel, int timeout_ms) {
  std::vector<zmq::pollitem_t> items;
  items.push_back({pipe.handle(), 0, ZMQ_POLLIN, 0});
  for (const zmq::pollitem_t& item : channel.poll_items()) items.push_back(item);
  zmq::poll(items.data(), items.size(), std::chrono::milliseconds(timeout_ms));
  bool term = false;
  if (items[0].revents & ZMQ_POLLIN) {
    zmq::message_t message;
    while (pipe.recv(message, zmq::recv_flags::dontwait)) {
      if (message.to_string_view() == detail::kActorTerm) term = true;
    }
  }
  return term;
}

}  // namespace

// ---- ErrorReportSender ---------------------------------------------------------------

struct ErrorReportSender::Impl {
  explicit Impl(ReporterOptions opts)
      : options(std::move(opts)), instance(DefaultInstance(options.instance)), buffer(options.buffer_limit) {}

  void Run(zmq::context_t& context, zmq::socket_t& pipe);
  void Notify() {
    std::lock_guard lock(mutex);
    changed.notify_all();
  }

  ReporterOptions options;
  const std::string host = detail::LocalHostName();
  const std::uint64_t pid = static_cast<std::uint64_t>(::getpid());
  const std::string instance;
  detail::ReportBuffer buffer;
  std::atomic<std::uint64_t> reported{0};
  std::atomic<std::uint64_t> sent{0};
  std::atomic<std::uint64_t> batches{0};
  std::atomic<std::uint64_t> retries{0};
  std::atomic<std::size_t> in_flight{0};
  std::atomic<bool> flush_requested{false};
  std::mutex mutex;
  std::condition_variable changed;
  std::unique_ptr<detail::Actor> actor;  // last: stopped before the rest is destroyed
};

void ErrorReportSender::Impl::Run(zmq::context_t& context, zmq::socket_t& pipe) {
  detail::ReportChannel channel(context, ChannelFor(options, detail::kErrorSinkService));
  RateLimiter limiter(5, std::chrono::seconds(10));
  Clock::time_point next_flush = Clock::now() + options.flush_interval;
  bool stopping = false;
  Clock::time_point stop_deadline{};
  std::size_t batch_reports = 0;
  std::uint64_t batch_dropped = 0;
  // The batch in flight's services and Report() times, for options.delivered.
  std::vector<std::pair<std::string, Clock::time_point>> batch_taken;
  while (true) {
    Clock::time_point now = Clock::now();
    if (!channel.busy()) {
      const bool due = now >= next_flush || buffer.size() >= options.batch_limit || stopping ||
                       flush_requested.exchange(false);
      if (due && (buffer.size() > 0 || buffer.pending_dropped() > 0)) {
        detail::ReportBuffer::Batch taken = buffer.Take(options.batch_limit, options.batch_bytes);
        batch_reports = taken.reports.size();
        batch_dropped = taken.dropped;
        batch_taken.clear();
        if (options.delivered) {
          for (std::size_t i = 0; i < taken.reports.size(); ++i) {
            batch_taken.emplace_back(taken.reports[i].service, taken.pushed_at[i]);
          }
        }
        detail::ErrorBatch batch{std::move(taken.reports), taken.dropped, options.reporter, host, pid, instance};
        try {
          channel.Start(detail::EncodeErrorBatch(batch), options.error_deadline, now);
          in_flight = batch_reports;
        } catch (const std::exception& e) {
          buffer.AddDropped(batch_reports, batch_dropped);
          if (limiter.Allow()) spdlog::warn("error reports: cannot build a batch of {}: {}", batch_reports, e.what());
          Notify();
        }
      }
      if (due) next_flush = now + options.flush_interval;
    }
    if (stopping && !channel.busy() && buffer.size() == 0 && buffer.pending_dropped() == 0) return;
    if (stopping && now >= stop_deadline) {
      const std::size_t lost = buffer.size() + in_flight.load();
      if (lost > 0) spdlog::warn("error reports: {} reports not delivered before shutdown", lost);
      return;
    }
    Clock::time_point wake = std::min(next_flush, channel.next_timer());
    if (stopping) wake = std::min(wake, stop_deadline);
    if (PollOnce(pipe, channel, PollTimeout(now, wake))) {
      stopping = true;
      stop_deadline = Clock::now() + options.stop_timeout;
    }
    if (std::optional<detail::ReportChannel::Outcome> outcome = channel.Process(Clock::now())) {
      if (outcome->accepted) {
        const Clock::time_point accepted_at = Clock::now();
        for (const auto& [service, pushed_at] : batch_taken) {
          try {
            options.delivered(service, accepted_at - pushed_at);
          } catch (...) {
            // A timing lost; the reports were delivered all the same.
          }
        }
        sent += batch_reports;
        ++batches;
      } else {
        buffer.AddDropped(batch_reports, batch_dropped);
        if (limiter.Allow()) {
          spdlog::warn("error reports: a batch of {} was refused ({}: {}); counted as dropped", batch_reports,
                       ToString(outcome->code), outcome->message);
        }
      }
      in_flight = 0;
      batch_reports = 0;
      batch_dropped = 0;
      batch_taken.clear();
      Notify();
    }
    retries = channel.retries();
  }
}

ErrorReportSender::ErrorReportSender(ReporterOptions options) {
  Validate(options);
  options.curve = options.curve.Resolved();  // a bad key file fails here, not on the actor
  impl_ = std::make_unique<Impl>(std::move(options));
  Impl* impl = impl_.get();
  impl_->actor = std::make_unique<detail::Actor>(
      "error-reports", [impl](zmq::context_t& context, zmq::socket_t& pipe) { impl->Run(context, pipe); });
}

ErrorReportSender::~ErrorReportSender() {
  if (impl_) impl_->actor.reset();
}

bool ErrorReportSender::Report(ErrorReport report) noexcept {
  impl_->reported.fetch_add(1, std::memory_order_relaxed);
  try {
    if (report.time_ms == 0) report.time_ms = NowUnixMs();
    if (report.reporter.empty()) report.reporter = impl_->options.reporter;
    if (report.host.empty()) report.host = impl_->host;
    if (report.pid == 0) report.pid = impl_->pid;
    if (report.instance.empty()) report.instance = impl_->instance;
    if (report.message.size() > detail::kMaxMessageBytes) report.message.resize(detail::kMaxMessageBytes);
  } catch (...) {
    impl_->buffer.AddDropped(1);
    return false;
  }
  return impl_->buffer.Push(std::move(report));
}

ReporterCounters ErrorReportSender::counters() const {
  ReporterCounters counters;
  counters.reported = impl_->reported.load();
  counters.sent = impl_->sent.load();
  counters.dropped = impl_->buffer.total_dropped();
  counters.batches = impl_->batches.load();
  counters.retries = impl_->retries.load();
  counters.buffered = impl_->buffer.size() + impl_->in_flight.load();
  return counters;
}

bool ErrorReportSender::Flush(std::chrono::milliseconds timeout) {
  const std::uint64_t target = impl_->reported.load();
  impl_->flush_requested = true;
  const auto deadline = Clock::now() + timeout;
  std::unique_lock lock(impl_->mutex);
  while (true) {
    if (impl_->sent.load() + impl_->buffer.total_dropped() >= target && impl_->in_flight.load() == 0 &&
        impl_->buffer.size() == 0) {
      return true;
    }
    if (Clock::now() >= deadline) return false;
    impl_->changed.wait_for(lock, std::chrono::milliseconds(10));
  }
}

const ReporterOptions& ErrorReportSender::options() const { return impl_->options; }

// ---- MetricsReporter -----------------------------------------------------------------

struct MetricsReporter::Impl {
  Impl(ReporterOptions opts, StageSnapshotFn fn)
      : options(std::move(opts)), snapshot(std::move(fn)), instance(DefaultInstance(options.instance)) {}

  void Run(zmq::context_t& context, zmq::socket_t& pipe);

  ReporterOptions options;
  StageSnapshotFn snapshot;
  const std::string host = detail::LocalHostName();
  const std::uint64_t pid = static_cast<std::uint64_t>(::getpid());
  const std::string instance;
  std::atomic<std::uint64_t> reported{0};
  std::atomic<std::uint64_t> sent{0};
  std::atomic<std::uint64_t> dropped{0};
  std::atomic<std::uint64_t> retries{0};
  std::atomic<std::uint64_t> flush_requested{0};  // generation asked for by Flush
  std::atomic<std::uint64_t> flush_done{0};       // generation whose snapshot was delivered
  std::mutex mutex;
  std::condition_variable changed;
  std::unique_ptr<detail::Actor> actor;
};

void MetricsReporter::Impl::Run(zmq::context_t& context, zmq::socket_t& pipe) {
  detail::ReportChannel channel(context, ChannelFor(options, detail::kMetricsService));
  RateLimiter limiter(5, std::chrono::seconds(10));
  detail::StageDelta delta;
  Clock::time_point baseline_at = Clock::now();
  Clock::time_point next_tick = baseline_at + options.metrics_interval;
  std::vector<StageTotals> in_flight_snapshot;
  Clock::time_point in_flight_at{};
  std::uint64_t in_flight_generation = 0;
  bool stopping = false;
  bool final_pending = false;
  std::uint64_t attempted = 0;  // the last flush generation a snapshot was taken for
  Clock::time_point stop_deadline{};
  auto done = [&](std::uint64_t generation) {
    std::lock_guard lock(mutex);
    if (generation > flush_done.load()) flush_done = generation;
    changed.notify_all();
  };
  while (true) {
    Clock::time_point now = Clock::now();
    const std::uint64_t wanted = flush_requested.load();
    if (!channel.busy() && (now >= next_tick || final_pending || wanted > attempted)) {
      final_pending = false;
      attempted = wanted;
      while (next_tick <= now) next_tick += options.metrics_interval;
      std::vector<StageTotals> current;
      bool have = true;
      try {
        current = snapshot();
      } catch (const std::exception& e) {
        have = false;
        if (limiter.Allow()) spdlog::warn("metrics: snapshot failed: {}", e.what());
      }
      if (have) {
        std::vector<detail::StageInterval> stages = delta.Compute(current);
        if (stages.empty()) {
          delta.Commit(std::move(current));
          baseline_at = now;
          done(wanted);
        } else {
          detail::MetricsReport report;
          report.process = options.reporter;
          report.host = host;
          report.pid = pid;
          report.instance = instance;
          report.interval_ms = static_cast<std::uint64_t>(
              std::chrono::duration_cast<milliseconds>(now - baseline_at).count());
          report.stages = std::move(stages);
          try {
            channel.Start(detail::EncodeMetricsReport(report), options.metrics_deadline, now);
            in_flight_snapshot = std::move(current);
            in_flight_at = now;
            in_flight_generation = wanted;
            ++reported;
          } catch (const std::exception& e) {
            if (limiter.Allow()) spdlog::warn("metrics: cannot build a report: {}", e.what());
          }
        }
      }
    }
    if (stopping && !channel.busy() && !final_pending) return;
    if (stopping && now >= stop_deadline) {
      if (channel.busy()) spdlog::warn("metrics: last report not delivered before shutdown");
      return;
    }
    Clock::time_point wake = std::min(next_tick, channel.next_timer());
    if (stopping) wake = std::min(wake, stop_deadline);
    if (flush_requested.load() > attempted && !channel.busy()) wake = now;
    if (PollOnce(pipe, channel, PollTimeout(now, wake))) {
      stopping = true;
      final_pending = true;
      stop_deadline = Clock::now() + options.stop_timeout;
    }
    if (std::optional<detail::ReportChannel::Outcome> outcome = channel.Process(Clock::now())) {
      if (outcome->accepted) {
        delta.Commit(std::move(in_flight_snapshot));
        baseline_at = in_flight_at;
        ++sent;
        done(in_flight_generation);
      } else {
        // Nothing is lost: the baseline stays, so the next report covers this interval too.
        ++dropped;
        if (limiter.Allow()) {
          spdlog::warn("metrics: a report was refused ({}: {}); the next one covers its interval",
                       ToString(outcome->code), outcome->message);
        }
      }
      in_flight_snapshot.clear();
    }
    retries = channel.retries();
  }
}

MetricsReporter::MetricsReporter(ReporterOptions options, StageSnapshotFn snapshot) {
  Validate(options);
  if (!snapshot) throw Error(ErrorCode::kConfig, "MetricsReporter needs a snapshot provider");
  options.curve = options.curve.Resolved();
  impl_ = std::make_unique<Impl>(std::move(options), std::move(snapshot));
  Impl* impl = impl_.get();
  impl_->actor = std::make_unique<detail::Actor>(
      "metrics-reports", [impl](zmq::context_t& context, zmq::socket_t& pipe) { impl->Run(context, pipe); });
}

MetricsReporter::~MetricsReporter() {
  if (impl_) impl_->actor.reset();
}

ReporterCounters MetricsReporter::counters() const {
  ReporterCounters counters;
  counters.reported = impl_->reported.load();
  counters.sent = impl_->sent.load();
  counters.dropped = impl_->dropped.load();
  counters.batches = impl_->sent.load();
  counters.retries = impl_->retries.load();
  counters.buffered = counters.reported > counters.sent + counters.dropped ? 1 : 0;
  return counters;
}

bool MetricsReporter::Flush(std::chrono::milliseconds timeout) {
  const std::uint64_t generation = impl_->flush_requested.fetch_add(1) + 1;
  const auto deadline = Clock::now() + timeout;
  std::unique_lock lock(impl_->mutex);
  while (impl_->flush_done.load() < generation) {
    if (Clock::now() >= deadline) return false;
    impl_->changed.wait_for(lock, std::chrono::milliseconds(10));
  }
  return true;
}

}  // namespace courier
