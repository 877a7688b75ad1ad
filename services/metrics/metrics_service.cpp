#include "metrics_service.hpp"

#include <httplib.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <vector>

#include <spdlog/spdlog.h>

#include "dashboard_server.hpp"
#include "exposition.hpp"
#include "prometheus/http_address.hpp"
#include "reporting/report_codec.hpp"

namespace courier::metrics {
namespace {

prometheus::HttpAddress ParseAddress(const ConfigSection& config, const std::string& text) {
  try {
    return prometheus::ParseHttpAddress(text);
  } catch (const Error& error) {
    throw Error(ErrorCode::kConfig, config.Describe("http", error.what()));
  }
}

// httplib's task queue, bounded by `max_threads` and started lazily: a connection gets a
// thread of its own at once while fewer than `max_threads` are busy (so connections that
// never finish their request hold a thread each until the read timeout, and cannot keep
// /metrics from a thread of its own); beyond that, connections wait in order. Threads are
// kept once started (at most max_threads) and joined at shutdown.
class ConnectionPool final : public httplib::TaskQueue {
 public:
  explicit ConnectionPool(std::size_t max_threads) : max_threads_(max_threads) {}
  ~ConnectionPool() override { shutdown(); }

  void enqueue(std::function<void()> fn) override {
    std::lock_guard lock(mutex_);
    if (stopping_) return;
    jobs_.push_back(std::move(fn));
    if (idle_ < jobs_.size() && threads_.size() < max_threads_) {
      threads_.emplace_back([this] { Run(); });
    } else {
      ready_.notify_one();
    }
  }

  void shutdown() override {
    std::vector<std::thread> threads;
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
      threads.swap(threads_);
    }
    ready_.notify_all();
    for (std::thread& thread : threads) thread.join();
  }

 private:
  void Run() {
    std::unique_lock lock(mutex_);
    for (;;) {
      ++idle_;
      ready_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
      --idle_;
      if (jobs_.empty()) return;  // stopping, nothing left
      std::function<void()> job = std::move(jobs_.front());
      jobs_.pop_front();
      lock.unlock();
      job();
      lock.lock();
    }
  }

  const std::size_t max_threads_;
  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<std::function<void()>> jobs_;
  std::vector<std::thread> threads_;
  std::size_t idle_ = 0;
  bool stopping_ = false;
};

}  // namespace

MetricsService::MetricsService(const ConfigSection& config) {
  const std::string http = config.GetString("http", "127.0.0.1:9464");
  const auto max_series = static_cast<std::size_t>(
      config.GetInt("max_series", static_cast<std::int64_t>(StageTable::kDefaultMaxSeries), 1, 1'000'000));
  const auto max_connections = static_cast<std::size_t>(
      config.GetInt("http_max_connections", static_cast<std::int64_t>(kDefaultHttpMaxConnections), 2, 100000));
  const std::chrono::milliseconds timeout =
      config.GetDuration("http_timeout", kDefaultHttpTimeout, std::chrono::milliseconds(100), std::chrono::minutes(10));
  DashboardOptions dashboard = ReadDashboardOptions(config);
  config.RejectUnknownKeys();
  table_ = std::make_unique<StageTable>(max_series);
  const bool dashboard_own_address = !dashboard.http.empty();
  // Nowhere to serve it, no dashboard (and no questions to the brokers).
  if (dashboard.enabled && (dashboard_own_address || !http.empty())) dashboard_ = std::make_unique<Dashboard>(std::move(dashboard), *table_);
  if (dashboard_ && dashboard_own_address) {
    dashboard_address_ = dashboard_->Listen();
    spdlog::info("metrics: dashboard at http://{}/", dashboard_address_);
  }
  if (http.empty()) {
    spdlog::info("metrics: HTTP is off");
    return;
  }
  const prometheus::HttpAddress address = ParseAddress(config, http);
  server_ = std::make_unique<httplib::Server>();
  server_->new_task_queue = [max_connections] { return new ConnectionPool(max_connections); };  // httplib owns it
  server_->set_read_timeout(timeout);
  server_->set_write_timeout(timeout);
  server_->set_keep_alive_timeout(std::max<time_t>(1, static_cast<time_t>(timeout.count() / 1000)));
  server_->set_keep_alive_max_count(100);
  server_->set_payload_max_length(64 * 1024);  // only GETs are served
  StageTable* table = table_.get();
  server_->Get("/metrics", [table](const httplib::Request&, httplib::Response& response) {
    response.set_content(PrometheusText(*table, Clock::now()), "text/plain; version=0.0.4; charset=utf-8");
  });
  server_->Get("/metrics.json", [table](const httplib::Request&, httplib::Response& response) {
    response.set_content(ToJson(StatsValue(*table, Clock::now()), 2) + "\n", "application/json");
  });
  if (dashboard_ && dashboard_address_.empty()) dashboard_->Mount(*server_, address.host);
  int port = address.port;
  if (port == 0) {
    port = server_->bind_to_any_port(address.host);
  } else if (!server_->bind_to_port(address.host, port)) {
    port = -1;
  }
  if (port <= 0) {
    throw Error(ErrorCode::kConfig, config.Describe("http", "cannot listen on " + http + " (in use or not local?)"));
  }
  http_address_ = prometheus::FormatHttpAddress(address.host, port);
  server_thread_ = std::thread([server = server_.get()] { server->listen_after_bind(); });
  // stop() is a no-op until the server runs: wait for it (bounded), so destruction never hangs.
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!server_->is_running() && std::chrono::steady_clock::now() < until) std::this_thread::yield();
  spdlog::info("metrics: serving http://{}/metrics and /metrics.json", http_address_);
  if (dashboard_ && dashboard_address_.empty()) {
    dashboard_address_ = http_address_;
    spdlog::info("metrics: dashboard at http://{}/", dashboard_address_);
  }
}

