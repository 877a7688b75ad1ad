// The dashboard's HTTP side on a real server: pages, JSON, static files and the access
// rules, with no broker behind it (its questions to the cluster fail, and say so).
#include "dashboard_server.hpp"

#include <gtest/gtest.h>
#include <httplib.h>
#include <unistd.h>

#include <fstream>

#include "courier/error.hpp"
#include "courier/plugin.hpp"
#include "dashboard_pages.hpp"
#include "metrics_service.hpp"
#include "reporting/histogram.hpp"
#include "reporting/report_codec.hpp"

namespace courier::metrics {
namespace {

namespace fs = std::filesystem;

std::string Report(const std::string& service) {
  detail::MetricsReport report;
  report.process = "worker";
  report.host = "h";
  report.pid = 7;
  report.interval_ms = 1000;
  detail::StageInterval interval;
  interval.service = service;
  interval.stage = "handle";
  interval.count = 20;
  interval.sum_ns = 20 * 3000;
  interval.min_ns = interval.max_ns = 3000;
  interval.buckets = {{static_cast<std::uint32_t>(detail::LatencyBucket(3000)), 20}};
  report.stages = {interval};
  return detail::EncodeMetricsReport(report);
}

class DashboardServerTest : public ::testing::Test {
 protected:
  DashboardServerTest()
      : dir_(fs::temp_directory_path() / ("courier-dashboard-test-" + std::to_string(::getpid()))),
        service_(ConfigSection::Parse("http = \"127.0.0.1:0\"\ndashboard = true\ndashboard_dir = \"" +
                                          (fs::path(__FILE__).parent_path() / "dashboard").string() +
                                          "\"\nbrokers = [\"tcp://127.0.0.1:1\"]\nkeyring = \"" +
                                          (dir_ / "keyring.toml").string() + "\"\n",
                                      "test")) {
    service_.Handle(DecodeValue(Report("<echo>")), JobContext());
    const std::size_t colon = service_.http_address().rfind(':');
    host_ = service_.http_address();
    client_ = std::make_unique<httplib::Client>(host_.substr(0, colon), std::stoi(host_.substr(colon + 1)));
    client_->set_read_timeout(15, 0);
  }
  ~DashboardServerTest() override { fs::remove_all(dir_); }

  // The token the pages carry for their state-changing requests.
  std::string PageToken() {
    const auto page = client_->Get("/");
    const std::string marker = "name=\"courier-token\" content=\"";
    const std::size_t at = page->body.find(marker);
    if (at == std::string::npos) return "";
    return page->body.substr(at + marker.size(), 64);
  }

