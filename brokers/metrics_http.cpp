#include "metrics_http.hpp"

#include <httplib.h>

#include "courier/error.hpp"
#include "prometheus/http_address.hpp"
#include "prometheus/text_format.hpp"

namespace courier::broker {

HealthAnswer Health(std::optional<SteadyTime> taken, SteadyTime now, std::chrono::milliseconds stale_after) {
  if (!taken) return {503, "starting: the broker loop has not published yet\n"};
  const auto age = std::chrono::duration_cast<std::chrono::milliseconds>(now - *taken);
  if (age > stale_after) {
    return {503, "stale: the broker loop last answered " + std::to_string(age.count()) + " ms ago (limit " +
                     std::to_string(stale_after.count()) + " ms)\n"};
  }
  return {200, "ok\n"};
}

MetricsHttp::MetricsHttp(const std::string& address, std::chrono::milliseconds stale_after)
    : stale_after_(stale_after) {
  const prometheus::HttpAddress parsed = prometheus::ParseHttpAddress(address);
  server_ = std::make_unique<httplib::Server>();
  // Few threads: scrapes are rare and cheap; the broker's cores belong to its loop.
  server_->new_task_queue = [] { return new httplib::ThreadPool(4); };  // httplib owns it
  server_->set_read_timeout(std::chrono::seconds(5));
  server_->set_write_timeout(std::chrono::seconds(5));
  server_->set_keep_alive_timeout(5);
  server_->set_keep_alive_max_count(100);
  server_->set_payload_max_length(4096);
  server_->Get("/metrics", [this](const httplib::Request&, httplib::Response& response) {
    const std::shared_ptr<const BrokerMetrics> metrics = Latest();
    if (!metrics) {
      response.status = 503;
      response.set_content("starting: the broker loop has not published yet\n", "text/plain");
      return;
    }
    response.set_content(RenderBrokerMetrics(*metrics, std::chrono::steady_clock::now()),
                         std::string(prometheus::kContentType));
  });
  server_->Get("/healthz", [this](const httplib::Request&, httplib::Response& response) {
    const std::shared_ptr<const BrokerMetrics> metrics = Latest();
    const HealthAnswer answer =
        Health(metrics ? std::optional(metrics->taken) : std::nullopt, std::chrono::steady_clock::now(), stale_after_);
    response.status = answer.status;
    response.set_content(answer.body, "text/plain");
  });
  int port = parsed.port;
  if (port == 0) {
    port = server_->bind_to_any_port(parsed.host);
  } else if (!server_->bind_to_port(parsed.host, port)) {
    port = -1;
  }
  if (port <= 0) throw Error(ErrorCode::kConfig, "http: cannot listen on " + address + " (in use or not local?)");
  address_ = prometheus::FormatHttpAddress(parsed.host, port);
  thread_ = std::thread([server = server_.get()] { server->listen_after_bind(); });
  // stop() does nothing until the server runs: wait for it (bounded), so destruction never hangs.
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!server_->is_running() && std::chrono::steady_clock::now() < until) std::this_thread::yield();
}

MetricsHttp::~MetricsHttp() {
  server_->stop();
  if (thread_.joinable()) thread_.join();
}

void MetricsHttp::Publish(std::shared_ptr<const BrokerMetrics> metrics) {
  std::lock_guard lock(mutex_);
  latest_ = std::move(metrics);  // the old snapshot is freed by its last reader
}

std::shared_ptr<const BrokerMetrics> MetricsHttp::Latest() const {
  std::lock_guard lock(mutex_);
  return latest_;
}

}  // namespace courier::broker
