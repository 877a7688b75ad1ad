// CURVE end to end: a broker with CURVE, a courier-worker and a courier::Client each with
// their own key, sealed payloads on top (the broker only ever holds ciphertext), the
// client key's name as the sender of dead letters, and the `courier` CLI's CURVE flags.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/wait.h>

#include "security_fixture.hpp"

namespace courier::test {
namespace {

using ::testing::HasSubstr;

class CurveEndToEndTest : public SecurityFixture {
 protected:
  // Serves `service` from a raw CURVE worker (worker key) with routing id `identity`.
  std::unique_ptr<RawPeer> RawWorker(const std::string& service, const std::string& identity) {
    // Built-in services take only a key that lists them (sink-a); the rest take worker-a.
    auto worker = As(service.starts_with("courier.") ? sink_key_ : worker_key_, identity);
    detail::ReadyInfo info;
    info.capacity = 1;
    info.host = "test";
    info.instance = identity;
    worker->Send({"", "CRW01", "\x01", service, detail::EncodeReadyInfo(info)});
    return worker;
  }

  struct CliRun {
    int exit_code = -1;
    std::string output;  // stdout and stderr
  };
  CliRun Courier(const std::vector<std::string>& args) {
    const auto log = dir_.path() / ("courier-" + std::to_string(++runs_) + ".log");
    ChildProcess process(BinaryPath("courier"), args, log,
                         {"XDG_CONFIG_HOME=" + (dir_.path() / "config").string(), "HOME=" + dir_.path().string()});
    const int status = process.Wait(60s);
    EXPECT_NE(status, -1) << "courier did not exit: " << process.Log();
    return CliRun{status >= 0 && WIFEXITED(status) ? WEXITSTATUS(status) : -1, process.Log()};
  }

