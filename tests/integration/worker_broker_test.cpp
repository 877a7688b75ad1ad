// courier-worker serving jobs through the real courier-broker, with a raw-frame client:
// the example plugins, every client-visible error path, a crashing plugin, SIGTERM in the
// middle of jobs, a broker restart, and duplicate suppression.
#include <signal.h>
#include <sys/wait.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "worker_support.hpp"

namespace courier::test {
namespace {

using ::testing::HasSubstr;

const std::string kServices = R"(
[services.echo]
plugin = "echo"

[services.textstats]
plugin = "textstats"
default_top = 3

[services.testkit]
plugin = "testkit"
capacity = 4

[services."testkit.once"]
plugin = "testkit"
)";

class WorkerBrokerTest : public ::testing::Test {
 protected:
  WorkerBrokerTest() : endpoint_(FreeEndpoint()) {
    keyring_path_ = WriteKeyring(dir_, keyring_);
    broker_ = StartBroker(dir_, endpoint_);
  }

  std::unique_ptr<ChildProcess> Worker(const std::string& name = "worker", int threads = 4,
                                       const std::string& services = kServices) {
    return StartWorker(dir_, WorkerConfig({endpoint_}, keyring_path_, services, threads), name);
  }

  TempDir dir_;
  std::string endpoint_;
  Keyring keyring_;
  std::filesystem::path keyring_path_;
  std::unique_ptr<ChildProcess> broker_;
};

Value Testkit(std::initializer_list<std::pair<std::string, Value>> fields) { return Value::Object(fields); }

TEST_F(WorkerBrokerTest, ServesTheExamplePluginsThroughTheBroker) {
  auto worker = Worker();
  RawClient client(endpoint_, keyring_);

  const Value hello = Value::Object({{"hello", "world"}, {"n", 3}, {"bin", Binary{"\x00\x01"}}});
  const Answer echo = client.Call("echo", hello);
  ASSERT_TRUE(echo.ok) << ToString(echo.code) << ": " << echo.message;
  EXPECT_EQ(echo.reply, hello);
  EXPECT_NE(echo.key_id, kUnsealedKeyId);  // sealed request, sealed reply

  const Answer stats = client.Call("textstats", Value::Object({{"text", "b a b c b a\nd"}}));
  ASSERT_TRUE(stats.ok) << stats.message;
  EXPECT_EQ(stats.reply.At("words").AsInt(), 7);
  EXPECT_EQ(stats.reply.At("unique").AsInt(), 4);
  EXPECT_EQ(stats.reply.At("lines").AsInt(), 2);
  ASSERT_EQ(stats.reply.At("top").size(), 3u);  // default_top = 3 from the config
  EXPECT_EQ(stats.reply.At("top").AsArray()[0].At("word").AsString(), "b");
  EXPECT_EQ(stats.reply.At("sha256").AsString().size(), 64u);

  // Many at once, spread over the pool.
  std::vector<JobId> ids;
  for (int i = 0; i < 50; ++i) ids.push_back(client.Submit("echo", Value(i)));
  const std::vector<Answer> answers = client.Collect(ids);
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE(answers[i].ok) << answers[i].message;
    EXPECT_EQ(answers[i].reply, Value(i));
  }
}

