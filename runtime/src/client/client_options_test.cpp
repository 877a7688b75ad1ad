// ClientOptions: client.toml, COURIER_* environment, validation.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>

#include "courier/client.hpp"
#include "courier/config.hpp"
#include "courier/error.hpp"

namespace courier {
namespace {

using namespace std::chrono_literals;

ErrorCode CodeOf(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& error) {
    return error.code();
  }
  return ErrorCode::kInternal;
}

TEST(ClientOptionsTest, DefaultsAreValidAndDocumented) {
  const ClientOptions options;
  EXPECT_NO_THROW(options.Validate());
  EXPECT_EQ(options.brokers, std::vector<std::string>{"tcp://127.0.0.1:5555"});
  EXPECT_TRUE(options.keyring_path.empty());
  EXPECT_EQ(options.deadline, 30s);
  EXPECT_EQ(options.max_attempts, 3u);
  EXPECT_EQ(options.max_in_flight, 10000u);
  EXPECT_EQ(options.overflow, OverflowPolicy::kBlock);
  EXPECT_EQ(options.failover_timeout, 3s);
  EXPECT_EQ(options.retry.max_retries, 3u);
}

TEST(ClientOptionsTest, ReadsEveryKey) {
  const auto section = ConfigSection::Parse(R"(
brokers = ["tcp://a:1", "tcp://b:2"]
keyring = "/etc/courier/keyring.toml"
deadline = "5s"
max_attempts = 2
max_in_flight = 64
overflow = "fail_fast"
failover_timeout = "1500ms"
heartbeat_interval = 500
[retry]
max_retries = 5
initial_backoff = "10ms"
max_backoff = "1s"
multiplier = 3.0
jitter = 0.5
)", "client.toml");
  const ClientOptions options = ClientOptions::FromConfig(section);
  EXPECT_EQ(options.brokers, (std::vector<std::string>{"tcp://a:1", "tcp://b:2"}));
  EXPECT_EQ(options.keyring_path, "/etc/courier/keyring.toml");
  EXPECT_EQ(options.deadline, 5s);
  EXPECT_EQ(options.max_attempts, 2u);
  EXPECT_EQ(options.max_in_flight, 64u);
  EXPECT_EQ(options.overflow, OverflowPolicy::kFailFast);
  EXPECT_EQ(options.failover_timeout, 1500ms);
  EXPECT_EQ(options.heartbeat_interval, 500ms);
  EXPECT_EQ(options.retry.max_retries, 5u);
  EXPECT_EQ(options.retry.initial_backoff, 10ms);
  EXPECT_EQ(options.retry.max_backoff, 1s);
  EXPECT_DOUBLE_EQ(options.retry.multiplier, 3.0);
  EXPECT_DOUBLE_EQ(options.retry.jitter, 0.5);
  EXPECT_NO_THROW(options.Validate());
}

TEST(ClientOptionsTest, RejectsUnknownKeysAndBadValues) {
  EXPECT_EQ(CodeOf([] { ClientOptions::FromConfig(ConfigSection::Parse("brokerz = []", "c.toml")); }),
            ErrorCode::kConfig);
  EXPECT_EQ(CodeOf([] { ClientOptions::FromConfig(ConfigSection::Parse("[retry]\nmax_retrys = 1", "c.toml")); }),
            ErrorCode::kConfig);
  EXPECT_EQ(CodeOf([] { ClientOptions::FromConfig(ConfigSection::Parse("brokers = []", "c.toml")); }),
            ErrorCode::kConfig);
  EXPECT_EQ(CodeOf([] { ClientOptions::FromConfig(ConfigSection::Parse("overflow = \"drop\"", "c.toml")); }),
            ErrorCode::kConfig);
  EXPECT_EQ(CodeOf([] {
              ClientOptions::FromConfig(ConfigSection::Parse("failover_timeout = 100\nheartbeat_interval = 100", "c.toml"));
            }),
            ErrorCode::kConfig);
  try {
    ClientOptions::FromConfig(ConfigSection::Parse("max_in_flight = 0", "client.toml"));
    FAIL();
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("client.toml"), std::string::npos) << error.what();
    EXPECT_NE(std::string(error.what()).find("max_in_flight"), std::string::npos) << error.what();
  }
}

