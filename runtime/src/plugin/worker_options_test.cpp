#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "courier/error.hpp"
#include "courier/worker.hpp"

namespace courier {
namespace {

using ::testing::HasSubstr;
using namespace std::chrono_literals;

std::string ConfigError(const std::function<void()>& action) {
  try {
    action();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kConfig);
    return e.what();
  }
  return "";
}

TEST(WorkerOptions, DefaultsMatchTheProtocol) {
  const WorkerOptions options = WorkerOptions::FromConfig(ConfigSection::Empty());
  EXPECT_EQ(options.brokers, std::vector<std::string>{"tcp://127.0.0.1:5555"});
  EXPECT_EQ(options.heartbeat_interval, 2500ms);
  EXPECT_EQ(options.heartbeat_liveness, 3u);
  EXPECT_EQ(options.reconnect_initial, 250ms);
  EXPECT_EQ(options.reconnect_max, 8000ms);
  EXPECT_EQ(options.grace_period, 10s);
  EXPECT_EQ(options.threads, 0u);
  EXPECT_TRUE(options.keyring.empty());
  EXPECT_EQ(options.log.level, "info");
  EXPECT_EQ(options.isolation, Isolation::kThread);
  EXPECT_EQ(options.max_memory, 0u);
  EXPECT_EQ(options.max_jobs_per_child, 0u);
  EXPECT_EQ(options.kill_after, 5s);
}

TEST(WorkerOptions, ReadsIsolationAndItsLimits) {
  const WorkerOptions options = WorkerOptions::FromConfig(ConfigSection::Parse(R"(
isolation = "process"
max_memory = "512MiB"
max_jobs_per_child = 1000
kill_after = "2s"
[services.echo]
isolation = "thread"
[services.resize]
capacity = 2
)", "worker.toml"));
  EXPECT_EQ(options.isolation, Isolation::kProcess);
  EXPECT_EQ(options.max_memory, 512u << 20);
  EXPECT_EQ(options.max_jobs_per_child, 1000u);
  EXPECT_EQ(options.kill_after, 2s);
  EXPECT_EQ(ServiceSettings::Read(options.services.Section("echo")).isolation, Isolation::kThread);
  EXPECT_FALSE(ServiceSettings::Read(options.services.Section("resize")).isolation.has_value());
  EXPECT_EQ(WorkerOptions::FromConfig(ConfigSection::Parse("max_memory = 67108864", "w.toml")).max_memory, 64u << 20);
  EXPECT_THAT(ConfigError([] { WorkerOptions::FromConfig(ConfigSection::Parse("isolation = \"fork\"", "w.toml")); }),
              HasSubstr("isolation"));
  EXPECT_THAT(ConfigError([] { WorkerOptions::FromConfig(ConfigSection::Parse("max_memory = \"lots\"", "w.toml")); }),
              HasSubstr("512MiB"));
  EXPECT_THAT(ConfigError([] { WorkerOptions::FromConfig(ConfigSection::Parse("max_memory = \"1MiB\"", "w.toml")); }),
              HasSubstr("at least 16MiB"));
  EXPECT_THAT(ConfigError([] { ServiceSettings::Read(ConfigSection::Parse("isolation = \"vm\"", "s")); }),
              HasSubstr("isolation"));
}

TEST(WorkerOptions, ReadsEverythingAndResolvesPathsAgainstTheFile) {
  const ConfigSection root = ConfigSection::Parse(R"(
brokers = ["tcp://10.0.0.1:5555", "tcp://10.0.0.2:5555"]
keyring = "keys/ring.toml"
threads = 3
heartbeat_interval = "100ms"
heartbeat_liveness = 5
reconnect_initial = 50
reconnect_max = "2s"
grace_period = "3s"
schema_dirs = ["schemas", "/abs/schemas"]
plugin_dir = "plugins"
instance = "blue"
[log]
level = "debug"
[services.echo]
plugin = "echo"
capacity = 4
)", "worker.toml");
  const WorkerOptions options = WorkerOptions::FromConfig(root, "/etc/courier/worker.toml");
  EXPECT_EQ(options.brokers.size(), 2u);
  EXPECT_EQ(options.keyring, "/etc/courier/keys/ring.toml");
  EXPECT_EQ(options.threads, 3u);
  EXPECT_EQ(options.heartbeat_interval, 100ms);
  EXPECT_EQ(options.heartbeat_liveness, 5u);
  EXPECT_EQ(options.reconnect_initial, 50ms);
  EXPECT_EQ(options.reconnect_max, 2s);
  EXPECT_EQ(options.grace_period, 3s);
  EXPECT_EQ(options.schema_dirs,
            (std::vector<std::filesystem::path>{"/etc/courier/schemas", "/abs/schemas"}));
  EXPECT_EQ(options.plugin_dir, "/etc/courier/plugins");
  EXPECT_EQ(options.instance, "blue");
  EXPECT_EQ(options.log.level, "debug");
  EXPECT_EQ(options.config_file, "/etc/courier/worker.toml");
  const ServiceSettings echo = ServiceSettings::Read(options.services.Section("echo"));
  EXPECT_EQ(echo.plugin, "echo");
  EXPECT_EQ(echo.capacity, 4u);
  EXPECT_EQ(echo.weight, 1u);
  EXPECT_FALSE(echo.allow_unsealed);
  EXPECT_EQ(echo.dedup_window, 5min);
}

TEST(WorkerOptions, RejectsTyposAndNonsense) {
  EXPECT_THAT(ConfigError([] { WorkerOptions::FromConfig(ConfigSection::Parse("thread = 2", "w.toml")); }),
              HasSubstr("thread"));
  EXPECT_THAT(ConfigError([] { WorkerOptions::FromConfig(ConfigSection::Parse("brokers = []", "w.toml")); }),
              HasSubstr("at least one broker"));
  EXPECT_THAT(ConfigError([] { WorkerOptions::FromConfig(ConfigSection::Parse("brokers = [\"localhost\"]", "w.toml")); }),
              HasSubstr("not a ZeroMQ endpoint"));
  EXPECT_THAT(ConfigError([] { WorkerOptions::FromConfig(ConfigSection::Parse("[log]\nlevel = \"loud\"", "w.toml")); }),
              HasSubstr("log.level"));
  EXPECT_THAT(ConfigError([] { ServiceSettings::Read(ConfigSection::Parse("capacity = -1", "s")); }),
              HasSubstr("capacity"));
}

class Echo {
 public:
  static constexpr std::string_view kName = "echo";
  explicit Echo(const ConfigSection& config) : prefix_(config.GetString("prefix", "")) {}
  Value Handle(const Value& request) const { return request; }

 private:
  std::string prefix_;
};

WorkerOptions Quiet(std::string_view toml = "") {
  WorkerOptions options = WorkerOptions::FromConfig(ConfigSection::Parse(toml, "worker.toml"));
  options.handle_signals = false;
  return options;
}

TEST(WorkerHost, RegistersTypedServicesWithTheirSection) {
  WorkerHost host(Quiet("[services.echo]\nprefix = \">\"\ncapacity = 2\n"));
  host.Register<Echo>();
  EXPECT_EQ(host.services(), std::vector<std::string>{"echo"});
  EXPECT_EQ(host.StageSnapshot().size(), kStageCount);
}

TEST(WorkerHost, HostRejectsKeysNeitherItNorThePluginRead) {
  WorkerHost host(Quiet("[services.echo]\nprefx = \">\"\n"));
  EXPECT_THAT(ConfigError([&] { host.Register<Echo>(); }), HasSubstr("services.echo.prefx"));
}

TEST(WorkerHost, RefusesTwoServicesOfOneName) {
  WorkerHost host(Quiet());
  host.Register<Echo>(ConfigSection::Empty());
  EXPECT_THAT(ConfigError([&] { host.Register<Echo>(ConfigSection::Empty()); }), HasSubstr("registered twice"));
}

TEST(WorkerHost, RunNeedsServicesAndAProviderForEveryTable) {
  WorkerHost empty(Quiet());
  EXPECT_THAT(ConfigError([&] { empty.Run(); }), HasSubstr("no services"));
  WorkerHost orphan(Quiet("[services.echo]\n[services.resize]\n"));
  orphan.Register<Echo>();
  EXPECT_THAT(ConfigError([&] { orphan.Run(); }), HasSubstr("services.resize: no plugin provides"));
}

TEST(WorkerHost, ExplicitSchemaFilesMustExist) {
  WorkerHost host(Quiet("[services.echo]\nschema = \"/nonexistent/echo.toml\"\n"));
  EXPECT_THAT(ConfigError([&] { host.Register<Echo>(); }), HasSubstr("/nonexistent/echo.toml"));
}

TEST(WorkerOptions, SecurityTableTurnsCurveOn) {
  EXPECT_FALSE(WorkerOptions::FromConfig(ConfigSection::Empty()).curve.enabled());
  const std::string key = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7";
  const WorkerOptions options = WorkerOptions::FromConfig(ConfigSection::Parse(
      "[security]\ncurve = true\nserver_key = \"" + key + "\"\nkey_file = \"/etc/courier/w.key\"\n", "worker.toml"));
  EXPECT_TRUE(options.curve.enabled());
  EXPECT_EQ(options.curve.server_public_key, key);
  EXPECT_EQ(options.curve.key_file, "/etc/courier/w.key");
  EXPECT_THAT(ConfigError([] {
                WorkerOptions::FromConfig(ConfigSection::Parse("[security]\ncurve = true\n", "worker.toml"));
              }),
              HasSubstr("security.curve"));
  // The key file itself is loaded (and its mode checked) when the host is built.
  WorkerOptions missing;
  missing.handle_signals = false;
  missing.curve.server_public_key = key;
  missing.curve.key_file = "/nonexistent/w.key";
  EXPECT_THAT(ConfigError([&] { WorkerHost host(missing); }), HasSubstr("keygen --curve"));
}

}  // namespace
}  // namespace courier
