// The worker host's side of CRW01, checked frame by frame against a fake broker (a bare
// ROUTER): READY contents, heartbeats, replies and error codes, DISCONNECT and silence
// (re-registration), SIGHUP (CREDIT), SIGTERM (CREDIT 0, REJECT, finish, DISCONNECT, exit 0),
// a handler past its deadline, the grace period running out, and start-up failures.
#include <signal.h>
#include <sys/wait.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "envelope_codec.hpp"
#include "frames.hpp"
#include "worker_support.hpp"

namespace courier::test {
namespace {

using detail::WorkerCommand;
using ::testing::HasSubstr;

struct Request {
  JobId job_id;
  std::string envelope;
  std::string payload;
};

Request MakeRequest(const Keyring& keyring, const std::string& service, const Value& value,
                    std::chrono::milliseconds deadline = 10s) {
  Envelope envelope;
  envelope.job_id = JobId::Random();
  envelope.service = service;
  envelope.created_at_ms = NowUnixMs();
  envelope.deadline_ms = envelope.created_at_ms + static_cast<std::uint64_t>(deadline.count());
  Keyring::Sealed sealed = keyring.Seal(envelope, EncodeValue(value));
  return {envelope.job_id, std::move(sealed.envelope), std::move(sealed.payload)};
}

class WorkerProtocolTest : public ::testing::Test {
 protected:
  WorkerProtocolTest() : endpoint_(FreeEndpoint()), broker_(endpoint_) { keyring_path_ = WriteKeyring(dir_, keyring_); }

  std::unique_ptr<ChildProcess> Start(const std::string& services, const std::string& extra = "") {
    config_ = WorkerConfig({endpoint_}, keyring_path_, services, 2, extra);
    return StartWorker(dir_, config_);
  }

  struct ReadyCheck {
    std::optional<std::string> service;
  };

  // Waits for READY; returns the worker's identity.
  std::string Ready(ReadyCheck check = {}) {
    auto ready = broker_.Expect(WorkerCommand::kReady, 10s);
    if (!ready) {
      ADD_FAILURE() << "no READY";
      return "";
    }
    EXPECT_EQ(ready->bodies.size(), 2u);
    if (check.service) {
      EXPECT_EQ(ready->bodies.at(0), *check.service);
    }
    last_ready_ = detail::DecodeReadyInfo(ready->bodies.at(1));
    return ready->identity;
  }

  // Waits for `command` while beating, so the worker keeps the connection.
  std::optional<FakeBroker::Message> ExpectBeating(const std::string& identity, WorkerCommand command,
                                                   std::chrono::milliseconds timeout = 10s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      broker_.Send(identity, WorkerCommand::kHeartbeat);
      if (auto message = broker_.Expect(command, 100ms)) return message;
    }
    return std::nullopt;
  }

  void SendRequest(const std::string& identity, const Request& request) {
    broker_.Send(identity, WorkerCommand::kRequest, {request.envelope, request.payload});
  }

  detail::ErrorBody ExpectError(const std::string& identity, ErrorCode code) {
    auto message = ExpectBeating(identity, WorkerCommand::kError);
    if (!message) {
      ADD_FAILURE() << "no ERROR";
      return {};
    }
    detail::ErrorBody body = detail::DecodeErrorBody(message->bodies.at(0));
    EXPECT_EQ(body.code, code) << body.message;
    return body;
  }

