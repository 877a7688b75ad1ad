// The plugin SDK as an outsider uses it: `cmake --install` the tree into a prefix, build
// services/plugins/echo on its own with find_package(Courier) + Courier::plugin, and serve
// it with the installed courier-worker through a broker.
#include <sys/wait.h>

#include <gtest/gtest.h>

#include "worker_support.hpp"

namespace courier::test {
namespace {

namespace fs = std::filesystem;

// Runs a shell command, its output going to dir/NAME.log. Returns: whether it exited 0.
bool Sh(const TempDir& dir, const std::string& name, const std::string& command, std::string* log = nullptr) {
  ChildProcess process("/bin/sh", {"-c", command}, dir.path() / (name + ".log"));
  const int status = process.Wait(std::chrono::minutes(8));
  if (log != nullptr) *log = process.Log();
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

std::string Quote(const fs::path& path) { return "'" + path.string() + "'"; }

TEST(PluginSdk, EchoBuildsOutOfTreeAgainstAnInstalledCourierAndServes) {
  TempDir dir;
  const fs::path prefix = dir.path() / "prefix";
  const fs::path build = dir.path() / "echo-build";
  const std::string cmake = Quote(COURIER_CMAKE_COMMAND);
  std::string log;

  ASSERT_TRUE(Sh(dir, "install", cmake + " --install " + Quote(COURIER_BUILD_DIR) + " --prefix " + Quote(prefix), &log))
      << log;
  for (const char* file : {"include/courier/plugin.hpp", "include/courier/version.hpp", "bin/courier-worker",
                           "lib/cmake/Courier/CourierConfig.cmake", "lib/courier/libecho.so"}) {
    EXPECT_TRUE(fs::exists(prefix / file)) << file;
  }

  ASSERT_TRUE(Sh(dir, "configure",
                 cmake + " -S " + Quote(fs::path(COURIER_SOURCE_DIR) / "services/plugins/echo") + " -B " +
                     Quote(build) + " -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH=" + Quote(prefix),
                 &log))
      << log;
  ASSERT_TRUE(Sh(dir, "build", cmake + " --build " + Quote(build), &log)) << log;
  const fs::path plugin = build / "libecho.so";
  ASSERT_TRUE(fs::exists(plugin));

  // The installed worker serves the out-of-tree plugin.
  Keyring keyring;
  const fs::path keyring_path = WriteKeyring(dir, keyring);
  const std::string endpoint = FreeEndpoint();
  auto broker = StartBroker(dir, endpoint);
  // Heartbeats as short as the test broker's (brokers and workers must agree on them).
  const fs::path config = dir.Write("worker.toml", "heartbeat_interval = \"" + std::to_string(kTestHeartbeat.count()) +
                                                       "ms\"\nheartbeat_liveness = " + std::to_string(kTestLiveness) + "\n");
  ChildProcess worker(prefix / "bin/courier-worker",
                      {"--config", config.string(), "--plugin", plugin.string(), "--broker", endpoint, "--keyring",
                       keyring_path.string()},
                      dir.path() / "worker.log");
  ASSERT_TRUE(worker.WaitForLog("serving [echo]", 10s)) << worker.Log();
  RawClient client(endpoint, keyring);
  const Answer answer = client.Call("echo", Value::Object({{"from", "outside"}}));
  ASSERT_TRUE(answer.ok) << answer.message << "\n" << worker.Log();
  EXPECT_EQ(answer.reply, Value::Object({{"from", "outside"}}));
}

}  // namespace
}  // namespace courier::test