  fs::path dir_;
  MetricsService service_;
  std::string host_;
  std::unique_ptr<httplib::Client> client_;
};

TEST_F(DashboardServerTest, TheOverviewIsUsefulHtmlBeforeAnyScript) {
  EXPECT_EQ(service_.dashboard_address(), service_.http_address());
  const auto page = client_->Get("/");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  EXPECT_NE(page->get_header_value("Content-Type").find("text/html"), std::string::npos);
  EXPECT_EQ(page->get_header_value("X-Frame-Options"), "DENY");
  EXPECT_NE(page->get_header_value("Content-Security-Policy").find("frame-ancestors 'none'"), std::string::npos);
  // The service the collector heard of, escaped, with its latency, in the table itself.
  EXPECT_NE(page->body.find("<table id=\"services\">"), std::string::npos);
  EXPECT_NE(page->body.find("&lt;echo&gt;</a>"), std::string::npos) << page->body;
  EXPECT_EQ(page->body.find("<echo>"), std::string::npos);
  EXPECT_NE(page->body.find("µs"), std::string::npos);
  EXPECT_NE(page->body.find("tcp://127.0.0.1:1"), std::string::npos);  // the broker, not up
  EXPECT_EQ(PageToken().size(), 64u);
  // /metrics is still there beside it.
  const auto metrics = client_->Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_EQ(metrics->status, 200);
}

TEST_F(DashboardServerTest, JsonEndpointsAnswer) {
  const auto overview = client_->Get("/api/overview");
  ASSERT_TRUE(overview);
  ASSERT_EQ(overview->status, 200);
  EXPECT_EQ(overview->get_header_value("Content-Type"), "application/json");
  const Value body = FromJson(overview->body);
  ASSERT_EQ(body.At("services").size(), 1u);
  const Value& echo = body.At("services").AsArray()[0];
  EXPECT_EQ(echo.At("name").AsString(), "<echo>");
  EXPECT_EQ(echo.At("latency_stage").AsString(), "worker handle");
  EXPECT_GT(echo.At("p50_ns").AsDouble(), 2000.0);
  EXPECT_LT(echo.At("p50_ns").AsDouble(), 4000.0);
  EXPECT_EQ(body.At("brokers").size(), 1u);
  EXPECT_EQ(body.At("collector").At("reports").AsUint(), 1u);

  const auto service = client_->Get("/api/service?name=%3Cecho%3E");
  ASSERT_TRUE(service);
  ASSERT_EQ(service->status, 200);
  const Value detail = FromJson(service->body);
  EXPECT_EQ(detail.At("service").AsString(), "<echo>");
  ASSERT_EQ(detail.At("stages").size(), 1u);
  EXPECT_EQ(detail.At("stages").AsArray()[0].At("stage").AsString(), "handle");
  EXPECT_EQ(detail.At("stages").AsArray()[0].At("group").AsString(), "request") << "the design's groups, as the CLI shows";
  EXPECT_TRUE(detail.At("history").At("t").IsArray());
  EXPECT_TRUE(detail.At("workers").IsArray());

  const auto page = client_->Get("/service?name=%3Cecho%3E");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  EXPECT_NE(page->body.find("id=\"chart-mean\""), std::string::npos);
  EXPECT_NE(page->body.find("<table id=\"stages\">"), std::string::npos);
}

TEST_F(DashboardServerTest, StaticFilesAreServedAndNothingOutsideThem) {
  const auto css = client_->Get("/static/dashboard.css");
  ASSERT_TRUE(css);
  EXPECT_EQ(css->status, 200);
  EXPECT_NE(css->get_header_value("Content-Type").find("text/css"), std::string::npos);
  const auto js = client_->Get("/static/overview.js");
  ASSERT_TRUE(js);
  EXPECT_EQ(js->status, 200);
  EXPECT_NE(js->get_header_value("Content-Type").find("text/javascript"), std::string::npos);
  for (const char* path : {"/static/../dashboard_server.cpp", "/static/%2e%2e/dashboard_server.cpp", "/static/nope.js",
                           "/static//etc/passwd"}) {
    const auto refused = client_->Get(path);
    ASSERT_TRUE(refused) << path;
    EXPECT_EQ(refused->status, 404) << path;
  }
}

TEST_F(DashboardServerTest, AForeignHostNameIsRefused) {
  const auto page = client_->Get("/", httplib::Headers{{"Host", "rebound.example:80"}});
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 403);
  const auto api = client_->Get("/api/overview", httplib::Headers{{"Host", "rebound.example:80"}});
  ASSERT_TRUE(api);
  EXPECT_EQ(api->status, 403);
}

TEST_F(DashboardServerTest, AReplayNeedsTheTokenAndTheSameOrigin) {
  const std::string token = PageToken();
  ASSERT_FALSE(token.empty());
  const std::string body = R"({"id": 1})";
  const std::string origin = "http://" + host_;
  auto post = [&](httplib::Headers headers) { return client_->Post("/api/replay", headers, body, "application/json"); };
  const auto no_token = post({{"Origin", origin}});
  ASSERT_TRUE(no_token);
  EXPECT_EQ(no_token->status, 403);
  const auto foreign = post({{"Origin", "http://evil.example"}, {"X-Courier-Token", token}});
  ASSERT_TRUE(foreign);
  EXPECT_EQ(foreign->status, 403);
  const auto no_origin = post({{"X-Courier-Token", token}});
  ASSERT_TRUE(no_origin);
  EXPECT_EQ(no_origin->status, 403);
  // Allowed through: then it fails for want of a broker, and says so as JSON.
  const auto allowed = post({{"Origin", origin}, {"X-Courier-Token", token}});
  ASSERT_TRUE(allowed);
  EXPECT_EQ(allowed->status, 503) << allowed->body;
  EXPECT_TRUE(FromJson(allowed->body).Find("error") != nullptr);
  const auto malformed = client_->Get("/api/error?id=x");
  ASSERT_TRUE(malformed);
  EXPECT_EQ(malformed->status, 400);
  // A payload is a secret: revealing one is treated as a write.
  const auto reveal = client_->Get("/api/error?id=1&reveal=1");
  ASSERT_TRUE(reveal);
  EXPECT_EQ(reveal->status, 403);
}

TEST(DashboardPagesTest, FormattingAndEscaping) {
  EXPECT_EQ(EscapeHtml("<a href=\"x\">&'"), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
  EXPECT_EQ(FormatNanos(850), "850ns");
  EXPECT_EQ(FormatNanos(12345), "12.3µs");
  EXPECT_EQ(FormatNanos(4'560'000), "4.56ms");
  EXPECT_EQ(FormatNanos(1.2e9), "1.20s");
  EXPECT_EQ(FormatUptime(3 * 60'000 + 12'000), "3m 12s");
  EXPECT_EQ(FormatUptime(90'000'000), "1d 1h");
  EXPECT_EQ(FormatRate(0), "0");
  EXPECT_EQ(FormatRate(4.44), "4.4");
  EXPECT_EQ(FormatRate(1234.4), "1234");
  EXPECT_EQ(FormatPercent(0.0012), "0.12%");
  EXPECT_EQ(FormatPercent(0.05), "5.0%");
}

TEST(DashboardOptionsTest, DashboardTableRoundTrips) {
  CurveOptions curve;
  const std::string toml = DashboardTable(true, "127.0.0.1:9465", "/opt/d", "", "", {"tcp://a:1", "tcp://b:2"}, "/k.toml", curve);
  const DashboardOptions options = ReadDashboardOptions(ConfigSection::Parse(toml, "test"));
  EXPECT_TRUE(options.enabled);
  EXPECT_EQ(options.http, "127.0.0.1:9465");
  EXPECT_EQ(options.dir, "/opt/d");
  EXPECT_EQ(options.client.brokers, (std::vector<std::string>{"tcp://a:1", "tcp://b:2"}));
  EXPECT_EQ(options.client.keyring_path, "/k.toml");
  EXPECT_FALSE(ReadDashboardOptions(ConfigSection::Parse(DashboardTable(false, "", "", "", "", {}, "", curve), "t")).enabled);
}

}  // namespace
}  // namespace courier::metrics

