// Every stage the design names is timed (issue 19), end to end: a real courier-broker,
// courier-error-sink, courier-metrics and courier-worker (the testkit plugin under a payload
// schema with a [reply]), and a courier::Client that reports its own stages. A reply that
// breaks the [reply] reaches the client as invalid_reply and the sink as a record; after
// successes, handler failures and schema failures every stage shows a non-zero count in
// `courier metrics --json` and in the collector's Prometheus text.
#include <httplib.h>

#include <cstdlib>
#include <map>
#include <set>
#include <sstream>

#include "courier/client.hpp"
#include "courier/keyring.hpp"
#include "services_fixture.hpp"

namespace courier::test {
namespace {

using namespace std::chrono_literals;

// testkit echoes {action: "echo", n}; the request allows any integer n, the reply only
// n >= 0, so n = -1 is a request the schema admits whose reply it refuses.
constexpr std::string_view kSchema = R"(
service = "testkit"

[request]
type = "map"
[request.fields.action]
type = "string"
required = true
[request.fields.n]
type = "integer"

[reply]
type = "map"
[reply.fields.n]
type = "integer"
min = 0
)";

struct Expected {
  std::string service;
  std::string process;
  std::string stage;
};

// Every stage of issue 19 with the service it is reported under in this run.
const std::vector<Expected>& EveryStage() {
  static const std::vector<Expected> kAll = {
      {"testkit", "worker", "key"},           {"testkit", "worker", "open"},
      {"testkit", "worker", "parse"},         {"testkit", "worker", "verify"},
      {"testkit", "worker", "handle"},        {"testkit", "worker", "convert"},
      {"testkit", "worker", "reply_verify"},  {"testkit", "worker", "seal"},
      {"testkit", "worker", "send"},          {"testkit", "worker", "error_capture"},
      {"testkit", "worker", "error_send"},    {"courier.errors", "worker", "error_handle"},
      {"testkit", "client", "key"},           {"testkit", "client", "seal"},
      {"testkit", "broker", "queue_wait"},    {"testkit", "broker", "lb_strategy"},
      {"testkit", "broker", "dispatch"},      {"*", "broker", "lb_monitor"},
  };
  return kAll;
}

class StagesIntegrationTest : public ServicesFixture {
 protected:
  void SetUp() override {
    http_port_ = FreePort();
    StartBroker();
    StartSink();  // creates the keyring every process here shares (XDG_CONFIG_HOME)
    StartMetrics("127.0.0.1:" + std::to_string(http_port_));
  }

  void StartWorker(const std::string& extra = {}) {
    dir_.Write("testkit.toml", std::string(kSchema));
    const auto config = dir_.Write(
        "worker.toml", "brokers = [\"" + endpoint_ + "\"]\nheartbeat_interval = \"200ms\"\nthreads = 2\n" + extra +
                           "\n[services.testkit]\nplugin = \"" + PluginPath("testkit").string() +
                           "\"\nschema = \"testkit.toml\"\n");
    Start("worker", BinaryPath("courier-worker"), {"--config", config.string()});
    ASSERT_TRUE(WaitForService("testkit")) << Log("worker");
  }

  ClientOptions ClientFor() const {
    ClientOptions options;
    options.brokers = {endpoint_};
    options.keyring_path = dir_.path() / "config" / "courier" / "keyring.toml";
    options.deadline = 20s;
    options.report = true;
    return options;
  }

  // Returns: the error code a call failed with, or nullopt if it succeeded.
  static std::optional<Error> CallFails(Client& client, const Value& request) {
    try {
      client.Call("testkit", request);
      return std::nullopt;
    } catch (const Error& e) {
      return e;
    }
  }

