// Least privilege with CURVE (issue 15), from the attacker's side: raw cppzmq peers holding
// admitted keys try what their allow-list entry does not grant, and a normal stream through
// the same broker stays 100 % ok.
#include <gmock/gmock.h>

#include <future>

#include "security_fixture.hpp"

namespace courier::test {
namespace {

class PrivilegeTest : public SecurityFixture {
 protected:
  // A raw Courier worker with `key` that sends READY for `service` claiming `capacity`.
  std::unique_ptr<RawPeer> RawReady(const CurveKeyPair& key, const std::string& service, std::uint32_t capacity,
                                    const std::string& identity) {
    auto worker = As(key, identity);
    detail::ReadyInfo info;
    info.capacity = capacity;
    info.host = "attacker";
    info.instance = identity;
    worker->Send({"", "CRW01", "\x01", service, detail::EncodeReadyInfo(info)});
    return worker;
  }

  // The normal stream: `count` echo calls through the real worker, every one answered.
  void ExpectNormalStream(int count = 100) {
    std::vector<std::future<Value>> calls;
    for (int i = 0; i < count; ++i) calls.push_back(good().Submit("echo", Value("n" + std::to_string(i))));
    int ok = 0;
    for (int i = 0; i < count; ++i) {
      if (calls[i].wait_for(15s) != std::future_status::ready) continue;
      try {
        if (calls[i].get() == Value("n" + std::to_string(i))) ++ok;
      } catch (const Error& error) {
        ADD_FAILURE() << "normal call failed: " << error.what();
      }
    }
    EXPECT_EQ(ok, count);
  }
};

TEST_F(PrivilegeTest, AnOrdinaryWorkerKeyCannotRegisterTheErrorSink) {
  StartBroker(10s);  // the raw workers below do not answer heartbeats
  worker_ = StartEchoWorker();
  auto sink = RawReady(sink_key_, "courier.errors", 1, "sink-1");  // the key that lists it
  ASSERT_TRUE(WaitForWorkers("courier.errors", 1));
  const std::uint64_t refused = Stat("refused_peers");
  // The attack: an allow-listed worker key claims the sink (and the metrics collector) to
  // receive every dead letter and report, with a capacity that swallows them all.
  auto thief = RawReady(worker_key_, "courier.errors", 100000, "thief-1");
  EXPECT_TRUE(thief->ReceiveWhere(2, "\x05", 10s)) << "no DISCONNECT for the refused READY";
  auto thief2 = RawReady(worker_key_, "courier.metrics", 100000, "thief-2");
  EXPECT_TRUE(thief2->ReceiveWhere(2, "\x05", 10s));
  EXPECT_TRUE(WaitForWorkers("courier.errors", 1));
  EXPECT_GE(Stat("refused_peers"), refused + 2);
  EXPECT_THAT(broker_->Log(), ::testing::HasSubstr("may not serve the built-in service 'courier.errors'"));

  // Dead letters still reach the real sink, never the thief.
  auto fragile = RawReady(worker_key_, "fragile", 1, "fragile-1");
  ASSERT_TRUE(WaitForWorkers("fragile", 1));
  CallOptions once;
  once.max_attempts = 1;
  once.max_retries = 0;
  auto doomed = good().Submit("fragile", Value("doomed"), once);
  ASSERT_TRUE(CrashHoldingNextJob(*fragile));
  ASSERT_EQ(doomed.wait_for(10s), std::future_status::ready);
  EXPECT_THROW(doomed.get(), Error);
  const auto letter = sink->ReceiveWhere(2, "\x02", 10s);
  ASSERT_TRUE(letter);
  EXPECT_EQ(DecodeValue(letter->at(4)).At("reports").AsArray().at(0).At("service").AsString(), "fragile");
  EXPECT_FALSE(thief->ReceiveWhere(2, "\x02", 200ms));
  ExpectNormalStream();
}

TEST_F(PrivilegeTest, AWorkerKeyServesOnlyItsServicesAndItsCapacityIsCapped) {
  const CurveKeyPair greedy = GenerateCurveKeyPair("greedy");
  WriteWorkersAllow("greedy = { key = \"" + greedy.public_key + "\", services = [\"slow.*\"], max_capacity = 2 }\n");
  StartBroker(10s);
  worker_ = StartEchoWorker();
  ASSERT_TRUE(WaitForWorkers("echo", 1));
  // A service its entry does not list: refused, the real echo worker keeps every job.
  auto hijack = RawReady(greedy, "echo", 100000, "hijack-1");
  EXPECT_TRUE(hijack->ReceiveWhere(2, "\x05", 10s));
  // Capacity 100,000 claimed, never answering: the broker hands it 2 jobs, no more.
  auto hoarder = RawReady(greedy, "slow.work", 100000, "hoarder-1");
  ASSERT_TRUE(WaitForWorkers("slow.work", 1));
  CallOptions quick;
  quick.deadline = 3s;
  quick.max_retries = 0;
  std::vector<std::future<Value>> held;
  for (int i = 0; i < 10; ++i) held.push_back(good().Submit("slow.work", Value(i), quick));
  int requests = 0;
  while (hoarder->ReceiveWhere(2, "\x02", 500ms)) ++requests;
  EXPECT_EQ(requests, 2);
  // So is a CREDIT past the cap.
  hoarder->Send({"", "CRW01", "\x07", detail::EncodeCredit(100000)});
  EXPECT_FALSE(hoarder->ReceiveWhere(2, "\x02", 500ms));
  auto ops = As(ops_key_);
  ops->Send({"", "CRC01", "\x05", "w", detail::EncodeQuery("workers")});
  const auto workers = ops->ReceiveWhere(2, "\x06", 10s);
  ASSERT_TRUE(workers);
  int seen = 0;
  const Value listing = DecodeValue(workers->back());
  ASSERT_TRUE(listing.IsArray()) << ToJson(listing);
  for (const Value& row : listing.AsArray().at(1).AsArray()) {
    ASSERT_TRUE(row.IsMap()) << ToJson(row);
    if (row.At("service").AsString() == "slow.work") {
      EXPECT_EQ(row.At("capacity").AsUint(), 2u);
      ++seen;
    }
  }
  EXPECT_EQ(seen, 1);
  EXPECT_THAT(broker_->Log(), ::testing::HasSubstr("clamped to its allow-list max_capacity 2"));
  ExpectNormalStream();
}

TEST_F(PrivilegeTest, ManagementAndErrorSinkQueriesNeedAnOperatorKey) {
  StartBroker();
  worker_ = StartEchoWorker();
  ASSERT_TRUE(WaitForWorkers("echo", 1));
  auto snoop = As(client_key_);  // an ordinary client key
  for (const char* name : {"stats", "services", "workers", "jobs"}) {
    snoop->Send({"", "CRC01", "\x05", "q1", detail::EncodeQuery(name)});
    const auto reply = snoop->ReceiveWhere(2, "\x06", 10s);
    ASSERT_TRUE(reply) << name;
    const Value answer = DecodeValue(reply->back());
    EXPECT_EQ(answer.AsArray().at(0).AsUint(), static_cast<std::uint64_t>(ErrorCode::kUnauthorized)) << name;
    EXPECT_THAT(answer.AsArray().at(1).AsString(), ::testing::HasSubstr("operator")) << name;
  }
  // A courier.errors query or replay (a call), even sealed with the payload key.
  for (const char* op : {"list", "replay"}) {
    const JobId id = JobId::Random();
    const Keyring::Sealed query = Seal("courier.errors", Value::Object({{"op", op}, {"id", 1}}), id);
    snoop->Send({"", "CRC01", "\x01", query.envelope, query.payload});
    const auto error = ReceiveError(*snoop);
    ASSERT_TRUE(error) << op;
    EXPECT_EQ(error->code, ErrorCode::kUnauthorized) << op;
    EXPECT_EQ(error->job_id, id);
    EXPECT_THAT(error->message, ::testing::HasSubstr("operator key"));
  }
  // A plain Majordomo request to courier.errors is dropped (MDP has no error reply).
  snoop->Send({"", "MDPC01", "courier.errors", EncodeValue(Value::Object({{"op", "list"}}))});
  EXPECT_FALSE(snoop->ReceiveWhere(1, "MDPC01", 300ms));
  // The operator key asks the same: answered.
  EXPECT_GE(admin().Query("stats").At("refused_peers").AsUint(), 7u);
  EXPECT_NO_THROW(admin().Services());
  // The client keeps what a client needs: submitting, and the job query by id.
  ExpectNormalStream();
  EXPECT_EQ(good().Call("echo", Value("still")), Value("still"));
}

}  // namespace
}  // namespace courier::test
