// The bad-input matrix (issue 9): a real courier-broker with CURVE and a real
// courier-worker (echo plugin) take hostile input of every kind. Each case asserts a clear
// error (an ERROR code, a DISCONNECT, or a counted and logged refusal where no reply is
// possible), a live broker afterwards, and no lost job: a normal job submitted alongside
// the bad input still completes.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "security_fixture.hpp"

namespace courier::test {
namespace {

using ::testing::HasSubstr;

class SecurityMatrixTest : public SecurityFixture {
 protected:
  void SetUp() override {
    StartBroker();
    worker_ = StartEchoWorker();
    ASSERT_TRUE(WaitForWorkers("echo", 1)) << "the CURVE worker never registered";
  }

  // A normal job, submitted before the bad input and checked after it.
  std::future<Value> Alongside(const std::string& marker) { return good().Submit("echo", Value(marker)); }

  // Returns: the code of the Error `call` throws (kInternal if it returns).
  static ErrorCode CodeOf(const std::function<void()>& call, std::string* message = nullptr) {
    try {
      call();
    } catch (const Error& error) {
      if (message != nullptr) *message = error.what();
      return error.code();
    }
    ADD_FAILURE() << "the call succeeded";
    return ErrorCode::kInternal;
  }
};

TEST_F(SecurityMatrixTest, TruncatedFramesAreCountedOrAnsweredBadRequest) {
  auto alongside = Alongside("truncated");
  const std::uint64_t malformed = Stat("malformed");
  const std::uint64_t protocol_errors = Stat("protocol_errors");
  auto peer = As(client_key_);
  const Keyring::Sealed sealed = Seal("echo", Value("x"));

  peer->Send({""});                                        // no header at all
  peer->Send({"", "CRC01"});                               // no command
  peer->Send({"", "CRC01", "\x07"});                       // PING without its correlation id
  peer->Send({"", "CRC01", "\x01", sealed.envelope});      // SUBMIT without its payload
  auto error = ReceiveError(*peer);
  ASSERT_TRUE(error);
  EXPECT_EQ(error->code, ErrorCode::kBadRequest);
  EXPECT_THAT(error->message, HasSubstr("SUBMIT takes exactly [envelope][payload]"));
  peer->Send({"", "CRC01", "\x01", sealed.envelope.substr(0, sealed.envelope.size() / 2), sealed.payload});
  error = ReceiveError(*peer);
  ASSERT_TRUE(error);
  EXPECT_EQ(error->code, ErrorCode::kBadRequest);

  // A truncated worker message: the broker tells that worker to go away.
  auto worker = As(worker_key_);
  worker->Send({"", "CRW01"});
  EXPECT_TRUE(worker->ReceiveWhere(2, "\x05", 10s)) << "no DISCONNECT for a truncated worker message";

  EXPECT_TRUE(WaitFor([&] { return Stat("malformed") >= malformed + 5; }, 10s)) << Stat("malformed");
  EXPECT_GE(Stat("protocol_errors"), protocol_errors + 1);
  EXPECT_TRUE(broker_->WaitForLog("fewer than 3 frames", 5s));
  ExpectAliveAndServing(alongside, "truncated");
}

TEST_F(SecurityMatrixTest, WrongProtocolHeaderIsCountedAndLogged) {
  auto alongside = Alongside("header");
  const std::uint64_t malformed = Stat("malformed");
  const std::uint64_t unknown = Stat("unknown_command");
  auto peer = As(client_key_);
  const Keyring::Sealed sealed = Seal("echo", Value("x"));
  peer->Send({"", "MDPC02", "echo", "hello"});
  peer->Send({"", "CRC99", "\x01", sealed.envelope, sealed.payload});
  peer->Send({"", "crc01", "\x07", "p"});
  peer->Send({"", "CRC01", "\x7f", "?"});  // right header, a command no version defines
  // No protocol to answer in: each is counted and logged with the peer's identity.
  EXPECT_TRUE(WaitFor([&] { return Stat("malformed") >= malformed + 3; }, 10s)) << Stat("malformed");
  EXPECT_TRUE(WaitFor([&] { return Stat("unknown_command") >= unknown + 1; }, 10s));
  EXPECT_TRUE(broker_->WaitForLog("unknown protocol header", 5s));
  EXPECT_TRUE(broker_->WaitForLog("unknown CRC01 command", 5s));
  ExpectAliveAndServing(alongside, "header");
}

TEST_F(SecurityMatrixTest, OversizedMessagesAreAnsweredTooLarge) {
  auto alongside = Alongside("oversized");
  const std::uint64_t oversized = Stat("oversized");

  // Raw: every frame under the limit, the message over it; the answer names the job.
  auto peer = As(client_key_);
  const JobId id = JobId::Random();
  const Keyring::Sealed sealed = Seal("echo", Value("x"), id);
  peer->Send({"", "CRC01", "\x01", sealed.envelope, std::string(40 * 1024, 'a'), std::string(40 * 1024, 'b')});
  const auto error = ReceiveError(*peer);
  ASSERT_TRUE(error);
  EXPECT_EQ(error->code, ErrorCode::kTooLarge);
  EXPECT_EQ(error->job_id, id);
  EXPECT_THAT(error->message, HasSubstr("max_message_bytes"));

  // SDK: a request over this broker's limit fails with too_large, not a timeout.
  std::string message;
  EXPECT_EQ(CodeOf([&] { good().Call("echo", Value(std::string(100 * 1024, 'x'))); }, &message), ErrorCode::kTooLarge)
      << message;
  // SDK: a request over the protocol's 16 MiB never leaves the client.
  EXPECT_EQ(CodeOf([&] { good().Call("echo", Value(std::string(17 * 1024 * 1024, 'y'))); }, &message),
            ErrorCode::kTooLarge);
  EXPECT_THAT(message, HasSubstr("16 MiB"));

  // A frame far beyond the limit: the transport drops that connection before allocating it.
  auto flooder = As(client_key_);
  flooder->Send({"", "CRC01", "\x01", sealed.envelope, std::string(1024 * 1024, 'z')});
  EXPECT_GE(Stat("oversized"), oversized + 2);
  ExpectAliveAndServing(alongside, "oversized");
}

TEST_F(SecurityMatrixTest, WrongPayloadKeyIsUnauthenticated) {
  auto alongside = Alongside("wrong key");
  Keyring forged;  // the same key id, another secret
  forged.AddKey(keyring_.active_key_id(), std::string(32, 'f'));
  forged.SetActive(keyring_.active_key_id());
  Client wrong(Options(client_key_, std::make_shared<const Keyring>(std::move(forged))));
  std::string message;
  EXPECT_EQ(CodeOf([&] { wrong.Call("echo", Value("secret")); }, &message), ErrorCode::kUnauthenticated) << message;
  ExpectAliveAndServing(alongside, "wrong key");
  EXPECT_TRUE(worker_->Running());
}

TEST_F(SecurityMatrixTest, CiphertextReplayedUnderAnotherEnvelopeIsUnauthenticated) {
  auto alongside = Alongside("replay");
  auto peer = As(client_key_);
  const JobId original = JobId::Random();
  const Keyring::Sealed sealed = Seal("echo", Value("pay me"), original);

  // The same ciphertext (same key id and nonce) under an envelope with another job id,
  // then under one with a later deadline.
  Envelope moved = detail::DecodeEnvelope(sealed.envelope).ToEnvelope();
  moved.job_id = JobId::Random();
  Envelope extended = detail::DecodeEnvelope(sealed.envelope).ToEnvelope();
  extended.job_id = JobId::Random();
  extended.deadline_ms += 3'600'000;
  for (const Envelope& forged : {moved, extended}) {
    peer->Send({"", "CRC01", "\x01", detail::EncodeEnvelope(forged), sealed.payload});
    const auto error = ReceiveError(*peer);
    ASSERT_TRUE(error);
    EXPECT_EQ(error->job_id, forged.job_id);
    EXPECT_EQ(error->code, ErrorCode::kUnauthenticated) << error->message;
  }

  // The genuine job still goes through.
  peer->Send({"", "CRC01", "\x01", sealed.envelope, sealed.payload});
  const auto reply = peer->ReceiveWhere(2, "\x03", 10s);
  ASSERT_TRUE(reply);
  ASSERT_EQ(reply->size(), 5u);
  EXPECT_EQ(detail::DecodeEnvelope((*reply)[3]).job_id, original);
  EXPECT_EQ(DecodeValue(keyring_.Open((*reply)[3], (*reply)[4])), Value("pay me"));
  ExpectAliveAndServing(alongside, "replay");
}

TEST_F(SecurityMatrixTest, UnknownKeyIdIsAnsweredUnknownKey) {
  auto alongside = Alongside("unknown key");
  Keyring stranger;
  stranger.AddKey(77, std::string(32, 's'));
  stranger.SetActive(77);
  Client client(Options(client_key_, std::make_shared<const Keyring>(std::move(stranger))));
  std::string message;
  EXPECT_EQ(CodeOf([&] { client.Call("echo", Value("x")); }, &message), ErrorCode::kUnknownKey);
  EXPECT_THAT(message, HasSubstr("77"));
  ExpectAliveAndServing(alongside, "unknown key");
}

TEST_F(SecurityMatrixTest, UnauthorisedCurveKeysNeverGetIn) {
  auto alongside = Alongside("stranger");
  const std::uint64_t refused = Stat("refused_peers");

  // An SDK client with a key on no allow-list: the broker never answers it.
  ClientOptions options = Options(stranger_);
  options.deadline = 1500ms;
  Client stranger(options);
  std::string message;
  EXPECT_EQ(CodeOf([&] { stranger.Call("echo", Value("let me in")); }, &message), ErrorCode::kUnavailable) << message;
  // The same with an admitted key but the wrong server key, and with no CURVE at all:
  // the handshake fails before the allow-lists are even consulted.
  ClientOptions wrong_server = Options(client_key_);
  wrong_server.deadline = 1500ms;
  wrong_server.curve.server_public_key = stranger_.public_key;
  Client misconfigured(wrong_server);
  EXPECT_EQ(CodeOf([&] { misconfigured.Call("echo", Value("x")); }), ErrorCode::kUnavailable);
  auto plain = std::make_unique<RawPeer>(context_, endpoint_);
  plain->Send({"", "CRC01", "\x07", "p"});
  auto raw_stranger = As(stranger_);
  raw_stranger->Send({"", "CRC01", "\x07", "p"});
  EXPECT_FALSE(raw_stranger->Receive(500ms));
  EXPECT_FALSE(plain->Receive(100ms));

  EXPECT_TRUE(WaitFor([&] { return Stat("refused_peers") >= refused + 2; }, 10s)) << Stat("refused_peers");
  EXPECT_TRUE(broker_->WaitForLog("refused connection", 5s));
  EXPECT_THAT(broker_->Log(), HasSubstr(stranger_.public_key));
  EXPECT_THAT(broker_->Log(), HasSubstr("127.0.0.1"));
  ExpectAliveAndServing(alongside, "stranger");
}

TEST_F(SecurityMatrixTest, WorkerKeyCannotSubmitAndClientKeyCannotServe) {
  auto alongside = Alongside("roles");
  const std::uint64_t refused = Stat("refused_peers");

  // A client presenting the worker key: unauthorized at once, not a timeout.
  Client impostor(Options(worker_key_));
  const auto started = std::chrono::steady_clock::now();
  std::string message;
  EXPECT_EQ(CodeOf([&] { impostor.Call("echo", Value("x")); }, &message), ErrorCode::kUnauthorized) << message;
  EXPECT_LT(std::chrono::steady_clock::now() - started, 5s);
  EXPECT_THAT(message, HasSubstr("allow-list"));

  // A courier-worker presenting the client key: DISCONNECTed every time, never registered.
  auto rogue = StartEchoWorker("rogue", "client-a.key");
  EXPECT_TRUE(broker_->WaitForLog("a client key used as a worker", 10s));
  EXPECT_TRUE(rogue->WaitForLog("broker sent DISCONNECT", 10s)) << rogue->Log();
  EXPECT_TRUE(WaitFor([&] { return Stat("refused_peers") >= refused + 2; }, 10s));
  for (const WorkerInfo& info : admin().Workers()) EXPECT_NE(info.instance, "rogue");
  EXPECT_TRUE(WaitForWorkers("echo", 1));
  ExpectAliveAndServing(alongside, "roles");
  EXPECT_TRUE(rogue->Running());  // it keeps retrying with backoff; nothing crashes
}

// A worker whose CURVE key the broker refuses does not retry its handshake every 100 ms
// for ever (libzmq's reconnect): it closes the socket and backs off, doubling.
TEST_F(SecurityMatrixTest, AWorkerWhoseKeyIsRefusedBacksOff) {
  const std::uint64_t refused = Stat("refused_peers");
  auto stranger = StartEchoWorker("stranger-worker", "stranger.key");
  const auto started = std::chrono::steady_clock::now();
  EXPECT_TRUE(stranger->WaitForLog("refused our CURVE key", 10s)) << stranger->Log();
  // 3 s of the test config's backoff (50 ms doubling to 500 ms, ±50% jitter): at most about
  // 15 handshakes, its reporters' included; libzmq alone retried every 100 ms (30 and more).
  while (std::chrono::steady_clock::now() - started < 3s) {
    std::this_thread::sleep_for(100ms);  // measuring a rate over a fixed window, not synchronising
  }
  const std::uint64_t handshakes = Stat("refused_peers") - refused;
  EXPECT_GE(handshakes, 2u);
  EXPECT_LE(handshakes, 18u) << stranger->Log();
  EXPECT_TRUE(stranger->Running());
}

TEST_F(SecurityMatrixTest, FloodOfRefusedConnectsLeavesTheBrokerResponsive) {
  auto alongside = Alongside("flood");
  const std::uint64_t refused = Stat("refused_peers");
  constexpr int kBatches = 10;
  constexpr int kPerBatch = 50;
  const auto started = std::chrono::steady_clock::now();
  for (int batch = 0; batch < kBatches; ++batch) {
    std::vector<std::unique_ptr<zmq::socket_t>> sockets;
    for (int i = 0; i < kPerBatch; ++i) {
      const CurveKeyPair key = GenerateCurveKeyPair("flood");  // a fresh key nobody admitted
      auto socket = std::make_unique<zmq::socket_t>(context_, zmq::socket_type::dealer);
      socket->set(zmq::sockopt::linger, 0);
      socket->set(zmq::sockopt::reconnect_ivl, 60000);  // one attempt each: the flood stays bounded
      socket->set(zmq::sockopt::curve_serverkey, server_.public_key);
      socket->set(zmq::sockopt::curve_publickey, key.public_key);
      socket->set(zmq::sockopt::curve_secretkey, key.secret_key);
      socket->connect(endpoint_);
      sockets.push_back(std::move(socket));
    }
    const std::uint64_t expected = refused + static_cast<std::uint64_t>((batch + 1) * kPerBatch);
    ASSERT_TRUE(WaitFor([&] { return Stat("refused_peers") >= expected; }, 20s))
        << "batch " << batch << ": refused_peers " << Stat("refused_peers") << " < " << expected;
    // Mid-flood the broker still answers at once.
    const std::vector<BrokerPing> pings = good().Ping();
    ASSERT_EQ(pings.size(), 1u);
    ASSERT_TRUE(pings[0].round_trip) << "no PONG during the flood";
    EXPECT_LT(*pings[0].round_trip, std::chrono::microseconds(1'000'000));
  }  // each batch's sockets close here: short-lived connections
  const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - started).count();
  EXPECT_GE(Stat("refused_peers"), refused + kBatches * kPerBatch);
  // Logged, but rate-limited (20 lines a second): the log cannot be flooded.
  const std::size_t lines = CountInLog(*broker_, "refused connection");
  EXPECT_GE(lines, 1u);
  EXPECT_LE(lines, static_cast<std::size_t>(20 * (seconds + 2))) << "over " << seconds << " s";
  ExpectAliveAndServing(alongside, "flood");
}

}  // namespace
}  // namespace courier::test