  // Returns: the count of (service, process, stage) in the "all" window of a stats table
  // (count + errors when `with_errors`), or 0 if absent.
  static std::uint64_t Count(const Value& stats, const Expected& want, bool with_errors = false) {
    for (const Value& entry : stats.At("stages").AsArray()) {
      if (entry.At("service").AsString() != want.service || entry.At("process").AsString() != want.process ||
          entry.At("stage").AsString() != want.stage) {
        continue;
      }
      const Value& all = entry.At("windows").At("all");
      return all.At("count").AsUint() + (with_errors ? all.At("errors").AsUint() : 0);
    }
    return 0;
  }

  // Returns: the value of courier_stage_duration_seconds_count for the series, or -1.
  static long long PrometheusCount(const std::string& text, const Expected& want) {
    const std::string prefix = "courier_stage_duration_seconds_count{service=\"" + want.service + "\",process=\"" +
                               want.process + "\",stage=\"" + want.stage + "\"} ";
    const std::size_t at = text.find(prefix);
    if (at == std::string::npos) return -1;
    return std::atoll(text.c_str() + at + prefix.size());
  }

  std::string MetricsPage() {
    httplib::Client client("127.0.0.1", http_port_);
    client.set_connection_timeout(5, 0);
    client.set_read_timeout(5, 0);
    auto response = client.Get("/metrics");
    if (!response || response->status != 200) return {};
    return response->body;
  }

  int http_port_ = 0;
};

TEST_F(StagesIntegrationTest, AReplyThatBreaksItsSchemaIsInvalidReplyAndEveryStageIsTimed) {
  StartWorker();
  Client client(ClientFor());
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(client.Call("testkit", Value::Object({{"action", "echo"}, {"n", i}})).At("n").AsInt(), i);
  }
  // The schema failure this issue adds: the handler's reply breaks [reply].
  const std::optional<Error> bad_reply = CallFails(client, Value::Object({{"action", "echo"}, {"n", -1}}));
  ASSERT_TRUE(bad_reply.has_value());
  EXPECT_EQ(bad_reply->code(), ErrorCode::kInvalidReply) << bad_reply->what();
  EXPECT_NE(std::string(bad_reply->what()).find("reply.n"), std::string::npos) << bad_reply->what();
  // A request schema failure and handler failures.
  const std::optional<Error> bad_request = CallFails(client, Value::Object({{"action", 5}}));
  ASSERT_TRUE(bad_request.has_value());
  EXPECT_EQ(bad_request->code(), ErrorCode::kInvalidPayload);
  for (int i = 0; i < 2; ++i) {
    const std::optional<Error> failed =
        CallFails(client, Value::Object({{"action", "throw"}, {"message", "boom " + std::to_string(i)}}));
    ASSERT_TRUE(failed.has_value());
    EXPECT_EQ(failed->code(), ErrorCode::kHandlerError);
  }

  // The sink holds a record of the bad reply naming the field, at stage reply_verify.
  Value rows;
  ASSERT_TRUE(WaitFor(
      [&] {
        rows = Ask("courier.errors", Value::Object({{"op", "list"}, {"code", "invalid_reply"}}));
        return rows.At("reports").size() == 1;
      },
      20s))
      << ToJson(rows) << Log("worker");
  const Value& row = rows.At("reports").AsArray()[0];
  EXPECT_EQ(row.At("service").AsString(), "testkit");
  EXPECT_EQ(row.At("stage").AsString(), "reply_verify");
  EXPECT_EQ(row.At("code_name").AsString(), "invalid_reply");
  EXPECT_NE(row.At("message").AsString().find("reply.n"), std::string::npos) << ToJson(row);

