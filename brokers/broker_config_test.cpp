#include "broker_config.hpp"

#include <gtest/gtest.h>

#include "courier/error.hpp"

namespace courier::broker {
namespace {

TEST(BrokerConfigTest, DefaultsMatchTheSpec) {
  const BrokerConfig config = BrokerConfig::Read(ConfigSection::Empty());
  EXPECT_EQ(config.bind, std::vector<std::string>{"tcp://127.0.0.1:5555"});
  EXPECT_EQ(config.heartbeat_interval, std::chrono::milliseconds(2500));
  EXPECT_EQ(config.heartbeat_liveness, 3u);
  EXPECT_EQ(config.defaults.queue_limit, 100000u);
  EXPECT_EQ(config.defaults.strategy, Strategy::kLeastLoaded);
  EXPECT_EQ(config.defaults.max_crashes, 2u);
}

TEST(BrokerConfigTest, HostilePeerBoundsHaveDefaultsAndAreRead) {
  const BrokerConfig defaults = BrokerConfig::Read(ConfigSection::Empty());
  EXPECT_EQ(defaults.defaults.max_queued_bytes, 256u << 20);
  EXPECT_EQ(defaults.max_total_queued_bytes, std::size_t{1} << 30);
  EXPECT_EQ(defaults.max_deadline, std::chrono::hours(24));
  EXPECT_EQ(defaults.send_hwm, 1000);
  EXPECT_EQ(defaults.max_connections, 10000u);
  EXPECT_EQ(defaults.service_grace, std::chrono::seconds(10));
  EXPECT_EQ(defaults.new_services_per_peer, 100u);
  const auto config = BrokerConfig::Read(ConfigSection::Parse(R"(
max_total_queued_bytes = 2147483648
max_deadline = "1h"
send_hwm = 5000
max_connections = 300
service_grace = "2s"
new_services_per_peer = 7
new_services_window = "1s"
[defaults]
max_queued_bytes = 1048576
[services.big]
max_queued_bytes = 8388608
)", "broker.toml"));
  EXPECT_EQ(config.max_total_queued_bytes, std::size_t{2} << 30);
  EXPECT_EQ(config.max_deadline, std::chrono::hours(1));
  EXPECT_EQ(config.send_hwm, 5000);
  EXPECT_EQ(config.max_connections, 300u);
  EXPECT_EQ(config.service_grace, std::chrono::seconds(2));
  EXPECT_EQ(config.new_services_per_peer, 7u);
  EXPECT_EQ(config.new_services_window, std::chrono::seconds(1));
  EXPECT_EQ(config.PolicyFor("other").max_queued_bytes, 1u << 20);
  EXPECT_EQ(config.PolicyFor("big").max_queued_bytes, 8u << 20);
}

TEST(BrokerConfigTest, ServiceSectionsOverrideDefaults) {
  const auto config = BrokerConfig::Read(ConfigSection::Parse(R"(
bind = ["tcp://127.0.0.1:7000", "ipc:///tmp/courier.sock"]
heartbeat_interval = "500ms"
[defaults]
queue_limit = 50
max_crashes = 5
[services.hash]
strategy = "weighted"
[services.fragile]
max_crashes = 1
[log]
level = "debug"
)", "broker.toml"));
  EXPECT_EQ(config.bind.size(), 2u);
  EXPECT_EQ(config.heartbeat_interval, std::chrono::milliseconds(500));
  EXPECT_EQ(config.PolicyFor("hash").strategy, Strategy::kWeighted);
  EXPECT_EQ(config.PolicyFor("hash").queue_limit, 50u);  // inherits [defaults]
  EXPECT_EQ(config.PolicyFor("other").strategy, Strategy::kLeastLoaded);
  EXPECT_EQ(config.PolicyFor("hash").max_crashes, 5u);  // inherits [defaults]
  EXPECT_EQ(config.PolicyFor("fragile").max_crashes, 1u);
  EXPECT_EQ(config.log.level, "debug");
}

void ExpectConfigError(const std::string& text, const std::string& fragment) {
  try {
    BrokerConfig::Read(ConfigSection::Parse(text, "broker.toml"));
    FAIL() << "accepted: " << text;
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), ErrorCode::kConfig);
    EXPECT_NE(std::string(error.what()).find(fragment), std::string::npos) << error.what();
    EXPECT_NE(std::string(error.what()).find("broker.toml"), std::string::npos) << error.what();
  }
}

TEST(BrokerConfigTest, RejectsBadValuesNamingTheKey) {
  ExpectConfigError("heartbeat_liveness = 0\n", "heartbeat_liveness");
  ExpectConfigError("bind = []\n", "bind");
  ExpectConfigError("[services.x]\nstrategy = \"fastest\"\n", "strategy");
  ExpectConfigError("[services.x]\nqueue_limt = 3\n", "queue_limt");
  ExpectConfigError("heartbeat = 3\n", "heartbeat");
  ExpectConfigError("max_message_bytes = \"big\"\n", "max_message_bytes");
  ExpectConfigError("[defaults]\nmax_crashes = 0\n", "max_crashes");
  ExpectConfigError("[services.x]\nmax_crashes = 101\n", "max_crashes");
}

}  // namespace
}  // namespace courier::broker
