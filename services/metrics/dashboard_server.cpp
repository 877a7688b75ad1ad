#include "dashboard_server.hpp"

#include <httplib.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <stdexcept>

#include <spdlog/spdlog.h>

#include "courier/error.hpp"
#include "courier/job.hpp"
#include "dashboard_pages.hpp"
#include "prometheus/http_address.hpp"
#include "wire/stages.hpp"

namespace courier::metrics {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

constexpr std::string_view kSecurityHeaders[][2] = {
    {"X-Content-Type-Options", "nosniff"},
    {"X-Frame-Options", "DENY"},  // a replay button must never be clicked inside another site's frame
    {"Referrer-Policy", "same-origin"},
    {"Content-Security-Policy",
     "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; "
     "base-uri 'none'; form-action 'self'"},
    {"Cache-Control", "no-store"},
};

void Secure(httplib::Response& response) {
  for (const auto& header : kSecurityHeaders) response.set_header(std::string(header[0]), std::string(header[1]));
}

void SendJson(httplib::Response& response, const Value& value, int status = 200) {
  Secure(response);
  response.status = status;
  response.set_content(ToJson(value), "application/json");
}

void SendHtml(httplib::Response& response, const std::string& html, int status = 200) {
  Secure(response);
  response.status = status;
  response.set_content(html, "text/html; charset=utf-8");
}

int StatusFor(ErrorCode code) {
  switch (code) {
    case ErrorCode::kBadRequest:
    case ErrorCode::kInvalidPayload:
      return 400;
    case ErrorCode::kNotFound:
      return 404;
    case ErrorCode::kNoSuchService:
    case ErrorCode::kUnavailable:
    case ErrorCode::kConfig:
      return 503;
    case ErrorCode::kDeadlineExceeded:
      return 504;
    default:
      return 502;
  }
}

void SendError(httplib::Response& response, const std::exception& e) {
  const auto* error = dynamic_cast<const courier::Error*>(&e);
  // A malformed number in the query (std::stoll) is the asker's mistake, not ours.
  const bool bad_argument = dynamic_cast<const std::logic_error*>(&e) != nullptr;
  const ErrorCode code = error != nullptr ? error->code() : bad_argument ? ErrorCode::kBadRequest : ErrorCode::kInternal;
  SendJson(response, Value::Object({{"error", Value(std::string(e.what()))}, {"code", Value(std::string(ToString(code)))}}),
           StatusFor(code));
}

std::string Param(const httplib::Request& request, const char* name) {
  return request.has_param(name) ? request.get_param_value(name) : std::string();
}

// "15m", "1h", "1d", "1w" → milliseconds; anything else 0 (no bound).
std::uint64_t SinceMs(const std::string& text) {
  if (text.size() < 2) return 0;
  static constexpr std::pair<char, std::uint64_t> kUnits[] = {{'s', 1000}, {'m', 60000}, {'h', 3600000}, {'d', 86400000}, {'w', 604800000}};
  try {
    const std::uint64_t amount = std::stoull(text.substr(0, text.size() - 1));
    for (const auto& [unit, ms] : kUnits) {
      if (text.back() == unit && amount < 1000) return amount * ms;
    }
  } catch (const std::exception&) {
  }
  return 0;
}

ErrorFilter FilterOf(const httplib::Request& request) {
  ErrorFilter filter;
  filter.service = Param(request, "service");
  filter.code = Param(request, "code");
  if (const std::uint64_t span = SinceMs(Param(request, "since")); span > 0) {
    const std::uint64_t now = NowUnixMs();
    filter.since_ms = now > span ? now - span : 1;
  }
  if (!Param(request, "limit").empty()) {
    try {
      filter.limit = std::stoul(Param(request, "limit"));
    } catch (const std::exception&) {
    }
  }
  return filter;
}

std::string ContentType(const fs::path& file) {
  const std::string ext = file.extension().string();
  if (ext == ".js" || ext == ".mjs") return "text/javascript; charset=utf-8";
  if (ext == ".css") return "text/css; charset=utf-8";
  if (ext == ".png") return "image/png";
  if (ext == ".svg") return "image/svg+xml";
  if (ext == ".html") return "text/html; charset=utf-8";
  return "application/octet-stream";
}

// Returns: the file under `dir` named by `relative`, if it is a plain name inside it.
std::optional<fs::path> StaticFile(const fs::path& dir, const std::string& relative) {
  if (relative.empty() || relative.size() > 200 || relative.front() == '/') return std::nullopt;
  for (const char c : relative) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-' || c == '/')) return std::nullopt;
  }
  if (relative.find("..") != std::string::npos) return std::nullopt;
  const fs::path file = dir / relative;
  std::error_code ignored;
  if (!fs::is_regular_file(file, ignored)) return std::nullopt;
  return file;
}