TEST_F(WorkerBrokerTest, BadJobsGetTheRightErrorAndTheHostKeepsServing) {
  auto worker = Worker();
  RawClient client(endpoint_, keyring_);

  // Schema violations never reach the handler.
  Answer answer = client.Call("textstats", Value::Object({{"text", "x"}, {"top", 500}}));
  EXPECT_FALSE(answer.ok);
  EXPECT_EQ(answer.code, ErrorCode::kInvalidPayload);
  EXPECT_EQ(answer.message, "request.top: expected an integer in [1, 100], got 500");
  answer = client.Call("textstats", Value::Object({{"txt", "x"}}));
  EXPECT_EQ(answer.code, ErrorCode::kInvalidPayload);

  // Tampered payload.
  SubmitOptions tampered;
  tampered.tamper = true;
  answer = client.Call("echo", Value("secret"), tampered);
  EXPECT_EQ(answer.code, ErrorCode::kUnauthenticated) << answer.message;

  // A key the worker does not hold.
  Keyring stranger;
  stranger.AddKey(77, std::string(32, 's'));
  stranger.SetActive(77);
  SubmitOptions unknown;
  unknown.keyring = &stranger;
  answer = client.Call("echo", Value("x"), unknown);
  EXPECT_EQ(answer.code, ErrorCode::kUnknownKey) << answer.message;
  EXPECT_THAT(answer.message, HasSubstr("77"));

  // Unsealed payloads are refused unless the service allows them.
  SubmitOptions unsealed;
  unsealed.seal = false;
  answer = client.Call("echo", Value("x"), unsealed);
  EXPECT_EQ(answer.code, ErrorCode::kUnauthenticated) << answer.message;

  // Throwing handlers: any exception, or a courier::Error with its own code.
  answer = client.Call("testkit", Testkit({{"action", "throw"}, {"message", "disk on fire"}}));
  EXPECT_EQ(answer.code, ErrorCode::kHandlerError);
  EXPECT_EQ(answer.message, "disk on fire");
  answer = client.Call("testkit", Testkit({{"action", "error"}, {"code", "busy"}, {"message", "later"}}));
  EXPECT_EQ(answer.code, ErrorCode::kBusy);

  // And the host still serves.
  answer = client.Call("echo", Value("still here"));
  ASSERT_TRUE(answer.ok) << answer.message;
  EXPECT_EQ(answer.reply, Value("still here"));
  EXPECT_TRUE(worker->Running());
  // The error records go to courier.errors: services_error_sink_test checks they arrive.
}

TEST_F(WorkerBrokerTest, UnsealedJobsAreServedWhenTheServiceAllowsThem) {
  auto worker = Worker("worker", 2, "[services.echo]\nplugin = \"echo\"\nallow_unsealed = true\n");
  RawClient client(endpoint_, keyring_);
  SubmitOptions unsealed;
  unsealed.seal = false;
  const Answer answer = client.Call("echo", Value("plain"), unsealed);
  ASSERT_TRUE(answer.ok) << answer.message;
  EXPECT_EQ(answer.key_id, kUnsealedKeyId);
  EXPECT_EQ(answer.reply, Value("plain"));
}

TEST_F(WorkerBrokerTest, ACrashingPluginTakesDownItsHostOnlyAndTheJobIsRedelivered) {
  const std::string services = "[services.testkit]\nplugin = \"testkit\"\ncapacity = 1\n";
  auto a = Worker("a", 2, services);
  auto b = Worker("b", 2, services);
  RawClient client(endpoint_, keyring_);
  // Make sure both are registered: each answers with its pid.
  std::set<std::int64_t> pids;
  ASSERT_TRUE(WaitFor([&] {
    std::vector<JobId> ids;
    for (int i = 0; i < 4; ++i) ids.push_back(client.Submit("testkit", Testkit({{"action", "sleep"}, {"ms", 50}})));
    for (const Answer& answer : client.Collect(ids)) {
      if (answer.ok) pids.insert(answer.reply.At("pid").AsInt());
    }
    return pids.size() == 2;
  }, 20s));

  // The first delivery crashes whichever host gets it; the broker redelivers to the other.
  const Answer answer = client.Call("testkit", Testkit({{"action", "abort_first"}}), {}, 30s);
  ASSERT_TRUE(answer.ok) << ToString(answer.code) << ": " << answer.message;
  EXPECT_EQ(answer.attempt, 2u);
  EXPECT_EQ(answer.reply.At("attempt").AsInt(), 2);
  const bool a_alive = a->Running();
  const bool b_alive = b->Running();
  EXPECT_NE(a_alive, b_alive) << "exactly one host should have crashed";
  ChildProcess& survivor = a_alive ? *a : *b;
  EXPECT_EQ(answer.reply.At("pid").AsInt(), survivor.pid());

  // The survivor keeps serving.
  const Answer after = client.Call("testkit", Testkit({{"action", "pid"}}));
  ASSERT_TRUE(after.ok) << after.message;
  EXPECT_EQ(after.reply.At("pid").AsInt(), survivor.pid());
}

