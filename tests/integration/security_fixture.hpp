// security_fixture.hpp — a CURVE deployment for the security integration tests: a real
// courier-broker with CURVE and allow-lists, a real courier-worker (echo plugin) with its
// worker key, SDK clients and raw-frame peers with any key, and the broker's counters.
// Every wait is bounded; nothing sleeps to synchronise.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "courier/client.hpp"
#include "courier/curve.hpp"
#include "courier/keyring.hpp"
#include "courier/value.hpp"
#include "envelope_codec.hpp"
#include "frames.hpp"
#include "process.hpp"
#include "raw_peer.hpp"
#include "worker_support.hpp"

namespace courier::test {

using namespace std::chrono_literals;

// The broker's max_message_bytes in these tests: small, so oversized input is cheap.
inline constexpr std::size_t kTestMaxMessageBytes = 64 * 1024;

class SecurityFixture : public ::testing::Test {
 protected:
  SecurityFixture()
      : endpoint_(FreeEndpoint()),
        server_(GenerateCurveKeyPair("broker")),
        client_key_(GenerateCurveKeyPair("client-a")),
        worker_key_(GenerateCurveKeyPair("worker-a")),
        stranger_(GenerateCurveKeyPair("stranger")),
        ops_key_(GenerateCurveKeyPair("ops-a")),
        sink_key_(GenerateCurveKeyPair("sink-a")) {
    keyring_path_ = WriteKeyring(dir_, keyring_);
    shared_keyring_ = std::make_shared<const Keyring>(Keyring::Load(keyring_path_));
    SaveCurveKeyPair(dir_.path() / "broker.key", server_);
    SaveCurveKeyPair(dir_.path() / "client-a.key", client_key_);
    SaveCurveKeyPair(dir_.path() / "worker-a.key", worker_key_);
    SaveCurveKeyPair(dir_.path() / "stranger.key", stranger_);
    SaveCurveKeyPair(dir_.path() / "ops-a.key", ops_key_);
    SaveCurveKeyPair(dir_.path() / "sink-a.key", sink_key_);
    dir_.Write("broker.pub", server_.public_key + "\n");
    WriteClientsAllow();
    WriteWorkersAllow();
  }

  // The clients allow-list: client-a (an ordinary client), ops-a (an operator), and `extra`.
  void WriteClientsAllow(const std::string& extra = "") {
    dir_.Write("clients.allow", "client-a = \"" + client_key_.public_key + "\"\nops-a = { key = \"" +
                                    ops_key_.public_key + "\", role = \"operator\" }\n" + extra);
  }
  // The workers allow-list: worker-a (any ordinary service), sink-a (courier.errors only),
  // and `extra`.
  void WriteWorkersAllow(const std::string& extra = "") {
    dir_.Write("workers.allow", "worker-a = \"" + worker_key_.public_key + "\"\nsink-a = { key = \"" +
                                    sink_key_.public_key + "\", services = [\"courier.errors\"] }\n" + extra);
  }

  void TearDown() override {
    if (!HasFailure()) return;
    if (broker_) std::cerr << "--- broker log ---\n" << broker_->Log() << "\n";
    if (worker_) std::cerr << "--- worker log ---\n" << worker_->Log() << "\n";
  }

  // `heartbeat`: long for tests whose raw workers do not answer heartbeats.
  void StartBroker(std::chrono::milliseconds heartbeat = kTestHeartbeat) {
    const auto config = dir_.Write(
        "broker.toml", "bind = [\"" + endpoint_ + "\"]\nheartbeat_interval = \"" +
                           std::to_string(heartbeat.count()) + "ms\"\nheartbeat_liveness = " +
                           std::to_string(kTestLiveness) + "\nmax_message_bytes = " +
                           std::to_string(kTestMaxMessageBytes) +
                           "\n[security]\ncurve = true\nkey_file = \"broker.key\"\nclients = \"clients.allow\"\n"
                           "workers = \"workers.allow\"\n[log]\nlevel = \"info\"\n");
    broker_ = std::make_unique<ChildProcess>(BinaryPath("courier-broker"),
                                             std::vector<std::string>{"--config", config.string()},
                                             dir_.path() / "broker.log");
    ASSERT_TRUE(broker_->WaitForLog("listening on", 10s)) << broker_->Log();
  }

  // The [security] table of a peer presenting `key_file` (a file in dir_).
  std::string SecurityTable(const std::string& key_file) const {
    return "[security]\ncurve = true\nserver_key_file = \"" + (dir_.path() / "broker.pub").string() +
           "\"\nkey_file = \"" + (dir_.path() / key_file).string() + "\"\n";
  }

  // Starts courier-worker serving echo with the worker key (or `key_file`).
  std::unique_ptr<ChildProcess> StartEchoWorker(const std::string& name = "worker",
                                                const std::string& key_file = "worker-a.key",
                                                const std::string& extra_services = "") {
    return StartWorker(dir_,
                       WorkerConfig({endpoint_}, keyring_path_,
                                    "[services.echo]\nplugin = \"echo\"\n" + extra_services, 2,
                                    "instance = \"" + name + "\"\n" + SecurityTable(key_file)),
                       name);
  }

