// Faults stay small (issue 12), tried from the outside: real courier-broker,
// courier-error-sink and courier-worker processes, a misbehaving plugin (testkit), and a
// raw-frame client. A crashing handler costs its job, a poison job is dead-lettered, a
// hung handler does not starve its service, a runaway allocation is stopped, a drain
// ends on time, and a host with the wrong keys hands jobs back instead of failing them.
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>

#include <fstream>
#include <set>

#include "services_fixture.hpp"
#include "worker_support.hpp"

namespace courier::test {
namespace {

using namespace std::chrono_literals;

Value Action(const std::string& action) { return Value::Object({{"action", action}}); }

// Resident memory of a process, in MiB (0 if it is gone).
std::uint64_t ResidentMiB(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoull(line.substr(6)) / 1024;
  }
  return 0;
}

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kUnderAddressSanitizer = true;
#else
constexpr bool kUnderAddressSanitizer = false;
#endif

class WorkerIsolationTest : public ServicesFixture {
 protected:
  void SetUp() override {
    // Under ASan a handler's segfault or abort must still end its process by the signal
    // (not by ASan's report and exit), so the crash is seen as it is in production.
    env_.push_back("ASAN_OPTIONS=handle_segv=0:handle_abort=0:detect_leaks=0");
    key_file_ = WriteKeyring(dir_, keyring_);
    StartBroker();
  }

  // Starts a courier-worker serving testkit with `threads` slots and `extra` root keys.
  ChildProcess& StartHost(const std::string& name, int threads, const std::string& extra,
                          const std::filesystem::path& key_file = {}) {
    const std::string config =
        WorkerConfig({endpoint_}, key_file.empty() ? key_file_ : key_file,
                     "[services.testkit]\nplugin = \"testkit\"\n", threads, extra);
    ChildProcess& host =
        Start(name, BinaryPath("courier-worker"), {"--config", dir_.Write(name + ".toml", config).string()});
    EXPECT_TRUE(host.WaitForLog("serving [", 10s)) << host.Log();
    return host;
  }

  // Error-sink rows for testkit (the JSON of `courier errors list`).
  std::vector<Value> SinkRows() {
    const CliResult listed = Cli({"errors", "list", "--service", "testkit", "--since", "1h", "--json"});
    if (listed.status != 0) return {};
    return JsonOf(listed).At("reports").AsArray();
  }

  static std::size_t Count(const std::vector<Value>& rows, const std::string& code, const std::string& reporter) {
    std::size_t count = 0;
    for (const Value& row : rows) {
      count += row.At("code_name").AsString() == code && row.At("reporter").AsString() == reporter ? 1 : 0;
    }
    return count;
  }

