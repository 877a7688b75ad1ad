// The client SDK against a real courier-broker and a raw-frame test worker: every call
// style, deadlines, retries, the in-flight bound, discovery and shutdown.
#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <msgpack.hpp>
#include <set>

#include "client_fixture.hpp"
#include "courier/client.hpp"

namespace courier::test {
namespace {

struct Resize {
  std::string path;
  std::uint32_t width = 0;
  MSGPACK_DEFINE(path, width);
};

struct Thumbnail {
  std::string path;
  std::uint32_t width = 0;
  std::uint32_t height = 0;
  MSGPACK_DEFINE(path, width, height);
};

ErrorCode CodeOf(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& error) {
    return error.code();
  }
  ADD_FAILURE() << "no courier::Error thrown";
  return ErrorCode::kInternal;
}

class ClientCallsTest : public ::testing::Test {
 protected:
  ClientCallsTest() : broker_(dir_, "broker") {}

  // Starts the worker for `service` and a client, and waits until the broker knows the worker.
  std::unique_ptr<Client> Start(const std::string& service, Behaviour behaviour,
                                const std::function<void(ClientOptions&)>& tune = {}) {
    workers_.push_back(std::make_unique<TestWorker>(std::vector<std::string>{broker_.endpoint()}, service, keyring_,
                                                    std::move(behaviour)));
    ClientOptions options = TestOptions({broker_.endpoint()}, keyring_);
    if (tune) tune(options);
    auto client = std::make_unique<Client>(options);
    EXPECT_TRUE(WaitForWorkers(*client, service, 1)) << broker_.Log();
    return client;
  }
  TestWorker& worker() { return *workers_.back(); }