  int runs_ = 0;
};

TEST_F(CurveEndToEndTest, SealedJobRoundTripsWithEveryHopOnCurve) {
  StartBroker();
  worker_ = StartEchoWorker();
  // The client loads its key pair from its file, and reports over CURVE too.
  ClientOptions options = Options(client_key_);
  options.curve.keys.reset();
  options.curve.key_file = dir_.path() / "client-a.key";
  options.report = true;
  Client client(options);
  const Value request = Value::Object({{"text", "hello over curve"}, {"n", 42}});
  ASSERT_TRUE(WaitForWorkers("echo", 1));
  EXPECT_EQ(client.Call("echo", request), request);

  // The worker host's reporter gets through with the worker key: a job it fails (a key
  // id it does not hold) lands in the broker's queue for courier.errors.
  Keyring stranger;
  stranger.AddKey(91, std::string(32, 'k'));
  stranger.SetActive(91);
  ClientOptions quiet = Options(client_key_, std::make_shared<const Keyring>(std::move(stranger)));
  Client unknown_key(quiet);
  EXPECT_THROW(unknown_key.Call("echo", Value("x")), Error);
  EXPECT_TRUE(WaitFor(
      [&] {
        for (const ServiceInfo& info : admin().Services()) {
          if (info.name == "courier.errors" && info.queued >= 1) return true;
        }
        return false;
      },
      10s))
      << "the worker's error report never reached the broker";
  // And the client's metrics reporter (client key) as well.
  EXPECT_TRUE(WaitFor(
      [&] {
        for (const ServiceInfo& info : admin().Services()) {
          if (info.name == "courier.metrics" && info.queued >= 1) return true;
        }
        return false;
      },
      10s));
  EXPECT_EQ(Stat("refused_peers"), 0u) << "some socket did not present an admitted key";
}

TEST_F(CurveEndToEndTest, TheBrokerOnlyEverHoldsCiphertext) {
  StartBroker(10s);  // the raw worker below does not answer heartbeats
  auto peek = RawWorker("peek", "peek-1");
  ASSERT_TRUE(WaitForWorkers("peek", 1));
  const std::string marker = "the-plaintext-marker-4d1c";
  auto reply = good().Submit("peek", Value::Object({{"secret", marker}}));

  const auto request = peek->ReceiveWhere(2, "\x02", 10s);
  ASSERT_TRUE(request);
  ASSERT_EQ(request->size(), 6u);  // ["", CRW01, REQUEST, envelope, payload, sender]
  EXPECT_EQ((*request)[5], "client-a");
  const std::string& envelope = (*request)[3];
  const std::string& payload = (*request)[4];
  // What the broker forwarded (all it ever held) is sealed: no plaintext in it ...
  EXPECT_EQ(payload.find(marker), std::string::npos);
  EXPECT_EQ(envelope.find(marker), std::string::npos);
  const detail::EnvelopeView view = detail::DecodeEnvelope(envelope);
  EXPECT_EQ(view.key_id, keyring_.active_key_id());
  // ... and it is exactly the sealed form of the request.
  EXPECT_EQ(DecodeValue(keyring_.Open(envelope, payload)).At("secret").AsString(), marker);

  // Answer it, sealed, so the job completes.
  Envelope answer = view.ToEnvelope();
  answer.mode = ReplyMode::kReply;
  const Keyring::Sealed sealed = keyring_.Seal(answer, EncodeValue(Value("seen")));
  peek->Send({"", "CRW01", "\x03", sealed.envelope, sealed.payload});
  ASSERT_EQ(reply.wait_for(10s), std::future_status::ready);
  EXPECT_EQ(reply.get(), Value("seen"));
}

TEST_F(CurveEndToEndTest, DeadLettersNameTheClientKeyAsSender) {
  StartBroker(10s);  // the raw workers below do not answer heartbeats
  auto fragile = RawWorker("fragile", "fragile-1");
  auto sink = RawWorker("courier.errors", "sink-1");
  ASSERT_TRUE(WaitForWorkers("fragile", 1));
  ASSERT_TRUE(WaitForWorkers("courier.errors", 1));
  CallOptions once;
  once.max_attempts = 1;
  once.max_retries = 0;
  auto job = good().Submit("fragile", Value("doomed"), once);
  ASSERT_TRUE(CrashHoldingNextJob(*fragile));  // its only attempt ends in a crash: attempts exhausted

  ASSERT_EQ(job.wait_for(10s), std::future_status::ready);
  try {
    job.get();
    ADD_FAILURE() << "the job succeeded";
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), ErrorCode::kAttemptsExhausted);
  }
  const auto letter = sink->ReceiveWhere(2, "\x02", 10s);
  ASSERT_TRUE(letter);
  ASSERT_EQ(letter->size(), 5u);
  const Value report = DecodeValue((*letter)[4]).At("reports").AsArray().at(0);
  EXPECT_EQ(report.At("service").AsString(), "fragile");
  EXPECT_EQ(report.At("reporter").AsString(), "broker");
  EXPECT_EQ(report.At("sender").AsString(), "client-a");
}

// A worker host learns who submitted each job from the broker (REQUEST frame 5) and names
// that client key in the error reports it files; its own report job carries its own key.
TEST_F(CurveEndToEndTest, AWorkersErrorReportNamesTheClientKeyAsSender) {
  StartBroker(10s);  // the raw sink below does not answer heartbeats
  auto sink = RawWorker("courier.errors", "sink-1");
  worker_ = StartEchoWorker();
  ASSERT_TRUE(WaitForWorkers("echo", 1));
  ASSERT_TRUE(WaitForWorkers("courier.errors", 1));
  Keyring stranger;  // client-a's CURVE key, but a payload key the worker does not hold
  stranger.AddKey(91, std::string(32, 'k'));
  stranger.SetActive(91);
  Client unknown_key(Options(client_key_, std::make_shared<const Keyring>(std::move(stranger))));
  EXPECT_THROW(unknown_key.Call("echo", Value("x")), Error);

  // The broker files a dead letter for the job too (its worker handed it back on every
  // attempt: unknown_key); the worker's own report is the one the broker names a sender for.
  std::optional<std::vector<std::string>> request;
  for (int i = 0; i < 4; ++i) {
    request = sink->ReceiveWhere(2, "\x02", 10s);
    if (!request || request->size() == 6) break;
    // Not it: answer it (REPLY with its own envelope and payload), which frees the slot.
    sink->Send({"", "CRW01", "\x03", (*request)[3], (*request)[4]});
  }
  ASSERT_TRUE(request) << worker_->Log();
  ASSERT_EQ(request->size(), 6u) << "the broker did not name the report job's submitter";
  EXPECT_EQ((*request)[5], "worker-a");
  const detail::EnvelopeView envelope = detail::DecodeEnvelope((*request)[3]);
  const std::string plaintext = envelope.key_id == kUnsealedKeyId
                                    ? (*request)[4]
                                    : Keyring::Load(keyring_path_).Open((*request)[3], (*request)[4]);
  const Value report = DecodeValue(plaintext).At("reports").AsArray().at(0);
  EXPECT_EQ(report.At("service").AsString(), "echo");
  EXPECT_EQ(report.At("reporter").AsString(), "worker");
  EXPECT_EQ(report.At("sender").AsString(), "client-a");
}

