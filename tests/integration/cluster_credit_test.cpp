// A worker host's capacity shared by its brokers, frame by frame (PROTOCOL.md §7.2): two
// fake brokers (bare ROUTERs), one courier-worker with capacity 2 for cluster.work.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <sstream>

#include "cluster_support.hpp"
#include "envelope_codec.hpp"
#include "frames.hpp"
#include "worker_support.hpp"

namespace courier::test {
namespace {

using detail::WorkerCommand;

struct Job {
  JobId id;
  std::string envelope;
  std::string payload;
};

Job MakeJob(const Keyring& keyring, std::int64_t key, std::int64_t ms) {
  Envelope envelope;
  envelope.job_id = JobId::Random();
  envelope.service = std::string(kWorkService);
  envelope.created_at_ms = NowUnixMs();
  envelope.deadline_ms = envelope.created_at_ms + 20000;
  Keyring::Sealed sealed = keyring.Seal(envelope, EncodeValue(Value::Object({{"key", key}, {"ms", ms}})));
  return {envelope.job_id, std::move(sealed.envelope), std::move(sealed.payload)};
}

class CreditSharingTest : public ::testing::Test {
 protected:
  CreditSharingTest() : a_endpoint_(FreeEndpoint()), b_endpoint_(FreeEndpoint()), a_(a_endpoint_), b_(b_endpoint_) {
    keyring_path_ = WriteKeyring(dir_, keyring_);
  }

  // Waits for `command` from the worker at `broker`, while both fake brokers beat (the
  // host shares its slots only with brokers it hears from). Other messages are kept.
  std::optional<FakeBroker::Message> Await(FakeBroker& broker, WorkerCommand command,
                                           std::chrono::milliseconds timeout = 10s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      Beat();
      auto message = broker.Receive(50ms);
      if (!message) continue;
      seen_[&broker].push_back(*message);
      if (message->command == command) return message;
    }
    return std::nullopt;
  }
  void Beat() {
    if (!a_id_.empty()) a_.Send(a_id_, WorkerCommand::kHeartbeat);
    if (!b_id_.empty()) b_.Send(b_id_, WorkerCommand::kHeartbeat);
  }
  void Submit(FakeBroker& broker, const std::string& identity, const Job& job) {
    broker.Send(identity, WorkerCommand::kRequest, {job.envelope, job.payload});
  }

  TempDir dir_;
  std::string a_endpoint_, b_endpoint_;
  FakeBroker a_, b_;
  std::string a_id_, b_id_;
  Keyring keyring_;
  std::filesystem::path keyring_path_;
  std::map<FakeBroker*, std::vector<FakeBroker::Message>> seen_;
};

TEST_F(CreditSharingTest, TwoBrokersShareCapacityTwoAndAJobBeyondItIsRejected) {
  const std::filesystem::path runs = dir_.path() / "worker.runs";
  auto worker = StartWorker(
      dir_, WorkerConfig({a_endpoint_, b_endpoint_}, keyring_path_,
                         "[services.\"cluster.work\"]\nplugin = \"clusterkit\"\ncapacity = 2\nlog = \"" +
                             runs.string() + "\"\n",
                         /*threads=*/4, "report = false"));
  // Both brokers are offered both free slots at first.
  auto ready_a = a_.Expect(WorkerCommand::kReady, 10s);
  auto ready_b = b_.Expect(WorkerCommand::kReady, 10s);
  ASSERT_TRUE(ready_a && ready_b) << worker->Log();
  a_id_ = ready_a->identity;
  b_id_ = ready_b->identity;
  EXPECT_EQ(detail::DecodeReadyInfo(ready_a->bodies.at(1)).capacity, 2u);
  EXPECT_EQ(detail::DecodeReadyInfo(ready_b->bodies.at(1)).capacity, 2u);

  // A takes both: B's credit drops to 0 (through 1 if the two jobs arrive apart).
  const Job a1 = MakeJob(keyring_, 1, 1500), a2 = MakeJob(keyring_, 2, 1500);
  Submit(a_, a_id_, a1);
  Submit(a_, a_id_, a2);
  std::optional<FakeBroker::Message> credit;
  for (int n = 0; n < 3; ++n) {
    credit = Await(b_, WorkerCommand::kCredit);
    ASSERT_TRUE(credit) << worker->Log();
    if (detail::DecodeCredit(credit->bodies.at(0)) == 0) break;
  }
  EXPECT_EQ(detail::DecodeCredit(credit->bodies.at(0)), 0u);

  // B sends one anyway (it had not read that yet): rejected as busy, not run.
  const Job b1 = MakeJob(keyring_, 3, 0);
  Submit(b_, b_id_, b1);
  auto reject = Await(b_, WorkerCommand::kReject);
  ASSERT_TRUE(reject) << worker->Log();
  const detail::RejectBody body = detail::DecodeReject(reject->bodies.at(0));
  EXPECT_EQ(body.job_id, b1.id);
  EXPECT_EQ(body.code, ErrorCode::kBusy);

  // A slot frees when A's first job ends: B (which showed it has work) gets it.
  credit = Await(b_, WorkerCommand::kCredit, 10s);
  ASSERT_TRUE(credit) << worker->Log();
  EXPECT_GE(detail::DecodeCredit(credit->bodies.at(0)), 1u);
  Submit(b_, b_id_, b1);  // the broker's requeued job, the same bytes
  auto reply = Await(b_, WorkerCommand::kReply, 10s);
  ASSERT_TRUE(reply) << worker->Log();
  EXPECT_EQ(detail::DecodeEnvelope(reply->bodies.at(0)).job_id, b1.id);
  int a_replies = 0;
  for (const auto& message : seen_[&a_]) a_replies += message.command == WorkerCommand::kReply ? 1 : 0;
  while (a_replies < 2 && Await(a_, WorkerCommand::kReply, 10s)) ++a_replies;
  EXPECT_EQ(a_replies, 2);

  // Three runs, never more than two at once; the rejected delivery ran nothing.
  ASSERT_TRUE(WaitFor([&] { return std::filesystem::exists(runs); }, 5s));
  std::ifstream in(runs);
  std::string id, line;
  int count = 0;
  std::int64_t most = 0;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::uint32_t attempt = 0;
    std::int64_t key = 0, running = 0;
    fields >> id >> attempt >> key >> running;
    ++count;
    most = std::max(most, running);
  }
  EXPECT_EQ(count, 3);
  EXPECT_LE(most, 2);
  EXPECT_TRUE(worker->WaitForLog("all 2 slots taken", 1s));
}

}  // namespace
}  // namespace courier::test