MetricsService::~MetricsService() {
  if (server_) server_->stop();
  if (server_thread_.joinable()) server_thread_.join();
}

Value MetricsService::Handle(const Value& request, const JobContext& job) {
  if (!request.IsMap()) throw Error(ErrorCode::kInvalidPayload, "expected a map: a metrics report or {\"op\": ...}");
  if (request.Find("stages") != nullptr) {
    detail::MetricsReport report;
    detail::ReportVerdict verdict;
    try {
      report = detail::DecodeMetricsReport(request);
      verdict = detail::CheckMetricsReport(report);
    } catch (const Error& e) {
      table_->CountRejected(1, 0);
      if (const auto held = log_gate_.Allow()) {
        spdlog::warn("metrics: refused a report (job {}): {} ({} more garbage lines held back)", job.job_id().Hex(),
                     e.what(), *held);
      }
      throw;
    }
    if (verdict.dropped == 0) return Value::Object({{"added", Value(table_->Add(job.job_id(), report, Clock::now()))}});
    table_->CountRejected(0, verdict.dropped);
    if (const auto held = log_gate_.Allow()) {
      spdlog::warn("metrics: dropped a stage entry or more ({}) of a report from {} {} pid {} (job {}): {} ({} more "
                   "garbage lines held back)",
                   verdict.dropped, report.process, report.host, report.pid, job.job_id().Hex(), verdict.problem,
                   *held);
    }
    // A report with nothing plausible left adds nothing (not even its reporter).
    const bool added = !report.stages.empty() && table_->Add(job.job_id(), report, Clock::now());
    return Value::Object({{"added", Value(added)},
                          {"rejected_stages", Value(static_cast<std::uint64_t>(verdict.dropped))},
                          {"problem", Value(verdict.problem)}});
  }
  const Value* op = request.Find("op");
  if (op == nullptr || !op->IsString()) {
    throw Error(ErrorCode::kInvalidPayload, "expected \"stages\" (a metrics report) or \"op\" (a query)");
  }
  if (op->AsString() == "stats") return StatsValue(*table_, Clock::now());
  if (op->AsString() == "prometheus") return Value::Object({{"text", Value(PrometheusText(*table_, Clock::now()))}});
  throw Error(ErrorCode::kInvalidPayload, "unknown op \"" + op->AsString() + "\" (stats, prometheus)");
}

}  // namespace courier::metrics
