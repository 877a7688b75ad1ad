// The error sink end to end: reporters and the broker's dead letters reach courier.errors,
// survive restarts and outages, and come back out through `courier errors`.
#include <unistd.h>

#include <future>
#include <thread>

#include "courier/keyring.hpp"
#include "courier/worker.hpp"
#include "envelope_codec.hpp"
#include "reporting/worker_reporting.hpp"
#include "services_fixture.hpp"

namespace courier::test {
namespace {

using namespace std::chrono_literals;

class ErrorSinkIntegrationTest : public ServicesFixture {
 protected:
  static ErrorReport Failure(const std::string& message) {
    ErrorReport report;
    report.service = "resize";
    report.job_id = JobId::Random();
    report.attempt = 2;
    report.max_attempts = 3;
    report.trace_id[0] = 0xab;
    report.stage = "handle";
    report.code = ErrorCode::kHandlerError;
    report.message = message;
    return report;
  }

  // Returns: the sink's stats (stored, received, dropped...).
  Value SinkStats() { return Ask("courier.errors", Value::Object({{"op", "stats"}})); }
  bool WaitForStored(std::uint64_t count, std::chrono::milliseconds timeout = 15s) {
    return WaitFor([&] { return SinkStats().At("stored").AsUint() >= count; }, timeout);
  }

  // Submits one unsealed call job to `service` (mode call) and returns its frames.
  struct Submitted {
    JobId id;
    std::string envelope;
    std::string payload;
  };
  Submitted SubmitCall(RawPeer& client, const std::string& service, std::uint32_t max_attempts,
                       const Keyring* keyring = nullptr) {
    Envelope envelope;
    envelope.job_id = JobId::Random();
    envelope.service = service;
    envelope.created_at_ms = NowUnixMs();
    envelope.deadline_ms = envelope.created_at_ms + 120000;
    envelope.max_attempts = max_attempts;
    const std::string plaintext = EncodeValue(Value::Object({{"text", "replay me"}}));
    Submitted submitted{envelope.job_id, {}, {}};
    if (keyring != nullptr) {
      Keyring::Sealed sealed = keyring->Seal(envelope, plaintext);
      submitted.envelope = sealed.envelope;
      submitted.payload = sealed.payload;
    } else {
      submitted.envelope = detail::EncodeEnvelope(envelope);
      submitted.payload = plaintext;
    }
    client.Send({"", "CRC01", "\x01", submitted.envelope, submitted.payload});
    return submitted;
  }

  // Waits until the broker has `service`'s jobs in flight on a worker (QUERY services).
  bool WaitForInFlight(const std::string& service, std::uint64_t in_flight) {
    RawPeer client(context_, endpoint_);
    return WaitFor(
        [&] {
          client.Send({"", "CRC01", "\x05", "q", detail::EncodeQuery("services")});
          const auto reply = client.ReceiveWhere(2, "\x06", 500ms);
          if (!reply) return false;
          const Value body = DecodeValue(reply->back());
          for (const Value& entry : body.AsArray().at(1).AsArray()) {
            if (entry.At("name").AsString() == service && entry.At("in_flight").AsUint() == in_flight) return true;
          }
          return false;
        },
        10s);
  }