prometheus::HttpAddress ParseHostPort(const std::string& text) {
  try {
    return prometheus::ParseHttpAddress(text);
  } catch (const courier::Error& error) {
    throw courier::Error(ErrorCode::kConfig, std::string("dashboard_http: ") + error.what());
  }
}

}  // namespace

DashboardOptions ReadDashboardOptions(const ConfigSection& config) {
  DashboardOptions options;
  options.enabled = config.GetBool("dashboard", false);
  options.http = config.GetString("dashboard_http", "");
  options.dir = config.GetString("dashboard_dir", "");
  options.token_file = config.GetString("dashboard_token_file", "");
  options.interval = config.GetDuration("dashboard_interval", options.interval, milliseconds(100), milliseconds(60000));
  std::error_code ignored;
  if (options.enabled && options.dir.empty() && !fs::is_regular_file(DefaultDashboardDir() / "dashboard.css", ignored)) {
    spdlog::warn("dashboard: no dashboard files in {} (not installed?): the dashboard is off", DefaultDashboardDir().string());
    options.enabled = false;
  }
  options.client.brokers = config.GetStringArray("brokers", {"tcp://127.0.0.1:5555"});
  options.client.keyring_path = config.GetString("keyring", "");
  if (const auto server_key = config.GetOptionalString("dashboard_curve_server_key"); server_key && !server_key->empty()) {
    options.client.curve.server_public_key = *server_key;
    options.client.curve.key_file = config.GetString("dashboard_curve_key_file", "");
    // Without a key of its own the dashboard asks nobody (ClusterView says why).
    if (!options.client.curve.key_file.empty()) options.client.curve = options.client.curve.Resolved();
  } else {
    config.GetString("dashboard_curve_key_file", "");  // read, so that it is not an unknown key
  }
  return options;
}

namespace {

std::string Quoted(std::string_view text) {
  std::string out = "\"";
  for (const char c : text) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

}  // namespace

std::string DashboardTable(bool enabled, const std::string& http, const std::string& dir, const std::string& token_file,
                           const std::string& curve_key_file, const std::vector<std::string>& brokers,
                           const std::string& keyring, const CurveOptions& curve) {
  std::string toml = std::string("dashboard = ") + (enabled ? "true" : "false") + "\n";
  if (!enabled) return toml;
  toml += "dashboard_http = " + Quoted(http) + "\n";
  toml += "dashboard_dir = " + Quoted(dir) + "\n";
  toml += "dashboard_token_file = " + Quoted(token_file) + "\n";
  toml += "keyring = " + Quoted(keyring) + "\n";
  toml += "brokers = [";
  for (std::size_t i = 0; i < brokers.size(); ++i) toml += (i == 0 ? "" : ", ") + Quoted(brokers[i]);
  toml += "]\n";
  if (curve.enabled()) {
    toml += "dashboard_curve_server_key = " + Quoted(curve.server_public_key) + "\n";
    // The collector's own key is a worker's: the brokers would not answer it as a client.
    toml += "dashboard_curve_key_file = " + Quoted(curve_key_file) + "\n";
  }
  return toml;
}

fs::path DefaultDashboardDir() {
  std::error_code error;
  const fs::path exe = fs::read_symlink("/proc/self/exe", error);
  if (error) return fs::path("share") / "courier" / "dashboard";
  return (exe.parent_path().parent_path() / "share" / "courier" / "dashboard").lexically_normal();
}

Dashboard::Dashboard(DashboardOptions options, const StageTable& table)
    : options_(std::move(options)), table_(table), dir_(options_.dir.empty() ? DefaultDashboardDir() : options_.dir) {
  std::error_code ignored;
  if (!fs::is_regular_file(dir_ / "dashboard.css", ignored)) {
    throw courier::Error(ErrorCode::kConfig, "dashboard: no dashboard files in " + dir_.string() +
                                                 " (give --dashboard-dir, or --no-dashboard)");
  }
  if (!fs::is_regular_file(dir_ / "vendor" / "uPlot.esm.js", ignored)) {
    spdlog::warn("dashboard: {} has no vendor/uPlot.esm.js (run ops/bootstrap and rebuild): no charts", dir_.string());
  }
  cluster_ = std::make_unique<ClusterView>(options_.client, table_);
  sampler_ = std::thread([this] { Run(); });
}

Dashboard::~Dashboard() {
  if (own_server_) own_server_->stop();
  if (own_thread_.joinable()) own_thread_.join();
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (sampler_.joinable()) sampler_.join();
}

void Dashboard::SampleNow() {
  history_.Sample(table_.Snapshot(Clock::now()), static_cast<std::int64_t>(NowUnixMs()));
  cluster_->Poll();
}

void Dashboard::Run() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    lock.unlock();
    try {
      SampleNow();
    } catch (const std::exception& e) {
      spdlog::warn("dashboard: sampling failed: {}", e.what());
    }
    lock.lock();
    wake_.wait_for(lock, options_.interval, [this] { return stopping_; });
  }
}