TEST_F(WorkerBrokerTest, SigtermLosesNoJobInFlight) {
  auto worker = Worker("a", 4);
  RawClient client(endpoint_, keyring_);
  std::vector<JobId> ids;
  for (int i = 0; i < 4; ++i) ids.push_back(client.Submit("testkit", Testkit({{"action", "sleep"}, {"ms", 700}})));
  ASSERT_TRUE(WaitFor([&] { return CountInLog(*worker, "received job") >= 4; }, 10s)) << worker->Log();
  worker->Signal(SIGTERM);

  // A job submitted while it drains is not taken by it; a new host picks it up.
  ASSERT_TRUE(worker->WaitForLog("draining", 5s));
  const JobId late = client.Submit("testkit", Testkit({{"action", "pid"}}));

  for (const Answer& answer : client.Collect(ids)) {
    ASSERT_TRUE(answer.ok) << ToString(answer.code) << ": " << answer.message;
    EXPECT_EQ(answer.reply.At("pid").AsInt(), worker->pid());
  }
  const int status = worker->Wait(15s);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;

  auto next = Worker("b", 2);
  const Answer answer = client.Collect({late}).front();
  ASSERT_TRUE(answer.ok) << answer.message;
  EXPECT_EQ(answer.reply.At("pid").AsInt(), next->pid());
}

TEST_F(WorkerBrokerTest, AfterABrokerRestartTheWorkerRegistersAgainAndServes) {
  auto worker = Worker();
  {
    RawClient client(endpoint_, keyring_);
    ASSERT_TRUE(client.Call("echo", Value(1)).ok);
  }
  const std::size_t readies = CountInLog(*worker, "sent READY for service echo");
  broker_->Kill();
  broker_ = StartBroker(dir_, endpoint_, "broker2");
  const auto restarted = std::chrono::steady_clock::now();
  ASSERT_TRUE(WaitFor([&] { return CountInLog(*worker, "sent READY for service echo") > readies; }, 10s))
      << worker->Log();
  EXPECT_LT(std::chrono::steady_clock::now() - restarted, kTestHeartbeat * kTestLiveness * 4);
  RawClient client(endpoint_, keyring_);
  const Answer answer = client.Call("echo", Value("again"));
  ASSERT_TRUE(answer.ok) << answer.message;
  EXPECT_EQ(answer.reply, Value("again"));
}

TEST_F(WorkerBrokerTest, ANonIdempotentServiceRunsAJobIdOnce) {
  auto worker = Worker();
  RawClient client(endpoint_, keyring_);
  SubmitOptions same;
  same.job_id = JobId::Random();
  const Answer first = client.Call("testkit.once", Value::Object({{"key", "a"}}), same);
  ASSERT_TRUE(first.ok) << first.message;
  EXPECT_EQ(first.reply.At("count").AsInt(), 1);

  // The same job id again (a redelivery or a client retry): answered from the cache.
  const Answer again = client.Call("testkit.once", Value::Object({{"key", "a"}}), same);
  ASSERT_TRUE(again.ok) << again.message;
  EXPECT_EQ(again.reply, first.reply);

  // A different job runs.
  const Answer other = client.Call("testkit.once", Value::Object({{"key", "b"}}));
  ASSERT_TRUE(other.ok) << other.message;
  EXPECT_EQ(other.reply.At("count").AsInt(), 2);
}

}  // namespace
}  // namespace courier::test