  TempDir dir_;
  std::string endpoint_;
  FakeBroker broker_;
  Keyring keyring_;
  std::filesystem::path keyring_path_;
  std::string config_;
  detail::ReadyInfo last_ready_;
};

const std::string kTestkit = "[services.testkit]\nplugin = \"testkit\"\ncapacity = 3\nweight = 2\n";

TEST_F(WorkerProtocolTest, RegistersHeartbeatsRepliesAndAnswersErrorsWithCodes) {
  auto worker = Start(kTestkit);
  const std::string identity = Ready({"testkit"});
  EXPECT_EQ(last_ready_.capacity, 3u);
  EXPECT_EQ(last_ready_.weight, 2u);
  EXPECT_EQ(last_ready_.pid, static_cast<std::uint64_t>(worker->pid()));
  EXPECT_EQ(last_ready_.protocol_version, detail::kWorkerProtocolVersion);

  // Heartbeats flow when nothing else does.
  EXPECT_TRUE(broker_.Expect(WorkerCommand::kHeartbeat, 2s));

  // A job: the reply has the job's identity, a reply envelope and a fresh seal.
  const Value value = Value::Object({{"action", "echo"}, {"n", 42}});
  const Request request = MakeRequest(keyring_, "testkit", value);
  SendRequest(identity, request);
  auto reply = ExpectBeating(identity, WorkerCommand::kReply);
  ASSERT_TRUE(reply);
  ASSERT_EQ(reply->bodies.size(), 2u);
  const detail::EnvelopeView envelope = detail::DecodeEnvelope(reply->bodies[0]);
  EXPECT_EQ(envelope.job_id, request.job_id);
  EXPECT_EQ(envelope.mode, ReplyMode::kReply);
  EXPECT_EQ(DecodeValue(keyring_.Open(reply->bodies[0], reply->bodies[1])), value);

  // Tampered payload: it does not open with this host's keys, which may be the host's
  // fault, so it goes back to the broker (REJECT) for another worker (PROTOCOL.md §7.3).
  Request tampered = MakeRequest(keyring_, "testkit", value);
  tampered.payload[3] = static_cast<char>(tampered.payload[3] ^ 0x40);
  SendRequest(identity, tampered);
  auto rejected = ExpectBeating(identity, WorkerCommand::kReject);
  ASSERT_TRUE(rejected);
  const detail::RejectBody reject = detail::DecodeReject(rejected->bodies.at(0));
  EXPECT_EQ(reject.job_id, tampered.job_id);
  EXPECT_EQ(reject.code, ErrorCode::kUnauthenticated);

  // Garbage envelope: bad_request, job id unknown (zero).
  broker_.Send(identity, WorkerCommand::kRequest, {"not an envelope", "x"});
  EXPECT_TRUE(ExpectError(identity, ErrorCode::kBadRequest).job_id.IsZero());

  // A job for another service on this connection.
  SendRequest(identity, MakeRequest(keyring_, "other", value));
  ExpectError(identity, ErrorCode::kNoSuchService);

  // A handler error, and the host keeps serving.
  SendRequest(identity, MakeRequest(keyring_, "testkit", Value::Object({{"action", "throw"}, {"message", "boom"}})));
  EXPECT_EQ(ExpectError(identity, ErrorCode::kHandlerError).message, "boom");
  SendRequest(identity, MakeRequest(keyring_, "testkit", value));
  EXPECT_TRUE(ExpectBeating(identity, WorkerCommand::kReply));
}

TEST_F(WorkerProtocolTest, DisconnectFromTheBrokerMakesTheWorkerRegisterAgain) {
  auto worker = Start(kTestkit);
  const std::string first = Ready();
  broker_.Send(first, WorkerCommand::kDisconnect);
  const std::string second = Ready();
  EXPECT_NE(first, second);  // a new socket, so the broker sees a new worker
}

TEST_F(WorkerProtocolTest, ASilentBrokerIsDeclaredDeadAndTheWorkerReconnects) {
  auto worker = Start(kTestkit);
  const auto start = std::chrono::steady_clock::now();
  const std::string first = Ready();
  // Say nothing: after liveness × interval the worker drops the connection and comes back.
  const std::string second = Ready();
  const auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_NE(first, second);
  EXPECT_GE(elapsed, kTestHeartbeat * kTestLiveness);
  EXPECT_LT(elapsed, kTestHeartbeat * kTestLiveness * 4);
  EXPECT_TRUE(worker->WaitForLog("silent for", 1s)) << worker->Log();
}

TEST_F(WorkerProtocolTest, SighupAppliesCapacityWithCredit) {
  auto worker = Start(kTestkit);
  const std::string identity = Ready();
  std::string reloaded =
      WorkerConfig({endpoint_}, keyring_path_, "[services.testkit]\nplugin = \"testkit\"\ncapacity = 7\n");
  reloaded.replace(reloaded.find("level = \"debug\""), 15, "level = \"warn\"");
  dir_.Write("worker.toml", reloaded);
  worker->Signal(SIGHUP);
  auto credit = ExpectBeating(identity, WorkerCommand::kCredit, 5s);
  ASSERT_TRUE(credit) << worker->Log();
  EXPECT_EQ(detail::DecodeCredit(credit->bodies.at(0)), 7u);
  EXPECT_TRUE(worker->WaitForLog("capacity 3 -> 7", 2s));
  EXPECT_TRUE(worker->WaitForLog("(log level warn)", 2s));
  // Debug lines ("received job ...") stop; the job is still served.
  const Request request = MakeRequest(keyring_, "testkit", Value::Object({{"action", "echo"}}));
  SendRequest(identity, request);
  ASSERT_TRUE(ExpectBeating(identity, WorkerCommand::kReply));
  EXPECT_EQ(CountInLog(*worker, "received job " + request.job_id.Hex()), 0u);
  // A broken file is refused, and the worker keeps running on what it had.
  dir_.Write("worker.toml", "threads = \"many\"\n");
  worker->Signal(SIGHUP);
  EXPECT_TRUE(worker->WaitForLog("cannot reload", 5s));
  EXPECT_TRUE(worker->Running());
}

TEST_F(WorkerProtocolTest, SigtermRejectsNewJobsFinishesInFlightThenDisconnects) {
  auto worker = Start(kTestkit);
  const std::string identity = Ready();
  const Request slow = MakeRequest(keyring_, "testkit", Value::Object({{"action", "sleep"}, {"ms", 600}}));
  SendRequest(identity, slow);
  ASSERT_TRUE(worker->WaitForLog("received job " + slow.job_id.Hex(), 5s)) << worker->Log();
  worker->Signal(SIGTERM);

  auto credit = ExpectBeating(identity, WorkerCommand::kCredit, 5s);
  ASSERT_TRUE(credit);
  EXPECT_EQ(detail::DecodeCredit(credit->bodies.at(0)), 0u);  // send nothing more

  const Request late = MakeRequest(keyring_, "testkit", Value::Object({{"action", "echo"}}));
  SendRequest(identity, late);
  auto reject = ExpectBeating(identity, WorkerCommand::kReject, 5s);
  ASSERT_TRUE(reject);
  const detail::RejectBody body = detail::DecodeReject(reject->bodies.at(0));
  EXPECT_EQ(body.job_id, late.job_id);
  EXPECT_EQ(body.code, ErrorCode::kShuttingDown);

  // The job in flight is finished and answered, then the worker says goodbye and exits 0.
  std::vector<WorkerCommand> seen;
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (std::chrono::steady_clock::now() < deadline && (seen.empty() || seen.back() != WorkerCommand::kDisconnect)) {
    if (auto message = broker_.Receive(100ms)) {
      seen.push_back(message->command);
      if (message->command == WorkerCommand::kReply) {
        EXPECT_EQ(detail::DecodeEnvelope(message->bodies.at(0)).job_id, slow.job_id);
      }
    } else {
      broker_.Send(identity, WorkerCommand::kHeartbeat);
    }
  }
  EXPECT_THAT(seen, ::testing::ElementsAre(WorkerCommand::kReply, WorkerCommand::kDisconnect));
  const int status = worker->Wait(10s);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status << "\n" << worker->Log();
}

TEST_F(WorkerProtocolTest, AHandlerPastTheDeadlineIsReportedAndAnsweredDeadlineExceeded) {
  auto worker = Start(kTestkit);
  const std::string identity = Ready();
  const Request request =
      MakeRequest(keyring_, "testkit", Value::Object({{"action", "sleep"}, {"ms", 700}}), 200ms);
  SendRequest(identity, request);
  EXPECT_TRUE(worker->WaitForLog("still in progress", 5s)) << worker->Log();
  const detail::ErrorBody body = ExpectError(identity, ErrorCode::kDeadlineExceeded);
  EXPECT_EQ(body.job_id, request.job_id);
  EXPECT_THAT(body.message, HasSubstr("after the job's deadline"));
}

TEST_F(WorkerProtocolTest, AGracePeriodThatRunsOutHandsJobsBackAndExitsZero) {
  auto worker = Start(kTestkit, "grace_period = \"300ms\"");
  const std::string identity = Ready();
  const Request stuck = MakeRequest(keyring_, "testkit", Value::Object({{"action", "sleep"}, {"ms", 5000}}));
  SendRequest(identity, stuck);
  ASSERT_TRUE(worker->WaitForLog("received job " + stuck.job_id.Hex(), 5s));
  worker->Signal(SIGTERM);
  // The job still running goes back to the broker (another worker runs it), then DISCONNECT.
  auto rejected = ExpectBeating(identity, WorkerCommand::kReject, 5s);
  ASSERT_TRUE(rejected);
  EXPECT_EQ(detail::DecodeReject(rejected->bodies.at(0)).job_id, stuck.job_id);
  EXPECT_EQ(detail::DecodeReject(rejected->bodies.at(0)).code, ErrorCode::kShuttingDown);
  EXPECT_TRUE(ExpectBeating(identity, WorkerCommand::kDisconnect, 5s));
  const int status = worker->Wait(5s);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status << "\n" << worker->Log();
  EXPECT_THAT(worker->Log(), HasSubstr("handing job " + stuck.job_id.Hex()));
}

TEST(WorkerStartup, ConfigurationErrorsExitWithStatus2AndAClearMessage) {
  TempDir dir;
  const auto run = [&](std::vector<std::string> args, const std::string& name) {
    ChildProcess worker(BinaryPath("courier-worker"), std::move(args), dir.path() / (name + ".log"),
                        {"XDG_CONFIG_HOME=" + dir.path().string()});
    const int status = worker.Wait(10s);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 2) << status << "\n" << worker.Log();
    return worker.Log();
  };
  EXPECT_THAT(run({"--config", dir.Write("typo.toml", "thread = 2\n").string()}, "typo"), HasSubstr("thread"));
  EXPECT_THAT(run({}, "nothing"), HasSubstr("no services to serve"));
  EXPECT_THAT(run({"--config", dir.Write("unknown.toml", "[services.testkit]\nplugin = \"testkit\"\ncolour = 1\n").string()},
                  "unknown"),
              HasSubstr("services.testkit.colour"));
  const std::string abi = run({"--plugin", COURIER_BIN_DIR "/../tests/plugins/libcourier_fixture_bad_abi.so"}, "abi");
  EXPECT_THAT(abi, HasSubstr("libcourier_fixture_bad_abi.so"));
  EXPECT_THAT(abi, HasSubstr("plugin ABI 999"));
  EXPECT_THAT(abi, HasSubstr("this host speaks plugin ABI 2"));
}

}  // namespace
}  // namespace courier::test
