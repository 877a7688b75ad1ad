#include "metrics_service.hpp"

#include <httplib.h>

#include <chrono>

#include <spdlog/spdlog.h>

#include "exposition.hpp"
#include "reporting/report_codec.hpp"

namespace courier::metrics {
namespace {

struct Address {
  std::string host;
  int port = 0;
};

Address ParseAddress(const ConfigSection& config, const std::string& text) {
  const std::size_t colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == text.size()) {
    throw Error(ErrorCode::kConfig, config.Describe("http", "expected HOST:PORT, got \"" + text + "\""));
  }
  Address address;
  address.host = text.substr(0, colon);
  if (address.host.size() > 2 && address.host.front() == '[' && address.host.back() == ']') {
    address.host = address.host.substr(1, address.host.size() - 2);  // [::1]:9464
  }
  try {
    std::size_t used = 0;
    address.port = std::stoi(text.substr(colon + 1), &used);
    if (used != text.size() - colon - 1 || address.port < 0 || address.port > 65535) throw std::out_of_range("port");
  } catch (const std::exception&) {
    throw Error(ErrorCode::kConfig, config.Describe("http", "bad port in \"" + text + "\""));
  }
  return address;
}

}  // namespace

MetricsService::MetricsService(const ConfigSection& config) {
  const std::string http = config.GetString("http", "127.0.0.1:9464");
  const auto max_series = static_cast<std::size_t>(
      config.GetInt("max_series", static_cast<std::int64_t>(StageTable::kDefaultMaxSeries), 1, 1'000'000));
  config.RejectUnknownKeys();
  table_ = std::make_unique<StageTable>(max_series);
  if (http.empty()) {
    spdlog::info("metrics: HTTP is off");
    return;
  }
  const Address address = ParseAddress(config, http);
  server_ = std::make_unique<httplib::Server>();
  server_->new_task_queue = [] { return std::make_unique<httplib::ThreadPool>(2).release(); };  // httplib owns it
  StageTable* table = table_.get();
  server_->Get("/metrics", [table](const httplib::Request&, httplib::Response& response) {
    response.set_content(PrometheusText(*table, Clock::now()), "text/plain; version=0.0.4; charset=utf-8");
  });
  server_->Get("/metrics.json", [table](const httplib::Request&, httplib::Response& response) {
    response.set_content(ToJson(StatsValue(*table, Clock::now()), 2) + "\n", "application/json");
  });
  int port = address.port;
  if (port == 0) {
    port = server_->bind_to_any_port(address.host);
  } else if (!server_->bind_to_port(address.host, port)) {
    port = -1;
  }
  if (port <= 0) {
    throw Error(ErrorCode::kConfig, config.Describe("http", "cannot listen on " + http + " (in use or not local?)"));
  }
  http_address_ = (address.host.find(':') != std::string::npos ? "[" + address.host + "]" : address.host) + ":" +
                  std::to_string(port);
  server_thread_ = std::thread([server = server_.get()] { server->listen_after_bind(); });
  // stop() is a no-op until the server runs: wait for it (bounded), so destruction never hangs.
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!server_->is_running() && std::chrono::steady_clock::now() < until) std::this_thread::yield();
  spdlog::info("metrics: serving http://{}/metrics and /metrics.json", http_address_);
}

MetricsService::~MetricsService() {
  if (server_) server_->stop();
  if (server_thread_.joinable()) server_thread_.join();
}

Value MetricsService::Handle(const Value& request, const JobContext& job) {
  if (!request.IsMap()) throw Error(ErrorCode::kInvalidPayload, "expected a map: a metrics report or {\"op\": ...}");
  if (request.Find("stages") != nullptr) {
    const detail::MetricsReport report = detail::DecodeMetricsReport(request);
    const bool added = table_->Add(job.job_id(), report, Clock::now());
    return Value::Object({{"added", Value(added)}});
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