namespace courier::metrics {
namespace {

TEST(DashboardOptionsTest, WithCurveButNoKeyOfItsOwnTheDashboardAsksNobody) {
  CurveOptions curve;
  curve.server_public_key = std::string(40, 'a');
  curve.key_file = "/collector/worker.key";  // the collector's: a worker's key, never used here
  const std::string toml = DashboardTable(true, "", "", "", "", {"tcp://127.0.0.1:1"}, "", curve);
  EXPECT_EQ(toml.find("worker.key"), std::string::npos) << toml;
  DashboardOptions options = ReadDashboardOptions(ConfigSection::Parse(toml, "test"));
  EXPECT_TRUE(options.client.curve.enabled());
  options.client.keyring = std::make_shared<const Keyring>(Keyring::Generate());
  const StageTable table;
  ClusterView view(options.client, table);
  view.Poll();
  EXPECT_NE(view.Overview().At("problem").AsString().find("--dashboard-curve-key"), std::string::npos);
  try {
    view.Errors(ErrorFilter{}, false);
    FAIL() << "asked the error sink without a key";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kConfig);
  }
}

}  // namespace
}  // namespace courier::metrics

namespace courier::metrics {
namespace {

TEST(DashboardLoginTest, WithATokenFilePagesNeedTheLoginCookie) {
  const fs::path dir = fs::temp_directory_path() / ("courier-dashboard-login-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const fs::path token = dir / "token";
  std::ofstream(token) << "a-long-enough-secret-42\n";
  fs::permissions(token, fs::perms::owner_read | fs::perms::owner_write);
  {
    MetricsService service(ConfigSection::Parse(
        "http = \"127.0.0.1:0\"\ndashboard = true\ndashboard_dir = \"" +
            (fs::path(__FILE__).parent_path() / "dashboard").string() + "\"\ndashboard_token_file = \"" + token.string() +
            "\"\nbrokers = [\"tcp://127.0.0.1:1\"]\nkeyring = \"" + (dir / "keyring.toml").string() + "\"\n",
        "test"));
    const std::string address = service.http_address();
    httplib::Client client(address.substr(0, address.rfind(':')), std::stoi(address.substr(address.rfind(':') + 1)));
    client.set_read_timeout(10, 0);
    const auto anonymous = client.Get("/");
    ASSERT_TRUE(anonymous);
    EXPECT_EQ(anonymous->status, 303);
    EXPECT_EQ(anonymous->get_header_value("Location"), "/login");
    const auto api = client.Get("/api/overview");
    ASSERT_TRUE(api);
    EXPECT_EQ(api->status, 401);
    const auto css = client.Get("/static/dashboard.css");  // the login page needs its style
    ASSERT_TRUE(css);
    EXPECT_EQ(css->status, 200);

    const auto wrong = client.Post("/login", "token=guess", "application/x-www-form-urlencoded");
    ASSERT_TRUE(wrong);
    EXPECT_EQ(wrong->status, 401);
    EXPECT_FALSE(wrong->has_header("Set-Cookie"));
    const auto right = client.Post("/login", "token=a-long-enough-secret-42", "application/x-www-form-urlencoded");
    ASSERT_TRUE(right);
    EXPECT_EQ(right->status, 303);
    const std::string cookie = right->get_header_value("Set-Cookie");
    EXPECT_NE(cookie.find("HttpOnly"), std::string::npos);
    EXPECT_NE(cookie.find("SameSite=Strict"), std::string::npos);
    const auto page = client.Get("/", httplib::Headers{{"Cookie", cookie.substr(0, cookie.find(';'))}});
    ASSERT_TRUE(page);
    EXPECT_EQ(page->status, 200);
    const auto bearer = client.Get("/api/overview", httplib::Headers{{"Authorization", "Bearer a-long-enough-secret-42"}});
    ASSERT_TRUE(bearer);
    EXPECT_EQ(bearer->status, 200);
  }
  fs::remove_all(dir);
}

}  // namespace
}  // namespace courier::metrics
