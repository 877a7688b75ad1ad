// Where courier-worker finds a service's payload schema (issue 17): `schema = FILE`
// relative to the config file, `schema_dirs` (relative to the config file) and
// --schema-dir, NAME.toml beside the plugin's .so; a schema file named but missing stops
// the host (exit 2) instead of serving unchecked; the working directory is never searched.
// Each case proves the schema is in force: a request it forbids is answered
// invalid_payload, one it allows is served.
#include <sys/wait.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>

#include "worker_support.hpp"

namespace courier::test {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

// echo with a schema: the request must be a map with an integer "n" in [1, 10].
constexpr const char* kStrictEcho = R"(service = "echo"
[request]
type = "map"
[request.fields.n]
type = "integer"
required = true
min = 1
max = 10
)";

class WorkerSchemas : public ::testing::Test {
 protected:
  void SetUp() override {
    keyring_path_ = WriteKeyring(dir_, keyring_);
    broker_ = StartBroker(dir_, endpoint_);
  }

  // A worker.toml for the test broker: `root` adds root keys, `echo` keys of [services.echo].
  std::string Config(const std::string& root, const std::string& echo) const {
    return "brokers = [\"" + endpoint_ + "\"]\nkeyring = \"" + keyring_path_.string() +
           "\"\nthreads = 2\nheartbeat_interval = \"" + std::to_string(kTestHeartbeat.count()) +
           "ms\"\nheartbeat_liveness = " + std::to_string(kTestLiveness) + "\n" + root +
           "\n[services.echo]\nplugin = \"" + PluginPath("echo").string() + "\"\n" + echo;
  }

  fs::path WriteSchema(const fs::path& relative) const {
    const fs::path file = dir_.path() / relative;
    fs::create_directories(file.parent_path());
    std::ofstream(file) << kStrictEcho;
    return file;
  }

  // The schema is in force: {"n": 0} is refused before the handler, {"n": 3} echoed.
  void ExpectEnforced(const ChildProcess& worker) {
    RawClient client(endpoint_, keyring_);
    const Answer refused = client.Call("echo", Value::Object({{"n", 0}}));
    EXPECT_FALSE(refused.ok) << worker.Log();
    EXPECT_EQ(refused.code, ErrorCode::kInvalidPayload) << refused.message;
    EXPECT_THAT(refused.message, HasSubstr("request.n"));
    const Answer served = client.Call("echo", Value::Object({{"n", 3}}));
    EXPECT_TRUE(served.ok) << served.message;
  }

  TempDir dir_;
  Keyring keyring_;
  fs::path keyring_path_;
  std::string endpoint_ = FreeEndpoint();
  std::unique_ptr<ChildProcess> broker_;
};

TEST_F(WorkerSchemas, ANamedSchemaIsRelativeToTheConfigFile) {
  const fs::path schema = WriteSchema("conf-schemas/strict-echo.toml");
  auto worker = StartWorker(dir_, Config("", "schema = \"conf-schemas/strict-echo.toml\"\n"));
  EXPECT_THAT(worker->Log(), HasSubstr("schema " + schema.string()));
  ExpectEnforced(*worker);
}

TEST_F(WorkerSchemas, SchemaDirsOfTheConfigFileAndTheSchemaDirFlagAreSearched) {
  const fs::path from_file = WriteSchema("from-file/echo.toml");
  auto worker = StartWorker(dir_, Config("schema_dirs = [\"from-file\"]", ""));
  EXPECT_THAT(worker->Log(), HasSubstr("schema " + from_file.string()));
  ExpectEnforced(*worker);
  worker.reset();

  const fs::path from_flag = WriteSchema("from-flag/echo.toml");
  auto flagged = StartWorker(dir_, Config("schema_dirs = [\"from-file\"]", ""), "flagged",
                             {"--schema-dir", from_flag.parent_path().string()});
  EXPECT_THAT(flagged->Log(), HasSubstr("schema " + from_flag.string())) << "the flag's folder comes first";
  ExpectEnforced(*flagged);
}

TEST_F(WorkerSchemas, NameDotTomlBesideThePluginIsFound) {
  const fs::path plugins = dir_.path() / "plugins";
  fs::create_directories(plugins);
  fs::copy_file(PluginPath("echo"), plugins / "libecho.so");
  const fs::path schema = WriteSchema("plugins/echo.toml");
  const std::string config = "brokers = [\"" + endpoint_ + "\"]\nkeyring = \"" + keyring_path_.string() +
                             "\"\nheartbeat_interval = \"" + std::to_string(kTestHeartbeat.count()) +
                             "ms\"\nheartbeat_liveness = " + std::to_string(kTestLiveness) +
                             "\n[services.echo]\nplugin = \"plugins/libecho.so\"\n";
  auto worker = StartWorker(dir_, config);
  EXPECT_THAT(worker->Log(), HasSubstr("schema " + schema.string()));
  ExpectEnforced(*worker);
}

TEST_F(WorkerSchemas, AMissingNamedSchemaStopsTheWorker) {
  const fs::path file = dir_.Write("worker.toml", Config("", "schema = \"nowhere/echo.toml\"\n"));
  ChildProcess worker(BinaryPath("courier-worker"), {"--config", file.string()}, dir_.path() / "missing.log");
  const int status = worker.Wait(std::chrono::seconds(30));
  ASSERT_NE(status, -1) << worker.Log();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 2) << worker.Log();
  EXPECT_THAT(worker.Log(), HasSubstr((dir_.path() / "nowhere/echo.toml").string() + " (services.echo.schema) does not exist"));
  EXPECT_THAT(worker.Log(), ::testing::Not(HasSubstr("serving [")));
}

TEST_F(WorkerSchemas, TheWorkingDirectoryIsNeverSearched) {
  WriteSchema("schemas/services/echo.toml");
  WriteSchema("echo.toml");
  const fs::path file = dir_.Write("worker.toml", Config("", ""));
  ChildProcess worker("/bin/sh",
                      {"-c", "cd '" + dir_.path().string() + "' && exec '" + BinaryPath("courier-worker").string() +
                                 "' --config '" + file.string() + "'"},
                      dir_.path() / "cwd.log", {"XDG_CONFIG_HOME=" + dir_.path().string()});
  ASSERT_TRUE(worker.WaitForLog("serving [", std::chrono::seconds(10))) << worker.Log();
  EXPECT_THAT(worker.Log(), HasSubstr("schema none"));
  RawClient client(endpoint_, keyring_);
  const Answer served = client.Call("echo", Value::Object({{"n", 0}}));
  EXPECT_TRUE(served.ok) << served.message;
}

}  // namespace
}  // namespace courier::test
