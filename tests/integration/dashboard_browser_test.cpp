// The dashboard in a real browser: a broker, an error sink, the collector (dashboard on),
// an echo worker host and a test worker around them, jobs and a provoked dead letter, then
// tests/browser/dashboard_pages.mjs drives Debian's chromium over the pages (playwright-core)
// and this test checks that the replay it clicked ran on the worker. Screenshots of every
// page land in build/dashboard-screenshots/.
// Skipped (not failed) when chromium, node or node_modules/playwright-core are missing:
// ops/bootstrap installs all three.
#include <sys/wait.h>

#include <atomic>
#include <cstdlib>
#include <future>
#include <sstream>
#include <thread>

#include "courier/client.hpp"
#include "courier/keyring.hpp"
#include "services_fixture.hpp"

namespace courier::test {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// Returns: `name` found on PATH, or "".
fs::path FindOnPath(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path != nullptr ? path : "/usr/bin:/bin");
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    const fs::path candidate = fs::path(dir) / name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return {};
}

class DashboardBrowserTest : public ServicesFixture {};

TEST_F(DashboardBrowserTest, EveryPageShowsTheClusterAndAReplayRunsOnTheWorker) {
  const char* chromium_env = std::getenv("COURIER_CHROMIUM");
  const fs::path chromium = chromium_env != nullptr ? fs::path(chromium_env) : fs::path("/usr/bin/chromium");
  const fs::path node = FindOnPath("node");
  const fs::path source = COURIER_SOURCE_DIR;
  if (::access(chromium.c_str(), X_OK) != 0 || node.empty() ||
      !fs::exists(source / "node_modules" / "playwright-core" / "package.json")) {
    GTEST_SKIP() << "needs " << chromium << ", node and node_modules/playwright-core (ops/bootstrap installs them)";
  }

  StartBroker();
  StartSink();  // creates the keyring every process here shares (XDG_CONFIG_HOME)
  const std::string http = "127.0.0.1:" + std::to_string(FreePort());
  StartMetrics(http);
  ASSERT_TRUE(Process("metrics").WaitForLog("dashboard at http://" + http, 10s)) << Log("metrics");
  const auto worker_config = dir_.Write("worker.toml", "brokers = [\"" + endpoint_ + "\"]\nheartbeat_interval = \"200ms\"\n");
  Start("worker", BinaryPath("courier-worker"),
        {"--config", worker_config.string(), "--plugin", PluginPath("echo").string(), "--plugin",
         PluginPath("textstats").string(), "--instance", "browser-test"});
  ASSERT_TRUE(WaitForService("echo")) << Log("worker");
  ASSERT_TRUE(WaitForService("textstats")) << Log("worker");

  ClientOptions options;
  options.brokers = {endpoint_};
  options.keyring_path = dir_.path() / "config" / "courier" / "keyring.toml";
  options.deadline = 10s;
  Client client(options);

  // A dead letter: a job whose only worker dies holding it (max_attempts 1).
  Start("doomed", BinaryPath("courier-test-worker"),
        {"--broker", endpoint_, "--protocol", "courier", "--service", "flaky", "--delay-ms", "600000", "--heartbeat-ms", "100"});
  ASSERT_TRUE(WaitForService("flaky")) << Log("doomed");
  CallOptions once;
  once.max_attempts = 1;
  once.max_retries = 0;
  once.deadline = 120s;  // the sink can still replay it as the same job
  std::future<Value> doomed = client.Submit("flaky", Value::Object({{"text", "replay me"}}), once);
  ASSERT_TRUE(Process("doomed").WaitForLog("received 1", 10s)) << Log("doomed");
  Kill("doomed");
  try {
    doomed.get();
    FAIL() << "the doomed job succeeded";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kAttemptsExhausted) << e.what();
  }
  // The fault goes away: a worker that answers.
  Start("healthy", BinaryPath("courier-test-worker"),
        {"--broker", endpoint_, "--protocol", "courier", "--service", "flaky", "--heartbeat-ms", "100"});
  ASSERT_TRUE(WaitForService("flaky")) << Log("healthy");

  // A stored job for the jobs page, and steady traffic (with a few failures) while the
  // browser looks, bounded in count and time.
  client.Enqueue("echo", Value::Object({{"stored", true}}));
  std::atomic<bool> stop{false};
  std::thread load([&] {
    const auto until = std::chrono::steady_clock::now() + 240s;
    for (int i = 0; i < 100000 && !stop && std::chrono::steady_clock::now() < until; ++i) {
      std::vector<std::future<Value>> batch;
      for (int j = 0; j < 20; ++j) batch.push_back(client.Submit("echo", Value::Object({{"n", i * 20 + j}})));
      // textstats: mostly good, one in five breaking its schema (invalid_payload).
      for (int j = 0; j < 5; ++j) {
        batch.push_back(j == 0 ? client.Submit("textstats", Value::Object({{"words", "no text field"}}))
                               : client.Submit("textstats", Value::Object({{"text", "to be or not to be"}, {"top", 2}})));
      }
      for (auto& reply : batch) reply.wait();
      // Not a sleep to synchronise: it paces the traffic to ~200 jobs/s.
      std::this_thread::sleep_for(100ms);
    }
  });
  struct Joiner {
    std::atomic<bool>& stop;
    std::thread& thread;
    ~Joiner() {
      stop = true;
      thread.join();
    }
  } joiner{stop, load};

  const fs::path screenshots = fs::path(COURIER_BINARY_DIR) / "dashboard-screenshots";
  ChildProcess browser(node,
                       {(source / "tests" / "browser" / "dashboard_pages.mjs").string(), "--url", "http://" + http,
                        "--out", screenshots.string(), "--service", "echo", "--dead-service", "flaky", "--chromium",
                        chromium.string()},
                       dir_.path() / "browser.log", env_);
  const int status = browser.Wait(240s);
  ASSERT_TRUE(status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0)
      << "browser run failed (status " << status << "):\n"
      << browser.Log() << "\n--- metrics ---\n"
      << Log("metrics");
  std::cout << browser.Log();

  // The replay clicked in the page ran again on the worker.
  EXPECT_TRUE(Process("healthy").WaitForLog("served 1", 10s)) << Log("healthy");
  for (const char* shot : {"overview.png", "service.png", "errors.png", "replay.png", "jobs.png"}) {
    EXPECT_GT(fs::file_size(screenshots / shot), 10000u) << shot;
  }
}

}  // namespace
}  // namespace courier::test