  // Kills a worker holding a max_attempts = 1 job: the broker dead-letters it.
  std::pair<Submitted, std::int64_t> DeadLetter(const std::string& service, const Keyring* keyring = nullptr) {
    Start("doomed", BinaryPath("courier-test-worker"),
          {"--broker", endpoint_, "--protocol", "courier", "--service", service, "--delay-ms", "600000",
           "--heartbeat-ms", "100"});
    EXPECT_TRUE(WaitForService(service)) << Log("doomed");
    RawPeer client(context_, endpoint_);
    Submitted submitted = SubmitCall(client, service, 1, keyring);
    EXPECT_TRUE(WaitForInFlight(service, 1));
    Kill("doomed");
    // The client is told, the sink gets the job.
    const auto error = client.ReceiveWhere(2, "\x04", 15s);
    EXPECT_TRUE(error) << Log("broker");
    if (error) {
      EXPECT_EQ(detail::DecodeErrorBody(error->back()).code, ErrorCode::kAttemptsExhausted);
    }
    std::int64_t id = 0;
    EXPECT_TRUE(WaitFor(
        [&] {
          const Value rows = Ask("courier.errors", Value::Object({{"op", "list"}, {"service", service}}));
          for (const Value& row : rows.At("reports").AsArray()) {
            if (row.At("job_id").AsString() == submitted.id.Hex()) id = row.At("id").AsInt();
          }
          return id != 0;
        },
        15s))
        << Log("sink") << Log("broker");
    return {submitted, id};
  }
};

TEST_F(ErrorSinkIntegrationTest, AReportAppearsInErrorsListWithTheRightFields) {
  StartBroker();
  StartSink();
  ErrorReportSender sender(Reporter());
  ErrorReport report = Failure("image too wide: 9000 px");
  sender.Report(report);
  ASSERT_TRUE(sender.Flush(10s));
  ASSERT_TRUE(WaitForStored(1)) << Log("sink");

  const CliResult listed = Cli({"errors", "list", "--service", "resize", "--since", "1h", "--json"});
  ASSERT_EQ(listed.status, 0) << listed.output;
  const Value rows = JsonOf(listed).At("reports");
  ASSERT_EQ(rows.size(), 1u) << listed.output;
  const Value& row = rows.AsArray()[0];
  EXPECT_EQ(row.At("service").AsString(), "resize");
  EXPECT_EQ(row.At("job_id").AsString(), report.job_id.Hex());
  EXPECT_EQ(row.At("attempt").AsUint(), 2u);
  EXPECT_EQ(row.At("max_attempts").AsUint(), 3u);
  EXPECT_EQ(row.At("stage").AsString(), "handle");
  EXPECT_EQ(row.At("code_name").AsString(), "handler_error");
  EXPECT_EQ(row.At("message").AsString(), "image too wide: 9000 px");
  EXPECT_EQ(row.At("reporter").AsString(), "worker");
  EXPECT_EQ(row.At("pid").AsUint(), static_cast<std::uint64_t>(::getpid()));
  EXPECT_FALSE(row.At("host").AsString().empty());
  EXPECT_EQ(row.At("trace_id").AsString().substr(0, 2), "ab");
  EXPECT_FALSE(row.At("dead_letter").AsBool());

  // Filters: another code or service finds nothing; the table form lists it.
  const CliResult other = Cli({"errors", "list", "--code", "invalid_payload", "--json"});
  ASSERT_EQ(other.status, 0) << other.output;
  EXPECT_EQ(JsonOf(other).At("reports").size(), 0u);
  const CliResult table = Cli({"errors", "list"});
  ASSERT_EQ(table.status, 0) << table.output;
  EXPECT_NE(table.output.find("handler_error"), std::string::npos) << table.output;
  EXPECT_NE(table.output.find("image too wide"), std::string::npos) << table.output;
  const CliResult shown = Cli({"errors", "show", std::to_string(row.At("id").AsInt())});
  ASSERT_EQ(shown.status, 0) << shown.output;
  EXPECT_NE(shown.output.find(report.job_id.Hex()), std::string::npos) << shown.output;
}

TEST_F(ErrorSinkIntegrationTest, WithoutASinkTheCommandSaysSoAtOnce) {
  StartBroker();
  const auto started = std::chrono::steady_clock::now();
  const CliResult listed = Cli({"errors", "list"});
  EXPECT_EQ(listed.status, 1) << listed.output;
  EXPECT_NE(listed.output.find("no error sink"), std::string::npos) << listed.output;
  EXPECT_LT(std::chrono::steady_clock::now() - started, 10s);  // not the 20 s deadline
}

TEST_F(ErrorSinkIntegrationTest, TheWorkerHostsRecordsArriveThroughTheAdapter) {
  StartBroker();
  StartSink();
  detail::SinkErrorReporter reporter(Reporter());
  detail::ErrorRecord record;
  record.job_id = JobId::Random();
  record.service = "thumbs";
  record.broker = endpoint_;
  record.attempt = 1;
  record.stage = Stage::kVerify;
  record.code = ErrorCode::kInvalidPayload;
  record.message = "width: expected an integer";
  record.at_ms = NowUnixMs();
  reporter.Report(record);
  ASSERT_TRUE(reporter.sender().Flush(10s));
  ASSERT_TRUE(WaitForStored(1)) << Log("sink");
  const Value row = Ask("courier.errors", Value::Object({{"op", "list"}})).At("reports").AsArray().at(0);
  EXPECT_EQ(row.At("service").AsString(), "thumbs");
  EXPECT_EQ(row.At("stage").AsString(), "verify");
  EXPECT_EQ(row.At("code_name").AsString(), "invalid_payload");
  EXPECT_EQ(row.At("broker").AsString(), endpoint_);
  EXPECT_EQ(row.At("job_id").AsString(), record.job_id.Hex());
}

TEST_F(ErrorSinkIntegrationTest, ADeadLetterIsStoredWithItsEnvelopeAndPayloadAndReplays) {
  StartBroker();
  StartSink();
  const auto [submitted, id] = DeadLetter("flaky");
  ASSERT_NE(id, 0);
  const CliResult shown = Cli({"errors", "show", std::to_string(id), "--json"});
  ASSERT_EQ(shown.status, 0) << shown.output;
  const Value row = JsonOf(shown);
  EXPECT_EQ(row.At("reporter").AsString(), "broker");
  EXPECT_EQ(row.At("code_name").AsString(), "attempts_exhausted");
  EXPECT_TRUE(row.At("dead_letter").AsBool());
  EXPECT_EQ(row.At("envelope").AsBinary().bytes, submitted.envelope);
  EXPECT_EQ(row.At("payload").AsBinary().bytes, submitted.payload);
  EXPECT_EQ(row.At("job").At("service").AsString(), "flaky");

  // The fault goes away (a worker that answers), and the same job is replayed.
  Start("healthy", BinaryPath("courier-test-worker"),
        {"--broker", endpoint_, "--protocol", "courier", "--service", "flaky", "--heartbeat-ms", "100"});
  ASSERT_TRUE(WaitForService("flaky"));
  const CliResult replayed = Cli({"errors", "replay", std::to_string(id), "--json"});
  ASSERT_EQ(replayed.status, 0) << replayed.output << Log("sink");
  const Value result = JsonOf(replayed);
  EXPECT_EQ(result.At("outcome").AsString(), "replied") << replayed.output;
  EXPECT_EQ(result.At("job_id").AsString(), submitted.id.Hex());  // the same job
  // The test worker echoes the request: the reply carries the original payload.
  EXPECT_EQ(result.At("reply").At("text").AsString(), "replay me") << replayed.output;
  EXPECT_TRUE(Process("healthy").WaitForLog("served 1", 5s));
  const Value after = Ask("courier.errors", Value::Object({{"op", "show"}, {"id", Value(id)}}));
  EXPECT_EQ(after.At("replays").AsUint(), 1u);
}

// `errors show ID --open`: the dead letter's payload, still sealed in the store, opened
// with the local keyring (the one the CLI's jobs use) and printed as JSON.
TEST_F(ErrorSinkIntegrationTest, ShowOpenPrintsASealedDeadLettersRequest) {
  StartBroker();
  StartSink();  // creates the keyring everyone here shares (XDG_CONFIG_HOME)
  const Keyring keyring = Keyring::Load(dir_.path() / "config" / "courier" / "keyring.toml");
  const auto [submitted, id] = DeadLetter("flaky", &keyring);
  ASSERT_NE(id, 0);
  const CliResult opened = Cli({"errors", "show", std::to_string(id), "--open"});
  ASSERT_EQ(opened.status, 0) << opened.output;
  EXPECT_EQ(JsonOf(opened).At("text").AsString(), "replay me") << opened.output;
  EXPECT_EQ(opened.output.find("$bin"), std::string::npos) << "opened, not the sealed bytes: " << opened.output;

  const CliResult both = Cli({"errors", "show", std::to_string(id), "--open", "--json"});
  ASSERT_EQ(both.status, 0) << both.output;
  const Value row = JsonOf(both);
  EXPECT_EQ(row.At("request").At("text").AsString(), "replay me");
  EXPECT_EQ(row.At("payload").AsBinary().bytes, submitted.payload);  // the rest as without --open

  const CliResult plain = Cli({"errors", "show", std::to_string(id)});  // unchanged without --open
  ASSERT_EQ(plain.status, 0) << plain.output;
  EXPECT_EQ(plain.output.find("replay me"), std::string::npos) << plain.output;
  EXPECT_NE(plain.output.find("sealed with key " + std::to_string(keyring.active_key_id())), std::string::npos)
      << plain.output;
}

TEST_F(ErrorSinkIntegrationTest, ShowOpenNamesTheKeyIdTheLocalKeyringLacks) {
  StartBroker();
  StartSink();
  const Keyring local = Keyring::Load(dir_.path() / "config" / "courier" / "keyring.toml");
  const Keyring foreign = Keyring::Generate();  // another team's keyring
  ASSERT_FALSE(local.Holds(foreign.active_key_id()));
  const auto [submitted, id] = DeadLetter("foreign", &foreign);
  ASSERT_NE(id, 0);
  const CliResult opened = Cli({"errors", "show", std::to_string(id), "--open"});
  EXPECT_EQ(opened.status, 1) << opened.output;
  EXPECT_NE(opened.output.find("unknown_key"), std::string::npos) << opened.output;
  EXPECT_NE(opened.output.find("key id " + std::to_string(foreign.active_key_id())), std::string::npos)
      << opened.output;
  EXPECT_NE(opened.output.find("holds ids [" + std::to_string(local.active_key_id()) + "]"), std::string::npos)
      << opened.output;

  // A report that is no dead letter has no payload to open.
  ErrorReportSender sender(Reporter());
  ErrorReport report = Failure("plain failure");
  sender.Report(report);
  ASSERT_TRUE(sender.Flush(10s));
  std::int64_t plain = 0;
  ASSERT_TRUE(WaitFor(
      [&] {
        const Value listed = Ask("courier.errors", Value::Object({{"op", "list"}, {"service", "resize"}}));
        for (const Value& row : listed.At("reports").AsArray()) plain = row.At("id").AsInt();
        return plain != 0;
      },
      15s));
  const CliResult none = Cli({"errors", "show", std::to_string(plain), "--open"});
  EXPECT_EQ(none.status, 1) << none.output;
  EXPECT_NE(none.output.find("only dead letters"), std::string::npos) << none.output;
}

TEST_F(ErrorSinkIntegrationTest, ASealedDeadLetterReplaysThroughARealWorker) {
  StartBroker();
  StartSink();  // creates the keyring everyone here shares (XDG_CONFIG_HOME)
  const Keyring keyring = Keyring::Load(dir_.path() / "config" / "courier" / "keyring.toml");
  const auto [submitted, id] = DeadLetter("echo", &keyring);
  ASSERT_NE(id, 0);
  const auto worker_config = dir_.Write("worker.toml", "brokers = [\"" + endpoint_ + "\"]\nheartbeat_interval = \"200ms\"\n");
  Start("worker", BinaryPath("courier-worker"),
        {"--config", worker_config.string(), "--plugin", PluginPath("echo").string()});
  ASSERT_TRUE(WaitForService("echo")) << Log("worker");
  const CliResult replayed = Cli({"errors", "replay", std::to_string(id), "--json"});
  ASSERT_EQ(replayed.status, 0) << replayed.output << Log("sink") << Log("worker");
  const Value result = JsonOf(replayed);
  EXPECT_EQ(result.At("outcome").AsString(), "replied");
  EXPECT_EQ(result.At("reply").At("text").AsString(), "replay me");  // opened by the CLI

  // --fresh: a new job (new id and deadline) with the payload the CLI opened itself.
  const CliResult fresh = Cli({"errors", "replay", std::to_string(id), "--fresh", "--json"});
  ASSERT_EQ(fresh.status, 0) << fresh.output;
  const Value again = JsonOf(fresh);
  EXPECT_EQ(again.At("outcome").AsString(), "replied");
  EXPECT_NE(again.At("job_id").AsString(), submitted.id.Hex());
  EXPECT_EQ(again.At("reply").At("text").AsString(), "replay me");
}

// A handler that always throws: its error record reaches the sink through the host's
// reporter.
class ThrowingService {
 public:
  static constexpr std::string_view kName = "thrower";
  Value Handle(const Value& request) const {
    throw std::runtime_error("kaboom on request " + ToJson(request));
  }
};

TEST_F(ErrorSinkIntegrationTest, AThrowingHandlersErrorAppearsInErrorsList) {
  StartBroker();
  StartSink();
  std::promise<WorkerHost*> started;
  std::thread host_thread([&] {
    WorkerOptions options;
    options.brokers = {endpoint_};
    options.keyring = dir_.path() / "config" / "courier" / "keyring.toml";
    options.threads = 1;
    options.heartbeat_interval = 200ms;
    options.handle_signals = false;
    options.schema_dirs.clear();
    WorkerHost host(options);
    host.Register<ThrowingService>(ConfigSection::Parse("allow_unsealed = true\n", "test"));
    started.set_value(&host);
    host.Run();
  });
  WorkerHost* host = started.get_future().get();
  ASSERT_TRUE(WaitForService("thrower"));
  try {
    Ask("thrower", Value::Object({{"n", 7}}));
    ADD_FAILURE() << "the handler did not throw";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kHandlerError);
  }
  EXPECT_TRUE(WaitFor(
      [&] {
        const CliResult listed = Cli({"errors", "list", "--service", "thrower", "--json"});
        if (listed.status != 0) return false;
        const Value rows = JsonOf(listed).At("reports");
        if (rows.size() != 1) return false;
        const Value& row = rows.AsArray()[0];
        return row.At("stage").AsString() == "handle" && row.At("code_name").AsString() == "handler_error" &&
               row.At("message").AsString().find("kaboom") != std::string::npos &&
               row.At("reporter").AsString() == "worker";
      },
      15s))
      << Log("sink");
  host->Stop();
  host_thread.join();
}

TEST_F(ErrorSinkIntegrationTest, TheSinkRestartsWithoutLosingStoredErrors) {
  StartBroker();
  StartSink();
  {
    ErrorReportSender sender(Reporter());
    for (int i = 0; i < 10; ++i) sender.Report(Failure("failure " + std::to_string(i)));
    ASSERT_TRUE(sender.Flush(10s));
  }
  ASSERT_TRUE(WaitForStored(10)) << Log("sink");
  Kill("sink");  // SIGKILL: no chance to flush anything
  StartSink();
  const Value stats = SinkStats();
  EXPECT_EQ(stats.At("stored").AsUint(), 10u);
  const CliResult listed = Cli({"errors", "list", "--json"});
  ASSERT_EQ(listed.status, 0) << listed.output;
  EXPECT_EQ(JsonOf(listed).At("reports").size(), 10u);
}

TEST_F(ErrorSinkIntegrationTest, ErrorsSentWhileTheSinkIsDownArriveWhenItComesBack) {
  StartBroker();
  ErrorReportSender sender(Reporter());
  for (int i = 0; i < 25; ++i) sender.Report(Failure("while down " + std::to_string(i)));
  // The broker accepts the batches and queues them for courier.errors.
  ASSERT_TRUE(sender.Flush(10s));
  EXPECT_EQ(sender.counters().sent, 25u);
  StartSink();
  ASSERT_TRUE(WaitForStored(25)) << Log("sink");
  EXPECT_EQ(SinkStats().At("dropped").AsUint(), 0u);
}

TEST_F(ErrorSinkIntegrationTest, WithNoBrokerReportsWaitInTheBoundedBufferAndOverflowIsCounted) {
  ReporterOptions options = Reporter();
  options.buffer_limit = 20;
  options.batch_limit = 10;
  ErrorReportSender sender(options);
  std::uint64_t kept = 0;
  for (int i = 0; i < 100; ++i) kept += sender.Report(Failure("no broker " + std::to_string(i))) ? 1 : 0;
  EXPECT_LE(kept, options.buffer_limit + options.batch_limit);
  EXPECT_EQ(sender.counters().dropped, 100 - kept);

  StartBroker();
  StartSink();
  ASSERT_TRUE(sender.Flush(30s)) << Log("sink");
  ASSERT_TRUE(WaitFor(
      [&] {
        const Value stats = SinkStats();
        return stats.At("stored").AsUint() == kept && stats.At("dropped").AsUint() == 100 - kept;
      },
      15s))
      << ToJson(SinkStats());
  const CliResult listed = Cli({"errors", "list", "--limit", "1000"});
  ASSERT_EQ(listed.status, 0);
  EXPECT_NE(listed.output.find("reporters lost " + std::to_string(100 - kept)), std::string::npos) << listed.output;
}

}  // namespace
}  // namespace courier::test