  TempDir dir_;
  std::shared_ptr<const Keyring> keyring_ = std::make_shared<const Keyring>(Keyring::Generate());
  BrokerProcess broker_;
  std::vector<std::unique_ptr<TestWorker>> workers_;
};

TEST_F(ClientCallsTest, SyncCallEchoes) {
  auto client = Start("echo", Echo());
  const Value request = Value::Object({{"text", "hi"}, {"n", 3}, {"bytes", Binary{std::string("\0\1", 2)}}});
  EXPECT_EQ(client->Call("echo", request), request);
  const auto timings = client->timings();
  ASSERT_EQ(timings.size(), 1u);
  EXPECT_EQ(timings[0].service, "echo");
  EXPECT_EQ(timings[0].round_trip.count, 1u);
  EXPECT_EQ(timings[0].seal.count, 1u);
  EXPECT_EQ(timings[0].encode.count, 1u);
  EXPECT_GT(timings[0].round_trip.max.count(), 0);
}

TEST_F(ClientCallsTest, FutureCall) {
  auto client = Start("echo", Echo());
  std::future<Value> reply = client->Submit("echo", Value("later"));
  ASSERT_EQ(reply.wait_for(10s), std::future_status::ready);
  EXPECT_EQ(reply.get(), Value("later"));
}

TEST_F(ClientCallsTest, CallbackRunsOnTheCallbackThread) {
  auto client = Start("echo", Echo());
  std::promise<std::pair<Value, std::thread::id>> got;
  client->Submit("echo", Value(42), [&](Result result) {
    got.set_value({std::move(result).value(), std::this_thread::get_id()});
  });
  auto future = got.get_future();
  ASSERT_EQ(future.wait_for(10s), std::future_status::ready);
  const auto [value, thread] = future.get();
  EXPECT_EQ(value, Value(42));
  EXPECT_NE(thread, std::this_thread::get_id());
}

TEST_F(ClientCallsTest, FireAndForgetIsAcceptedAndDelivered) {
  auto client = Start("audit", Echo());
  const JobId id = client->Send("audit", Value::Object({{"event", "login"}}));
  EXPECT_FALSE(id.IsZero());
  EXPECT_TRUE(WaitFor([&] { return worker().deliveries(id) == 1; }, 10s));

  std::promise<Result> accepted;
  client->Send("audit", Value("async"), [&](Result result) { accepted.set_value(std::move(result)); });
  auto future = accepted.get_future();
  ASSERT_EQ(future.wait_for(10s), std::future_status::ready);
  const Result result = future.get();
  EXPECT_TRUE(result.ok());
  EXPECT_TRUE(result.value().IsNil());
}

TEST_F(ClientCallsTest, BatchAnswersEveryJobInOrder) {
  auto client = Start("echo", Echo());
  std::vector<Value> requests;
  for (int i = 0; i < 200; ++i) requests.emplace_back(i);
  auto futures = client->SubmitBatch("echo", requests);
  ASSERT_EQ(futures.size(), requests.size());
  for (std::size_t i = 0; i < futures.size(); ++i) {
    ASSERT_EQ(futures[i].wait_for(10s), std::future_status::ready);
    EXPECT_EQ(futures[i].get(), requests[i]);
  }
  EXPECT_EQ(worker().distinct_jobs(), 200u);
}

TEST_F(ClientCallsTest, TypedCallWithMsgpackStructs) {
  auto client = Start("resize", [](const WorkerJob& job) {
    const auto& fields = job.request.AsArray();
    return WorkerAction::Reply(Value(Value::Array{fields[0], fields[1], Value(fields[1].AsUint() / 2)}));
  });
  const Thumbnail thumbnail = client->Call<Thumbnail>("resize", Resize{"a.png", 640});
  EXPECT_EQ(thumbnail.path, "a.png");
  EXPECT_EQ(thumbnail.width, 640u);
  EXPECT_EQ(thumbnail.height, 320u);
  std::future<Thumbnail> later = client->Submit<Thumbnail>("resize", Resize{"b.png", 100});
  ASSERT_EQ(later.wait_for(10s), std::future_status::ready);
  EXPECT_EQ(later.get().height, 50u);
  // A reply of the wrong shape is an error, not garbage.
  EXPECT_EQ(CodeOf([&] { client->Call<std::string>("resize", Resize{"c.png", 2}); }), ErrorCode::kInvalidPayload);
}

TEST_F(ClientCallsTest, DeadlineExceededWhenTheWorkerIsTooSlow) {
  auto client = Start("slow", Echo(3s));
  CallOptions call;
  call.deadline = 300ms;
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(CodeOf([&] { client->Call("slow", Value(1), call); }), ErrorCode::kDeadlineExceeded);
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_GE(took, 250ms);
  EXPECT_LT(took, 2s);
}

TEST_F(ClientCallsTest, RetriesBusyWithTheSameJobIdThenSucceeds) {
  auto client = Start("flaky", [](const WorkerJob& job) {
    if (job.delivery <= 2) return WorkerAction::Fail(ErrorCode::kBusy, "try again");
    return WorkerAction::Reply(Value::Object({{"attempts", job.delivery}}));
  });
  const Value reply = client->Call("flaky", Value("x"));
  EXPECT_EQ(reply.At("attempts").AsUint(), 3u);  // the worker saw one job id three times
  EXPECT_EQ(worker().distinct_jobs(), 1u);
  EXPECT_EQ(worker().deliveries(), 3u);
  EXPECT_TRUE(WaitFor([&] { return client->counters().retries == 2; }, 5s));
}

TEST_F(ClientCallsTest, GivesUpOnBusyAfterTheRetryBudget) {
  auto client = Start("full", [](const WorkerJob&) { return WorkerAction::Fail(ErrorCode::kBusy); },
                      [](ClientOptions& options) { options.retry.max_retries = 2; });
  EXPECT_EQ(CodeOf([&] { client->Call("full", Value("x")); }), ErrorCode::kBusy);
  EXPECT_EQ(worker().deliveries(), 3u);
}

TEST_F(ClientCallsTest, NeverRetriesAHandlerError) {
  auto client = Start("fails", [](const WorkerJob&) { return WorkerAction::Fail(ErrorCode::kHandlerError, "boom"); });
  try {
    client->Call("fails", Value("x"));
    FAIL() << "no error";
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), ErrorCode::kHandlerError);
    EXPECT_STREQ(error.what(), "boom");
  }
  // A retry would have gone out within the first backoff (20..200 ms): none comes.
  EXPECT_FALSE(WaitFor([&] { return worker().deliveries() > 1; }, 500ms));
  EXPECT_EQ(worker().deliveries(), 1u);
  EXPECT_EQ(client->counters().retries, 0u);
}

TEST_F(ClientCallsTest, IdempotencyKeyFixesTheJobId) {
  auto client = Start("echo", Echo());
  CallOptions call;
  call.idempotency_key = "order-17";
  std::promise<JobId> seen;
  client->Submit("echo", Value(1), [&](Result result) { seen.set_value(result.job_id()); }, call);
  auto future = seen.get_future();
  ASSERT_EQ(future.wait_for(10s), std::future_status::ready);
  EXPECT_EQ(future.get(), keyring_->JobIdFor("order-17"));
}

TEST_F(ClientCallsTest, InFlightBoundBlocks) {
  auto client = Start("slow", Echo(100ms), [](ClientOptions& options) {
    options.max_in_flight = 3;
    options.overflow = OverflowPolicy::kBlock;
  });
  std::vector<std::future<Value>> futures;
  for (int i = 0; i < 12; ++i) {
    futures.push_back(client->Submit("slow", Value(i)));  // blocks while 3 are outstanding
    EXPECT_LE(client->in_flight(), 3u);
  }
  for (int i = 0; i < 12; ++i) {
    ASSERT_EQ(futures[i].wait_for(10s), std::future_status::ready);
    EXPECT_EQ(futures[i].get(), Value(i));
  }
  EXPECT_LE(worker().max_concurrent(), 3u);
  EXPECT_EQ(worker().distinct_jobs(), 12u);
}