  // Every stage, with a non-zero count, in `courier metrics --json`...
  Value stats;
  std::string missing;
  const bool all_seen = WaitFor(
      [&] {
        const CliResult json = Cli({"metrics", "--json"});
        if (json.status != 0) return false;
        stats = JsonOf(json);
        missing.clear();
        for (const Expected& want : EveryStage()) {
          if (Count(stats, want) == 0) missing += " " + want.service + "/" + want.process + "/" + want.stage;
        }
        return missing.empty();
      },
      30s);
  ASSERT_TRUE(all_seen) << "missing:" << missing << "\n" << ToJson(stats) << Log("worker");
  // The successes verified their replies; the bad one failed in reply_verify.
  EXPECT_GE(Count(stats, {"testkit", "worker", "reply_verify"}), 5u);
  EXPECT_EQ(Count(stats, {"testkit", "worker", "reply_verify"}, true) -
                Count(stats, {"testkit", "worker", "reply_verify"}),
            1u);
  // One error report built per failure (bad reply, bad request, two throws).
  EXPECT_EQ(Count(stats, {"testkit", "worker", "error_capture"}), 4u);
  for (const Value& entry : stats.At("stages").AsArray()) {
    if (entry.At("stage").AsString() == "reply_verify") {
      EXPECT_EQ(entry.At("group").AsString(), "response");
    }
    if (entry.At("stage").AsString() == "lb_monitor") {
      EXPECT_EQ(entry.At("group").AsString(), "load_balancing");
    }
  }

  // ...and in the collector's Prometheus text.
  std::string page;
  ASSERT_TRUE(WaitFor(
      [&] {
        page = MetricsPage();
        missing.clear();
        for (const Expected& want : EveryStage()) {
          if (PrometheusCount(page, want) <= 0) missing += " " + want.service + "/" + want.process + "/" + want.stage;
        }
        return missing.empty();
      },
      20s))
      << "missing:" << missing << "\n" << page;
  EXPECT_NE(page.find("courier_stage_group_info{process=\"worker\",stage=\"error_capture\",group=\"error\"} 1"),
            std::string::npos);

  // The table by group shows the design's groups, each stage under its own.
  const CliResult table = Cli({"metrics", "--window", "all", "--by", "group", "--service", "testkit"});
  ASSERT_EQ(table.status, 0) << table.output;
  std::set<std::string> seen_groups;
  std::string current;
  std::istringstream lines(table.output);
  std::string line;
  std::map<std::string, std::string> group_of;  // "process/stage" → group it was listed under
  while (std::getline(lines, line)) {
    std::istringstream cells(line);
    std::vector<std::string> words;
    for (std::string word; cells >> word;) words.push_back(word);
    if (words.size() < 4 || words[0] == "GROUP") continue;
    // A group's first row starts with its name ("load balancing" is two words).
    std::size_t at = 0;
    if (words[0] == "request" || words[0] == "response" || words[0] == "error" || words[0] == "crypto") {
      current = words[0];
      at = 1;
    } else if (words[0] == "load" && words[1] == "balancing") {
      current = "load_balancing";
      at = 2;
    }
    if (words.size() < at + 3 || words[at] != "testkit") continue;
    seen_groups.insert(current);
    group_of[words[at + 1] + "/" + words[at + 2]] = current;
  }
  EXPECT_EQ(seen_groups, (std::set<std::string>{"request", "response", "error", "crypto", "load_balancing"}))
      << table.output;
  EXPECT_EQ(group_of["worker/reply_verify"], "response") << table.output;
  EXPECT_EQ(group_of["worker/error_capture"], "error") << table.output;
  EXPECT_EQ(group_of["client/key"], "crypto") << table.output;
  EXPECT_EQ(group_of["broker/lb_strategy"], "load_balancing") << table.output;
  EXPECT_EQ(group_of["worker/parse"], "request") << table.output;
}

TEST_F(StagesIntegrationTest, VerifyRepliesOffLetsTheReplyThrough) {
  StartWorker("verify_replies = false");
  Client client(ClientFor());
  EXPECT_EQ(client.Call("testkit", Value::Object({{"action", "echo"}, {"n", -1}})).At("n").AsInt(), -1);
  Value rows = Ask("courier.errors", Value::Object({{"op", "list"}, {"code", "invalid_reply"}}));
  EXPECT_EQ(rows.At("reports").size(), 0u) << ToJson(rows);
}

}  // namespace
}  // namespace courier::test