std::string Dashboard::Listen() {
  const prometheus::HttpAddress address = ParseHostPort(options_.http);
  own_server_ = std::make_unique<httplib::Server>();
  own_server_->set_read_timeout(std::chrono::seconds(5));
  own_server_->set_write_timeout(std::chrono::seconds(5));
  own_server_->set_keep_alive_max_count(100);
  own_server_->set_payload_max_length(64 * 1024);
  Mount(*own_server_, address.host);
  int port = address.port;
  if (port == 0) {
    port = own_server_->bind_to_any_port(address.host);
  } else if (!own_server_->bind_to_port(address.host, port)) {
    port = -1;
  }
  if (port <= 0) throw courier::Error(ErrorCode::kConfig, "dashboard_http: cannot listen on " + options_.http);
  own_thread_ = std::thread([server = own_server_.get()] { server->listen_after_bind(); });
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!own_server_->is_running() && std::chrono::steady_clock::now() < until) std::this_thread::yield();
  return prometheus::FormatHttpAddress(address.host, port);
}

void Dashboard::Mount(httplib::Server& server, const std::string& bind_host) {
  access_ = std::make_unique<DashboardAccess>(DashboardAccess::Options{bind_host, options_.token_file});
  DashboardAccess* access = access_.get();
  ClusterView* cluster = cluster_.get();
  const StageTable* table = &table_;
  StageHistory* history = &history_;
  const fs::path dir = dir_;
  const PageContext context{access->token()};

  // Wraps a handler with the read check: pages go to the login form, JSON gets a status.
  auto page = [access](auto handler) {
    return [access, handler](const httplib::Request& request, httplib::Response& response) {
      if (const auto refusal = access->CheckRead(request)) {
        if (refusal->status == 401) {
          Secure(response);
          response.set_redirect("/login", 303);
        } else {
          SendHtml(response, MessagePage("Refused", refusal->reason), refusal->status);
        }
        return;
      }
      handler(request, response);
    };
  };
  auto api = [access](auto handler, bool write_always = false) {
    return [access, handler, write_always](const httplib::Request& request, httplib::Response& response) {
      const bool write = write_always || Param(request, "reveal") == "1";
      if (const auto refusal = write ? access->CheckWrite(request) : access->CheckRead(request)) {
        SendJson(response, Value::Object({{"error", Value(refusal->reason)}}), refusal->status);
        return;
      }
      try {
        handler(request, response);
      } catch (const std::exception& e) {
        SendError(response, e);
      }
    };
  };

  server.Get("/", page([cluster, context](const httplib::Request&, httplib::Response& response) {
    SendHtml(response, OverviewPage(context, cluster->Overview()));
  }));
  server.Get("/service", page([cluster, table, context](const httplib::Request& request, httplib::Response& response) {
    const std::string name = Param(request, "name");
    std::vector<SeriesView> stages;
    for (SeriesView& row : table->Snapshot(Clock::now())) {
      if (row.service == name) stages.push_back(std::move(row));
    }
    SendHtml(response, ServicePage(context, name, cluster->Workers(name), stages));
  }));
  server.Get("/errors", page([cluster, context](const httplib::Request& request, httplib::Response& response) {
    ErrorsView view;
    view.service = Param(request, "service");
    view.code = Param(request, "code");
    view.since = Param(request, "since");
    try {
      if (!Param(request, "id").empty()) view.detail = cluster->Error(std::stoll(Param(request, "id")), false);
      ErrorFilter filter = FilterOf(request);
      filter.limit = 50;
      view.groups = cluster->Errors(filter, true);
      view.reports = cluster->Errors(filter, false);
    } catch (const std::exception& e) {
      view.problem = e.what();
    }
    SendHtml(response, ErrorsPage(context, view));
  }));
  server.Get("/jobs", page([cluster, context](const httplib::Request& request, httplib::Response& response) {
    JobsView view;
    view.id = Param(request, "id");
    view.service = Param(request, "service");
    view.state = Param(request, "state");
    try {
      if (!view.id.empty()) {
        view.job = cluster->Job(view.id, false);
      } else if (!Param(request, "list").empty()) {
        view.jobs = cluster->Jobs(view.service, view.state, 100);
      }
    } catch (const std::exception& e) {
      view.problem = e.what();
    }
    SendHtml(response, JobsPage(context, view));
  }));
  // Static files are no secret (the install holds them): served without a token, so the
  // login page has its style.
  server.Get(R"(/static/(.+))", ([dir](const httplib::Request& request, httplib::Response& response) {
    const auto file = StaticFile(dir, request.matches[1]);
    if (!file) {
      SendHtml(response, MessagePage("Not found", "no such file"), 404);
      return;
    }
    std::ifstream in(*file, std::ios::binary);
    std::stringstream content;
    content << in.rdbuf();
    Secure(response);
    response.set_header("Cache-Control", "no-cache");
    response.set_content(content.str(), ContentType(*file).c_str());
  }));

  server.Get("/api/overview", api([cluster](const httplib::Request&, httplib::Response& response) {
    SendJson(response, cluster->Overview());
  }));
  server.Get("/api/service", api([cluster, table, history](const httplib::Request& request, httplib::Response& response) {
    const std::string name = Param(request, "name");
    Value stages = Value::Array{};
    for (const SeriesView& row : table->Snapshot(Clock::now())) {
      if (row.service != name) continue;
      const WindowStats& minute = row.windows[kWindow1m];
      const auto group = wire::GroupOf(row.process, row.stage);
      Value out = Value::Object({{"group", Value(group ? std::string(wire::ToString(*group)) : "")},
                                 {"process", Value(row.process)},
                                 {"stage", Value(row.stage)},
                                 {"rate", Value(minute.rate())},
                                 {"error_ratio", Value(minute.error_ratio())}});
      if (const auto mean = minute.mean_ns()) out.Set("mean_ns", Value(*mean));
      if (const auto p99 = minute.quantile_ns(0.99)) out.Set("p99_ns", Value(*p99));
      stages.Append(std::move(out));
    }
    SendJson(response, Value::Object({{"service", Value(name)},
                                      {"workers", cluster->Workers(name)},
                                      {"stages", std::move(stages)},
                                      {"history", history->ServiceValue(name)}}));
  }));
  server.Get("/api/errors", api([cluster](const httplib::Request& request, httplib::Response& response) {
    SendJson(response, cluster->Errors(FilterOf(request), Param(request, "view") == "groups"));
  }));
  server.Get("/api/error", api([cluster](const httplib::Request& request, httplib::Response& response) {
    SendJson(response, cluster->Error(std::stoll(Param(request, "id")), Param(request, "reveal") == "1"));
  }));
  server.Get("/api/jobs", api([cluster](const httplib::Request& request, httplib::Response& response) {
    SendJson(response, cluster->Jobs(Param(request, "service"), Param(request, "state"), 100));
  }));
  server.Get("/api/job", api([cluster](const httplib::Request& request, httplib::Response& response) {
    SendJson(response, cluster->Job(Param(request, "id"), Param(request, "reveal") == "1"));
  }));
  server.Post("/api/replay", api(
                                 [cluster](const httplib::Request& request, httplib::Response& response) {
                                   if (request.get_header_value("Content-Type").rfind("application/json", 0) != 0) {
                                     throw courier::Error(ErrorCode::kBadRequest, "expected a JSON body");
                                   }
                                   const Value body = FromJson(request.body);
                                   if (const Value* fingerprint = body.Find("fingerprint")) {
                                     SendJson(response, cluster->ReplayGroup(fingerprint->AsString(), 100));
                                     return;
                                   }
                                   const std::int64_t id = body.At("id").AsInt();
                                   spdlog::info("dashboard: replaying error {} for {}", id, request.remote_addr);
                                   SendJson(response, cluster->Replay(id, milliseconds(10000)));
                                 },
                                 true));

  server.Get("/login", [access](const httplib::Request&, httplib::Response& response) {
    SendHtml(response, access->login_required() ? LoginPage("") : MessagePage("No login", "This dashboard needs no token: it is only reachable from this machine."));
  });
  server.Post("/login", [access](const httplib::Request& request, httplib::Response& response) {
    httplib::Params form;
    httplib::detail::parse_query_text(request.body, form);
    const auto token = form.find("token");
    const std::string origin = request.get_header_value("Origin");
    if (!access->login_required() || token == form.end() || !access->Accepts(token->second) ||
        (!origin.empty() && origin != "http://" + request.get_header_value("Host") &&
         origin != "https://" + request.get_header_value("Host"))) {
      SendHtml(response, LoginPage("That is not the token."), 401);
      return;
    }
    Secure(response);
    response.set_header("Set-Cookie", "courier_token=" + token->second + "; Path=/; HttpOnly; SameSite=Strict");
    response.set_redirect("/", 303);
  });
}

}  // namespace courier::metrics
