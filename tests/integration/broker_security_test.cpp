// CURVE on the broker: only allow-listed keys get in, and each only in its own role.
#include "broker_fixture.hpp"
#include "courier/curve.hpp"

namespace courier::test {
namespace {

using namespace std::chrono_literals;

class BrokerCurveTest : public BrokerFixture {
 protected:
  void SetUp() override {
    server_ = GenerateCurveKeyPair("broker");
    client_ = GenerateCurveKeyPair("client-a");
    worker_ = GenerateCurveKeyPair("worker-a");
    stranger_ = GenerateCurveKeyPair("stranger");
    SaveCurveKeyPair(dir_.path() / "broker.key", server_);
    // An operator key: the test also reads the broker's stats, which ordinary client keys may not.
    dir_.Write("clients.allow", "client-a = { key = \"" + client_.public_key + "\", role = \"operator\" }\n");
    dir_.Write("workers.allow", "worker-a = \"" + worker_.public_key + "\"\n");
    StartBroker("[security]\ncurve = true\nkey_file = \"broker.key\"\nclients = \"clients.allow\"\n"
                "workers = \"workers.allow\"\n");
  }

  std::unique_ptr<RawPeer> As(const CurveKeyPair& keys) {
    const CurveClientKeys curve{server_.public_key, keys.public_key, keys.secret_key};
    return std::make_unique<RawPeer>(context_, endpoint_, "", &curve);
  }

  std::uint64_t Stat(const std::string& name) {
    auto admin = As(client_);
    admin->Send({"", "CRC01", "\x05", "s", detail::EncodeQuery("stats")});
    const auto reply = admin->ReceiveWhere(2, "\x06", 5s);
    return reply ? DecodeValue(reply->back()).AsArray().at(1).At(name).AsUint() : 0;
  }

  CurveKeyPair server_, client_, worker_, stranger_;
};

TEST_F(BrokerCurveTest, AllowedClientAndWorkerServeASealedJob) {
  auto worker = As(worker_);
  worker->Send({"", "CRW01", "\x01", "secure", CourierReady(1)});
  auto client = As(client_);
  const JobId id = JobId::Random();
  client->Send({"", "CRC01", "\x01", Envelope("secure", id), "sealed bytes"});
  const auto request = worker->ReceiveWhere(2, "\x02", 5s);
  ASSERT_TRUE(request);
  ASSERT_EQ(request->size(), 6u);  // ["", CRW01, REQUEST, envelope, payload, sender]
  EXPECT_EQ((*request)[4], "sealed bytes");
  EXPECT_EQ((*request)[5], "client-a");  // the allow-list's name for the submitting key
  worker->Send({"", "CRW01", "\x03", (*request)[3], "sealed reply"});
  const auto reply = client->ReceiveWhere(2, "\x03", 5s);
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->back(), "sealed reply");
}

TEST_F(BrokerCurveTest, UnknownKeyAndPlainPeersNeverGetIn) {
  auto stranger = As(stranger_);
  stranger->Send({"", "CRC01", "\x07", "ping"});
  EXPECT_FALSE(stranger->Receive(1s));
  auto plain = Peer();  // no CURVE at all
  plain->Send({"", "CRC01", "\x07", "ping"});
  EXPECT_FALSE(plain->Receive(1s));
  EXPECT_TRUE(WaitFor([&] { return Stat("refused_peers") >= 1; }, 5s));
  EXPECT_TRUE(broker_->WaitForLog("refused connection", 5s));
  EXPECT_NE(broker_->Log().find(stranger_.public_key), std::string::npos);
}

TEST_F(BrokerCurveTest, WorkerKeyCannotSubmitAndClientKeyCannotServe) {
  auto worker_as_client = As(worker_);
  worker_as_client->Send({"", "CRC01", "\x01", Envelope("secure", JobId::Random()), "p"});
  const auto refused = worker_as_client->Receive(5s);
  ASSERT_TRUE(refused);
  EXPECT_EQ(detail::DecodeErrorBody(refused->back()).code, ErrorCode::kUnauthorized);
  auto client_as_worker = As(client_);
  client_as_worker->Send({"", "CRW01", "\x01", "secure", CourierReady(1)});
  EXPECT_EQ(client_as_worker->Receive(5s), (Frames{"", "CRW01", "\x05"}));
  EXPECT_GE(Stat("refused_peers"), 2u);
}

}  // namespace
}  // namespace courier::test