TEST_F(CurveEndToEndTest, ErrorSinkAndMetricsServeOverCurveAndTheSinkRecordsTheSender) {
  const CurveKeyPair errors = GenerateCurveKeyPair("errors-a");
  const CurveKeyPair metrics = GenerateCurveKeyPair("metrics-a");
  SaveCurveKeyPair(dir_.path() / "errors-a.key", errors);
  SaveCurveKeyPair(dir_.path() / "metrics-a.key", metrics);
  WriteWorkersAllow("errors-a = { key = \"" + errors.public_key + "\", services = [\"courier.errors\"] }\n" +
                    "metrics-a = { key = \"" + metrics.public_key + "\", services = [\"courier.metrics\"] }\n");
  StartBroker(1000ms);  // the raw worker below does not answer heartbeats: 5 s of grace
  const std::string common = "brokers = [\"" + endpoint_ + "\"]\nkeyring = \"" + keyring_path_.string() +
                             "\"\nheartbeat_interval = \"1000ms\"\n";
  // The sink reads [security] from its file; the collector gets CURVE from its flags.
  const auto sink_config = dir_.Write("error-sink.toml", common + "db = \"" + (dir_.path() / "errors.db").string() +
                                                             "\"\n" + SecurityTable("errors-a.key"));
  const auto metrics_config = dir_.Write("metrics.toml", common + "http = \"\"\n");
  ChildProcess sink(BinaryPath("courier-error-sink"), {"--config", sink_config.string()}, dir_.path() / "sink.log",
                    {"XDG_CONFIG_HOME=" + dir_.path().string()});
  ChildProcess collector(BinaryPath("courier-metrics"),
                         {"--config", metrics_config.string(), "--curve-server-key", server_.public_key, "--curve-key",
                          (dir_.path() / "metrics-a.key").string()},
                         dir_.path() / "metrics.log", {"XDG_CONFIG_HOME=" + dir_.path().string()});
  ASSERT_TRUE(WaitForWorkers("courier.errors", 1)) << sink.Log();
  ASSERT_TRUE(WaitForWorkers("courier.metrics", 1)) << collector.Log();

  // A job whose only attempt crashes is dead-lettered; the sink stores the sender.
  auto fragile = RawWorker("fragile", "fragile-1");
  ASSERT_TRUE(WaitForWorkers("fragile", 1));
  CallOptions once;
  once.max_attempts = 1;
  auto job = good().Submit("fragile", Value("doomed"), once);
  ASSERT_TRUE(CrashHoldingNextJob(*fragile));
  ASSERT_EQ(job.wait_for(10s), std::future_status::ready);
  EXPECT_THROW(job.get(), Error);
  std::string sender;
  EXPECT_TRUE(WaitFor(
      [&] {
        const Value listed = admin().Call("courier.errors", Value::Object({{"op", "list"}, {"service", "fragile"}}));
        for (const Value& row : listed.At("reports").AsArray()) sender = row.At("sender").AsString();
        return !sender.empty();
      },
      10s))
      << sink.Log();
  EXPECT_EQ(sender, "client-a");
  EXPECT_NO_THROW(good().Call("courier.metrics", Value::Object({{"op", "stats"}})));
  EXPECT_EQ(Stat("refused_peers"), 0u) << broker_->Log();
}