TEST_F(ClientCallsTest, InFlightBoundFailsFast) {
  auto client = Start("slow", Echo(400ms), [](ClientOptions& options) {
    options.max_in_flight = 2;
    options.overflow = OverflowPolicy::kFailFast;
  });
  auto first = client->Submit("slow", Value(1));
  auto second = client->Submit("slow", Value(2));
  auto third = client->Submit("slow", Value(3));
  ASSERT_EQ(third.wait_for(1s), std::future_status::ready);  // at once, not after 400 ms
  EXPECT_EQ(CodeOf([&] { third.get(); }), ErrorCode::kBusy);
  EXPECT_EQ(first.get(), Value(1));
  EXPECT_EQ(second.get(), Value(2));
  EXPECT_EQ(client->Call("slow", Value(4)), Value(4));  // slots are back
}

TEST_F(ClientCallsTest, RejectsAnUnsealedReply) {
  auto client = Start("forger", [](const WorkerJob& job) {
    WorkerAction action = WorkerAction::Reply(job.request);
    action.kind = WorkerAction::Kind::kUnsealedReply;
    return action;
  });
  EXPECT_EQ(CodeOf([&] { client->Call("forger", Value("x")); }), ErrorCode::kUnauthenticated);
}

TEST_F(ClientCallsTest, DiscoversServicesAndWorkers) {
  auto client = Start("echo", Echo());
  EXPECT_TRUE(client->ServiceAvailable("echo"));
  EXPECT_FALSE(client->ServiceAvailable("nope"));
  const auto services = client->Services();
  const auto echo = std::find_if(services.begin(), services.end(), [](const ServiceInfo& s) { return s.name == "echo"; });
  ASSERT_NE(echo, services.end());
  EXPECT_EQ(echo->workers, 1u);
  EXPECT_EQ(echo->brokers, std::vector<std::string>{broker_.endpoint()});
  const auto workers = client->Workers();
  ASSERT_EQ(workers.size(), 1u);
  EXPECT_EQ(workers[0].service, "echo");
  EXPECT_EQ(workers[0].capacity, 64u);
  EXPECT_EQ(workers[0].host, "test-host");
  EXPECT_EQ(client->ClusterServices().size(), services.size());
  EXPECT_TRUE(client->Query("stats").IsMap());
  const auto pings = client->Ping();
  ASSERT_EQ(pings.size(), 1u);
  EXPECT_TRUE(pings[0].round_trip.has_value());
}

TEST_F(ClientCallsTest, DestructionCancelsPendingJobs) {
  auto client = Start("stuck", [](const WorkerJob&) {
    WorkerAction action;
    action.kind = WorkerAction::Kind::kIgnore;
    return action;
  });
  auto future = client->Submit("stuck", Value(1));
  std::promise<ErrorCode> callback_code;
  client->Submit("stuck", Value(2), [&](Result result) {
    callback_code.set_value(result.error() ? result.error()->code() : ErrorCode::kInternal);
  });
  EXPECT_TRUE(WaitFor([&] { return worker().deliveries() == 2; }, 10s));
  const auto start = std::chrono::steady_clock::now();
  client.reset();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
  ASSERT_EQ(future.wait_for(0s), std::future_status::ready);
  EXPECT_EQ(CodeOf([&] { future.get(); }), ErrorCode::kCancelled);
  auto code = callback_code.get_future();
  ASSERT_EQ(code.wait_for(0s), std::future_status::ready);
  EXPECT_EQ(code.get(), ErrorCode::kCancelled);
}

TEST_F(ClientCallsTest, ManyThreadsShareOneClient) {
  auto client = Start("echo", Echo());
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 100; ++i) {
        if (client->Call("echo", Value(t * 1000 + i)) == Value(t * 1000 + i)) ++ok;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(ok.load(), 400);
}

TEST(ClientNoBrokerTest, FailsUnavailableQuickly) {
  ClientOptions options = TestOptions({FreeEndpoint()}, std::make_shared<const Keyring>(Keyring::Generate()));
  options.failover_timeout = 500ms;
  options.heartbeat_interval = 100ms;
  Client client(options);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(CodeOf([&] { client.Call("echo", Value(1)); }), ErrorCode::kUnavailable);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 3s);
  EXPECT_EQ(CodeOf([&] { client.Services(); }), ErrorCode::kUnavailable);
  EXPECT_EQ(client.brokers()[0].health, BrokerHealth::kDown);
}

}  // namespace
}  // namespace courier::test