  Keyring keyring_;
  std::filesystem::path key_file_;
};

TEST_F(WorkerIsolationTest, ASegfaultCostsOneJobAndAPoisonJobIsDeadLetteredWhileTheStreamGoesOn) {
  StartSink();
  ChildProcess& first = StartHost("host-a", 4, "isolation = \"process\"\n");
  ChildProcess& second = StartHost("host-b", 4, "isolation = \"process\"\n");
  RawClient client(endpoint_, keyring_);
  std::vector<JobId> stream;
  for (int i = 0; i < 100; ++i) stream.push_back(client.Submit("testkit", Action("echo")));
  const JobId poison = client.Submit("testkit", Action("segfault"));
  for (int i = 0; i < 100; ++i) stream.push_back(client.Submit("testkit", Action("echo")));

  std::vector<JobId> all = stream;
  all.push_back(poison);
  const std::vector<Answer> answers = client.Collect(all, 30s);
  ASSERT_EQ(answers.size(), all.size());
  for (std::size_t i = 0; i < stream.size(); ++i) EXPECT_TRUE(answers[i].ok) << i << ": " << answers[i].message;
  EXPECT_FALSE(answers.back().ok);
  EXPECT_EQ(answers.back().code, ErrorCode::kWorkerCrashed) << answers.back().message;
  EXPECT_TRUE(first.Running()) << first.Log();
  EXPECT_TRUE(second.Running()) << second.Log();

  // Each crash is in the sink (filed by the host that saw it, naming the signal), and so
  // is the dead letter (filed by the broker).
  std::vector<Value> rows;
  EXPECT_TRUE(WaitFor(
      [&] {
        rows = SinkRows();
        return Count(rows, "worker_crashed", "worker") >= 2 && Count(rows, "worker_crashed", "broker") == 1;
      },
      20s))
      << Log("sink");
  bool named_the_signal = false;
  for (const Value& row : rows) {
    named_the_signal = named_the_signal || row.At("message").AsString().find("SIGSEGV") != std::string::npos;
  }
  EXPECT_TRUE(named_the_signal);

  // The hosts replaced their children and go on serving.
  EXPECT_TRUE(client.Call("testkit", Action("echo")).ok);
}

TEST_F(WorkerIsolationTest, AnAbortOrExitInAHandlerIsACrashToo) {
  StartHost("host", 2, "isolation = \"process\"\n");
  RawClient client(endpoint_, keyring_);
  for (const char* action : {"abort", "exit"}) {
    const Answer answer = client.Call("testkit", Action(action), {}, 20s);
    EXPECT_FALSE(answer.ok);
    EXPECT_EQ(answer.code, ErrorCode::kWorkerCrashed) << action << ": " << answer.message;
  }
  EXPECT_TRUE(client.Call("testkit", Action("echo")).ok);
}

TEST_F(WorkerIsolationTest, AHungHandlerFailsAtItsDeadlineAndTheNextJobsRunOnFreshChildren) {
  ChildProcess& host = StartHost("host", 2, "isolation = \"process\"\nkill_after = \"300ms\"\n");
  RawClient client(endpoint_, keyring_);
  SubmitOptions short_deadline;
  short_deadline.deadline = 1500ms;
  const Value hang = Value::Object({{"action", "sleep"}, {"ms", 600000}});
  const std::vector<JobId> hung = {client.Submit("testkit", hang, short_deadline),
                                   client.Submit("testkit", hang, short_deadline)};
  std::vector<JobId> next;
  for (int i = 0; i < 20; ++i) next.push_back(client.Submit("testkit", Action("echo")));
  const auto started = std::chrono::steady_clock::now();
  std::vector<JobId> all = hung;
  all.insert(all.end(), next.begin(), next.end());
  const std::vector<Answer> answers = client.Collect(all, 15s);
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
  ASSERT_EQ(answers.size(), all.size());
  EXPECT_EQ(answers[0].code, ErrorCode::kDeadlineExceeded) << answers[0].message;
  EXPECT_EQ(answers[1].code, ErrorCode::kDeadlineExceeded) << answers[1].message;
  for (std::size_t i = 2; i < answers.size(); ++i) EXPECT_TRUE(answers[i].ok) << i << ": " << answers[i].message;
  EXPECT_LT(took, 10s) << "the jobs behind the hung ones waited for them";
  EXPECT_TRUE(host.WaitForLog("killing its handler process", 5s)) << host.Log();
}

TEST_F(WorkerIsolationTest, WithThreadsAHostWhoseSlotsAreAllStuckLeavesTheWorkToAnother) {
  ChildProcess& stuck = StartHost("host-stuck", 2, "isolation = \"thread\"\n");
  RawClient client(endpoint_, keyring_);
  SubmitOptions short_deadline;
  short_deadline.deadline = 1000ms;
  const Value hang = Value::Object({{"action", "sleep"}, {"ms", 600000}});
  const std::vector<JobId> hung = {client.Submit("testkit", hang, short_deadline),
                                   client.Submit("testkit", hang, short_deadline)};
  const std::vector<Answer> failed = client.Collect(hung, 10s);
  ASSERT_EQ(failed.size(), 2u);
  EXPECT_EQ(failed[0].code, ErrorCode::kDeadlineExceeded);
  EXPECT_EQ(failed[1].code, ErrorCode::kDeadlineExceeded);
  EXPECT_TRUE(stuck.WaitForLog("slots are stuck", 5s)) << stuck.Log();

  StartHost("host-free", 2, "isolation = \"thread\"\n");
  std::vector<JobId> next;
  for (int i = 0; i < 20; ++i) next.push_back(client.Submit("testkit", Action("pid")));
  const std::vector<Answer> answers = client.Collect(next, 15s);
  ASSERT_EQ(answers.size(), next.size());
  for (const Answer& answer : answers) {
    ASSERT_TRUE(answer.ok) << answer.message;
    EXPECT_NE(answer.reply.At("pid").AsInt(), static_cast<std::int64_t>(stuck.pid()));
  }
}

TEST_F(WorkerIsolationTest, AOneGibAllocationInAChildIsStoppedByMaxMemory) {
  if (kUnderAddressSanitizer) {
    GTEST_SKIP() << "ASan maps terabytes of shadow memory, so any RLIMIT_DATA stops every allocation";
  }
  ChildProcess& host = StartHost("host", 1, "isolation = \"process\"\nmax_memory = \"256MiB\"\n");
  RawClient client(endpoint_, keyring_);
  const Answer big = client.Call("testkit", Value::Object({{"action", "allocate"}, {"mb", 1024}}));
  EXPECT_FALSE(big.ok);
  EXPECT_EQ(big.code, ErrorCode::kHandlerError) << big.message;
  EXPECT_LT(ResidentMiB(host.pid()), 200u);
  const Answer small = client.Call("testkit", Value::Object({{"action", "allocate"}, {"mb", 16}}));
  EXPECT_TRUE(small.ok) << small.message;
}

TEST_F(WorkerIsolationTest, SigtermEndsWithinTheGracePeriodAndHandsTheRunningJobBack) {
  for (const char* isolation : {"thread", "process"}) {
    ChildProcess& host = StartHost(std::string("host-") + isolation, 1,
                                   "isolation = \"" + std::string(isolation) + "\"\ngrace_period = \"300ms\"\n");
    RawClient client(endpoint_, keyring_);
    client.Submit("testkit", Value::Object({{"action", "sleep"}, {"ms", 600000}}));
    ASSERT_TRUE(host.WaitForLog("received job", 10s)) << host.Log();
    const auto started = std::chrono::steady_clock::now();
    host.Signal(SIGTERM);
    const int status = host.Wait(5s);
    const auto took = std::chrono::steady_clock::now() - started;
    ASSERT_TRUE(WIFEXITED(status)) << isolation << " " << status << "\n" << host.Log();
    EXPECT_EQ(WEXITSTATUS(status), 0) << isolation << "\n" << host.Log();
    EXPECT_LT(took, 3s) << isolation;
    EXPECT_NE(host.Log().find("handing job"), std::string::npos) << host.Log();
  }
}

TEST_F(WorkerIsolationTest, AHostWithTheWrongKeysHandsJobsBackAndStopsTakingThem) {
  Keyring other;
  const std::filesystem::path other_file = WriteKeyring(dir_, other, "other-keyring.toml");
  ChildProcess& wrong = StartHost("host-wrong", 2, "", other_file);
  RawClient client(endpoint_, keyring_);
  // Only the wrong host is up: the first jobs bounce off it; then it stops taking them.
  std::vector<JobId> early;
  SubmitOptions patient;
  patient.max_attempts = 10;
  for (int i = 0; i < 5; ++i) early.push_back(client.Submit("testkit", Action("echo"), patient));
  EXPECT_TRUE(wrong.WaitForLog("taking no more jobs", 10s)) << wrong.Log();
  StartHost("host-right", 2, "");
  std::vector<JobId> later;
  for (int i = 0; i < 50; ++i) later.push_back(client.Submit("testkit", Action("echo"), patient));
  std::vector<JobId> all = early;
  all.insert(all.end(), later.begin(), later.end());
  const std::vector<Answer> answers = client.Collect(all, 20s);
  ASSERT_EQ(answers.size(), all.size());
  std::size_t ok = 0;
  for (const Answer& answer : answers) ok += answer.ok ? 1 : 0;
  // The early ones may have run out of attempts on the wrong host before the right one came;
  // none of the later ones may fail.
  for (std::size_t i = early.size(); i < answers.size(); ++i) EXPECT_TRUE(answers[i].ok) << answers[i].message;
  EXPECT_GE(ok, later.size());

  // Its key file fixed (the right keys copied over it), it takes jobs again.
  std::filesystem::copy_file(key_file_, other_file, std::filesystem::copy_options::overwrite_existing);
  EXPECT_TRUE(wrong.WaitForLog("taking jobs again", 10s)) << wrong.Log();
}

// The host names the key id it lacks (and the ids it has), once for a burst of such jobs,
// not once per job: what an operator needs to find the process with the other keyring.
TEST_F(WorkerIsolationTest, AHostLackingTheClientsKeyNamesItsKeyIdOnceNotPerJob) {
  Keyring other;
  const std::filesystem::path other_file = WriteKeyring(dir_, other, "other-keyring.toml");
  const std::uint32_t client_key = keyring_.active_key_id();
  ASSERT_FALSE(other.Holds(client_key));
  ChildProcess& wrong = StartHost("host-wrong", 2, "", other_file);
  RawClient client(endpoint_, keyring_);
  SubmitOptions patient;
  patient.max_attempts = 10;
  for (int i = 0; i < 5; ++i) client.Submit("testkit", Action("echo"), patient);
  // Three distinct jobs at least bounced off it by then (kKeyRejectsBeforeQuarantine).
  ASSERT_TRUE(wrong.WaitForLog("taking no more jobs", 10s)) << wrong.Log();
  const std::string log = wrong.Log();
  const std::string line = "sealed with key id " + std::to_string(client_key) + " could not be opened";
  std::size_t lines = 0;
  for (std::size_t at = log.find(line); at != std::string::npos; at = log.find(line, at + 1)) ++lines;
  EXPECT_EQ(lines, 1u) << log;
  EXPECT_NE(log.find("service testkit: 1 job " + line), std::string::npos) << log;
  EXPECT_NE(log.find("has ids [" + std::to_string(other.active_key_id()) + "]"), std::string::npos) << log;
  EXPECT_NE(log.find("check that every process shares the keyring"), std::string::npos) << log;
}

TEST_F(WorkerIsolationTest, ANonIdempotentJobIdRunsOnceAcrossChildren) {
  // One job id delivered twice at once, through two brokers (a client that failed over
  // while its first broker still held the job): four children could each take one.
  const std::string second_endpoint = FreeEndpoint();
  auto second_broker = test::StartBroker(dir_, second_endpoint, "broker-2");
  const std::string config = WorkerConfig({endpoint_, second_endpoint}, key_file_,
                                          "[services.\"testkit.once\"]\nplugin = \"testkit\"\n", 4,
                                          "isolation = \"process\"\n");
  ChildProcess& host = Start("host", BinaryPath("courier-worker"), {"--config", dir_.Write("host.toml", config).string()});
  ASSERT_TRUE(host.WaitForLog("serving [", 10s)) << host.Log();
  RawClient first_client(endpoint_, keyring_);
  RawClient second_client(second_endpoint, keyring_);
  SubmitOptions same;
  same.job_id = JobId::Random();
  const Value request = Value::Object({{"key", "a"}, {"ms", 300}});
  ASSERT_TRUE(WaitFor([&] { return first_client.Call("testkit.once", Value::Object({{"key", "warm"}})).ok &&
                                   second_client.Call("testkit.once", Value::Object({{"key", "warm"}})).ok; },
                      10s));
  first_client.Submit("testkit.once", request, same);
  second_client.Submit("testkit.once", request, same);
  const std::optional<Answer> first = first_client.Receive(10s);
  const std::optional<Answer> second = second_client.Receive(10s);
  ASSERT_TRUE(first && second);
  ASSERT_TRUE(first->ok) << first->message;
  ASSERT_TRUE(second->ok) << second->message;
  // The handler ran once: one process, one count, one answer for both deliveries.
  EXPECT_EQ(first->reply, second->reply);
  const Answer again = first_client.Call("testkit.once", request, same);
  ASSERT_TRUE(again.ok) << again.message;
  EXPECT_EQ(again.reply, first->reply);
}

// A broker that answers every READY with DISCONNECT must not get a handshake storm.
TEST(WorkerReconnectTest, DisconnectAfterReadyBacksOffExponentially) {
  TempDir dir;
  Keyring keyring;
  const auto key_file = WriteKeyring(dir, keyring);
  const std::string endpoint = FreeEndpoint();
  FakeBroker broker(endpoint);
  const std::string config =
      WorkerConfig({endpoint}, key_file, "[services.testkit]\nplugin = \"testkit\"\n", 1,
                   "reconnect_initial = \"50ms\"\nreconnect_max = \"800ms\"\n");
  // WorkerConfig sets reconnect_* itself; the later keys must not clash: drop its pair.
  std::string trimmed = config;
  for (const char* key : {"reconnect_initial = \"50ms\"\nreconnect_max = \"500ms\"\n"}) {
    trimmed.erase(trimmed.find(key), std::string(key).size());
  }
  auto worker = StartWorker(dir, trimmed);
  int readies = 0;
  const auto until = std::chrono::steady_clock::now() + 3s;
  while (std::chrono::steady_clock::now() < until) {
    auto ready = broker.Expect(detail::WorkerCommand::kReady, 100ms);
    if (!ready) continue;
    ++readies;
    broker.Send(ready->identity, detail::WorkerCommand::kDisconnect);
  }
  // 50 ms doubling to 800 ms (±50% jitter) allows about 8 in 3 s; without backoff it was
  // hundreds.
  EXPECT_GE(readies, 3);
  EXPECT_LE(readies, 14) << worker->Log();
}

}  // namespace
}  // namespace courier::test