  // SDK options presenting `key` (a key pair on disk in dir_, or in memory).
  ClientOptions Options(const CurveKeyPair& key, std::shared_ptr<const Keyring> keyring = nullptr) const {
    ClientOptions options;
    options.brokers = {endpoint_};
    options.keyring = keyring ? std::move(keyring) : shared_keyring_;
    options.deadline = 10s;
    options.failover_timeout = 1000ms;
    options.heartbeat_interval = 250ms;
    options.retry.initial_backoff = 20ms;
    options.retry.max_backoff = 200ms;
    options.report = false;
    options.curve.server_public_key = server_.public_key;
    options.curve.keys = key;
    return options;
  }

  // A raw DEALER presenting `key`.
  std::unique_ptr<RawPeer> As(const CurveKeyPair& key, const std::string& identity = {}) {
    const CurveClientKeys curve{server_.public_key, key.public_key, key.secret_key};
    return std::make_unique<RawPeer>(context_, endpoint_, identity, &curve);
  }

  // The admitted client every test uses to check the broker still answers and serves.
  Client& good() {
    if (!good_) good_ = std::make_unique<Client>(Options(client_key_));
    return *good_;
  }

  // The operator client (ops-a): management queries and courier.errors queries.
  Client& admin() {
    if (!admin_) admin_ = std::make_unique<Client>(Options(ops_key_));
    return *admin_;
  }

  // Returns: the broker's counter `name` (asked through the operator client).
  std::uint64_t Stat(const std::string& name) {
    try {
      return admin().Query("stats").At(name).AsUint();
    } catch (const Error& error) {
      ADD_FAILURE() << "stats query failed: " << error.what();
      return 0;
    }
  }

  // Returns: whether `service` has `workers` workers registered, within 10 s.
  bool WaitForWorkers(const std::string& service, std::uint64_t workers) {
    return WaitFor(
        [&] {
          try {
            for (const ServiceInfo& info : admin().Services()) {
              if (info.name == service) return info.workers == workers;
            }
          } catch (const Error&) {
          }
          return workers == 0;
        },
        10s);
  }

  // The proof every matrix case ends with: the broker answers, and a normal job submitted
  // beside the bad input completes.
  void ExpectAliveAndServing(std::future<Value>& alongside, const std::string& marker) {
    ASSERT_EQ(alongside.wait_for(15s), std::future_status::ready) << "the normal job was lost";
    EXPECT_EQ(alongside.get(), Value(marker));
    EXPECT_EQ(good().Call("echo", Value("after " + marker)), Value("after " + marker));
    EXPECT_TRUE(broker_->Running());
  }

  // A sealed SUBMIT frame pair: [envelope][payload] for `service`.
  Keyring::Sealed Seal(const std::string& service, const Value& request, const JobId& id = JobId::Random(),
                       const Keyring* keyring = nullptr) const {
    Envelope envelope;
    envelope.job_id = id;
    envelope.service = service;
    envelope.created_at_ms = NowUnixMs();
    envelope.deadline_ms = envelope.created_at_ms + 10000;
    envelope.max_attempts = 3;
    return (keyring != nullptr ? *keyring : keyring_).Seal(envelope, EncodeValue(request));
  }

  // The raw worker `peer` takes its next job and reports that its handler crashed with it
  // (what a host says when a handler process dies): the broker charges the job a crash and
  // an attempt. Returns: whether a job came within `timeout`.
  static bool CrashHoldingNextJob(RawPeer& peer, std::chrono::milliseconds timeout = 10s) {
    const auto request = peer.ReceiveWhere(2, "\x02", timeout);
    if (!request || request->size() < 4) return false;
    const JobId held = detail::DecodeEnvelope(request->at(3)).job_id;
    peer.Send({"", "CRW01", "\x06", detail::EncodeErrorBody(held, ErrorCode::kWorkerCrashed, "handler crashed")});
    return true;
  }

  // Returns: the next ERROR for the raw client `peer`, decoded, or nullopt after `timeout`.
  static std::optional<detail::ErrorBody> ReceiveError(RawPeer& peer, std::chrono::milliseconds timeout = 10s) {
    const auto error = peer.ReceiveWhere(2, "\x04", timeout);
    if (!error || error->size() != 4) return std::nullopt;
    return detail::DecodeErrorBody(error->back());
  }

  TempDir dir_;
  std::string endpoint_;
  CurveKeyPair server_, client_key_, worker_key_, stranger_, ops_key_, sink_key_;
  Keyring keyring_;
  std::filesystem::path keyring_path_;
  std::shared_ptr<const Keyring> shared_keyring_;
  zmq::context_t context_{1};
  std::unique_ptr<ChildProcess> broker_;
  std::unique_ptr<ChildProcess> worker_;
  std::unique_ptr<Client> good_;
  std::unique_ptr<Client> admin_;
};

}  // namespace courier::test