TEST(ClientOptionsTest, AKeyringPathIsRelativeToItsFile) {
  const auto dir = std::filesystem::temp_directory_path() / ("courier-client-options-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const auto file = dir / "client.toml";
  {
    std::ofstream out(file);
    out << "keyring = \"keys/k.toml\"\n";
  }
  EXPECT_EQ(ClientOptions::FromConfig(ConfigSection::LoadFile(file)).keyring_path, dir / "keys" / "k.toml");
  std::filesystem::remove_all(dir);
}

TEST(ClientOptionsTest, AllowsSectionsTheCallerAlreadyRead) {
  const auto section = ConfigSection::Parse("deadline = 100\n[log]\nlevel = \"debug\"\n", "client.toml");
  (void)section.Section("log").GetString("level", "info");
  EXPECT_EQ(ClientOptions::FromConfig(section).deadline, 100ms);
}

TEST(ClientOptionsTest, EnvironmentOverridesFields) {
  std::map<std::string, std::string, std::less<>> env{
      {"COURIER_BROKERS", " tcp://x:1 , tcp://y:2,, "},
      {"COURIER_KEYRING", "/k.toml"},
      {"COURIER_DEADLINE_MS", "2500"},
  };
  auto lookup = [&](std::string_view name) -> std::optional<std::string> {
    const auto it = env.find(name);
    if (it == env.end()) return std::nullopt;
    return it->second;
  };
  ClientOptions options;
  options.ApplyEnvironment(lookup);
  EXPECT_EQ(options.brokers, (std::vector<std::string>{"tcp://x:1", "tcp://y:2"}));
  EXPECT_EQ(options.keyring_path, "/k.toml");
  EXPECT_EQ(options.deadline, 2500ms);

  env = {{"COURIER_BROKERS", ""}};
  ClientOptions unchanged;
  unchanged.ApplyEnvironment(lookup);
  EXPECT_EQ(unchanged.brokers, ClientOptions{}.brokers);

  env = {{"COURIER_DEADLINE_MS", "5s"}};
  EXPECT_EQ(CodeOf([&] { ClientOptions().ApplyEnvironment(lookup); }), ErrorCode::kConfig);
  env = {{"COURIER_DEADLINE_MS", "0"}};
  EXPECT_EQ(CodeOf([&] { ClientOptions().ApplyEnvironment(lookup); }), ErrorCode::kConfig);
}

TEST(ClientOptionsTest, ValidateNamesTheField) {
  ClientOptions options;
  options.brokers.clear();
  EXPECT_EQ(CodeOf([&] { options.Validate(); }), ErrorCode::kConfig);
  options = ClientOptions{};
  options.max_in_flight = 0;
  EXPECT_EQ(CodeOf([&] { options.Validate(); }), ErrorCode::kConfig);
  options = ClientOptions{};
  options.retry.jitter = 1.5;
  EXPECT_EQ(CodeOf([&] { options.Validate(); }), ErrorCode::kConfig);
  options = ClientOptions{};
  options.heartbeat_interval = options.failover_timeout;
  EXPECT_EQ(CodeOf([&] { options.Validate(); }), ErrorCode::kConfig);
}

TEST(ClientOptionsTest, ClientRefusesInvalidOptionsAndBadEndpoints) {
  ClientOptions options;
  options.keyring = std::make_shared<const Keyring>(Keyring::Generate());
  options.max_in_flight = 0;
  EXPECT_EQ(CodeOf([&] { Client client(options); }), ErrorCode::kConfig);
  options.max_in_flight = 1;
  options.brokers = {"not-an-endpoint"};
  EXPECT_EQ(CodeOf([&] { Client client(options); }), ErrorCode::kConfig);
  options.keyring = std::make_shared<const Keyring>();  // no key at all
  options.brokers = {"tcp://127.0.0.1:1"};
  EXPECT_EQ(CodeOf([&] { Client client(options); }), ErrorCode::kConfig);
}

TEST(ClientOptionsTest, SecurityTableAndEnvironmentSetCurve) {
  const auto dir = std::filesystem::temp_directory_path() / ("courier-client-curve-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const CurveKeyPair server = GenerateCurveKeyPair("broker");
  SaveCurveKeyPair(dir / "client.key", GenerateCurveKeyPair("client-a"));
  {
    std::ofstream(dir / "client.toml") << "[security]\ncurve = true\nserver_key = \"" << server.public_key
                                       << "\"\nkey_file = \"client.key\"\n";
    std::ofstream(dir / "broker.pub") << server.public_key << "\n";
  }
  const ClientOptions options = ClientOptions::FromConfig(ConfigSection::LoadFile(dir / "client.toml"));
  EXPECT_TRUE(options.curve.enabled());
  EXPECT_EQ(options.curve.server_public_key, server.public_key);
  EXPECT_EQ(options.curve.key_file, dir / "client.key");
  EXPECT_NO_THROW(options.Validate());

  std::map<std::string, std::string, std::less<>> env{{"COURIER_CURVE_SERVER_KEY", (dir / "broker.pub").string()},
                                                      {"COURIER_CURVE_KEY", "/elsewhere/c.key"}};
  auto lookup = [&](std::string_view name) -> std::optional<std::string> {
    const auto it = env.find(name);
    if (it == env.end()) return std::nullopt;
    return it->second;
  };
  ClientOptions from_env;
  from_env.ApplyEnvironment(lookup);
  EXPECT_EQ(from_env.curve.server_public_key, server.public_key);
  EXPECT_EQ(from_env.curve.key_file, "/elsewhere/c.key");

  ClientOptions half;  // a key pair without the broker's key would silently go unencrypted
  half.curve.key_file = dir / "client.key";
  EXPECT_EQ(CodeOf([&] { half.Validate(); }), ErrorCode::kConfig);
  ClientOptions no_pair;
  no_pair.curve.server_public_key = server.public_key;
  EXPECT_EQ(CodeOf([&] { no_pair.Validate(); }), ErrorCode::kConfig);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace courier