TEST_F(CurveEndToEndTest, CliCreatesCurveKeysAndUsesThemThroughFlags) {
  // courier keygen --curve: a private key pair file, the public key alone on stdout.
  const auto key_file = dir_.path() / "cli-1.key";
  CliRun run = Courier({"keygen", "--curve", "--name", "cli-1", "--out", key_file.string()});
  ASSERT_EQ(run.exit_code, 0) << run.output;
  const CurveKeyPair cli = LoadCurveKeyPair(key_file);
  EXPECT_EQ(cli.name, "cli-1");
  EXPECT_THAT(run.output, HasSubstr(cli.public_key + "\n"));
  EXPECT_THAT(run.output, HasSubstr("cli-1 = \"" + cli.public_key + "\""));
  EXPECT_EQ(std::filesystem::status(key_file).permissions() & std::filesystem::perms::all,
            std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  run = Courier({"keygen", "--curve", "--name", "cli-1", "--out", key_file.string()});
  EXPECT_EQ(run.exit_code, 1) << run.output;  // never overwrites a key silently
  EXPECT_THAT(run.output, HasSubstr("already exists"));
  run = Courier({"keygen", "--curve", "--name", "bad name", "--out", (dir_.path() / "x.key").string()});
  EXPECT_EQ(run.exit_code, 2) << run.output;

  WriteClientsAllow("cli-1 = \"" + cli.public_key + "\"\n");
  StartBroker();
  worker_ = StartEchoWorker();
  ASSERT_TRUE(WaitForWorkers("echo", 1));
  auto with = [&](std::vector<std::string> extra, const std::string& deadline = "5s") {
    std::vector<std::string> args{"--broker", endpoint_, "--keyring", keyring_path_.string(), "--deadline", deadline};
    args.insert(args.end(), extra.begin(), extra.end());
    return Courier(args);
  };
  run = with({"--curve-server-key", (dir_.path() / "broker.pub").string(), "--curve-key", key_file.string(), "send",
              "echo", "{\"via\": \"cli\"}"});
  EXPECT_EQ(run.exit_code, 0) << run.output;
  EXPECT_THAT(run.output, HasSubstr("{\"via\":\"cli\"}"));
  run = with({"--curve-server-key", server_.public_key, "--curve-key", key_file.string(), "ping"});
  EXPECT_EQ(run.exit_code, 0) << run.output;

  // A key file others may read is refused with a clear message (exit 2).
  const auto loose = dir_.path() / "loose.key";
  std::filesystem::copy_file(key_file, loose);
  std::filesystem::permissions(loose, std::filesystem::perms::others_read, std::filesystem::perm_options::add);
  run = with({"--curve-server-key", server_.public_key, "--curve-key", loose.string(), "send", "echo", "1"});
  EXPECT_EQ(run.exit_code, 2) << run.output;
  EXPECT_THAT(run.output, HasSubstr("chmod 600"));
  // Half the settings is a configuration error, never a silent plain-text connection.
  run = with({"--curve-server-key", server_.public_key, "send", "echo", "1"});
  EXPECT_EQ(run.exit_code, 2) << run.output;
  run = with({"--curve-key", key_file.string(), "send", "echo", "1"});
  EXPECT_EQ(run.exit_code, 2) << run.output;
  // Without CURVE at all the CURVE broker never answers: unavailable (exit 3).
  run = with({"send", "echo", "1"}, "1500ms");
  EXPECT_EQ(run.exit_code, 3) << run.output;
}

TEST_F(CurveEndToEndTest, WorkerRefusesALooseKeyFileAtStart) {
  StartBroker();
  const auto loose = dir_.path() / "loose-worker.key";
  std::filesystem::copy_file(dir_.path() / "worker-a.key", loose);
  std::filesystem::permissions(loose, std::filesystem::perms::group_read, std::filesystem::perm_options::add);
  const auto config = dir_.Write("loose.toml", WorkerConfig({endpoint_}, keyring_path_, "[services.echo]\nplugin = \"echo\"\n",
                                                            1, SecurityTable("loose-worker.key")));
  ChildProcess worker(BinaryPath("courier-worker"), {"--config", config.string()}, dir_.path() / "loose.log",
                      {"XDG_CONFIG_HOME=" + dir_.path().string()});
  const int status = worker.Wait(10s);
  ASSERT_NE(status, -1) << worker.Log();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 2) << worker.Log();
  EXPECT_THAT(worker.Log(), HasSubstr("chmod 600"));
}

}  // namespace
}  // namespace courier::test
