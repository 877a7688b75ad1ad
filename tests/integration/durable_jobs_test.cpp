// Accepted means stored (issue 14), tried from the outside on the real binaries: a broker
// killed with SIGKILL and restarted on its data directory, workers counting every run of
// every job id (the clusterkit plugin's run log), a store made to fill up, results that
// expire, and a plain Majordomo peer speaking Titanic (RFC 9) across a broker crash.
#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <zmq.hpp>

#include "courier/client.hpp"
#include "courier/codec.hpp"
#include "courier/keyring.hpp"
#include "process.hpp"
#include "worker_support.hpp"

namespace courier::test {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr std::string_view kService = "cluster.work";

// One line of the clusterkit run log: "<job id hex> <attempt> <key> <running> <pid>".
struct PluginRun {
  std::string id;
  std::uint32_t attempt = 0;
  std::int64_t key = 0;
};

class DurableJobsTest : public ::testing::Test {
 protected:
  DurableJobsTest() : endpoint_(FreeEndpoint()) { keyring_path_ = WriteKeyring(dir_, keyring_); }

  // Starts (or restarts) the broker on the test's data directory; `extra` is appended to
  // its broker.toml.
  void StartBroker(const std::string& extra = "") {
    broker_.reset();
    const fs::path config = dir_.Write(
        "broker.toml", "bind = [\"" + endpoint_ + "\"]\ndata_dir = \"" + (dir_.path() / "data").string() +
                           "\"\nheartbeat_interval = \"200ms\"\nheartbeat_liveness = 3\n" + extra +
                           "\n[log]\nlevel = \"info\"\n");
    broker_ = std::make_unique<ChildProcess>(BinaryPath("courier-broker"),
                                             std::vector<std::string>{"--config", config.string()},
                                             dir_.path() / ("broker-" + std::to_string(++broker_starts_) + ".log"));
    ASSERT_TRUE(broker_->WaitForLog("listening on", 10s)) << broker_->Log();
  }
  void KillBroker() {
    broker_->Kill();
    broker_.reset();
  }

  void StartWorker(int capacity = 256) {
    const std::string services = "[services.\"cluster.work\"]\nplugin = \"" + PluginPath("clusterkit").string() +
                                 "\"\ncapacity = " + std::to_string(capacity) + "\nallow_unsealed = true\nlog = \"" +
                                 runs_.string() + "\"\n";
    worker_ = courier::test::StartWorker(dir_, WorkerConfig({endpoint_}, keyring_path_, services, 4),
                                         "worker-" + std::to_string(++worker_starts_));
  }

  ClientOptions Options() const {
    ClientOptions options;
    options.brokers = {endpoint_};
    options.keyring_path = keyring_path_;
    options.deadline = 120s;
    options.report = false;
    return options;
  }

  std::vector<PluginRun> Runs() const {
    std::vector<PluginRun> runs;
    std::ifstream in(runs_);
    std::string line;
    while (std::getline(in, line)) {
      std::istringstream fields(line);
      PluginRun run;
      if (fields >> run.id >> run.attempt >> run.key) runs.push_back(run);
    }
    return runs;
  }

  // Returns: the counter `name` of the broker's stats (via the CLI's SDK query).
  std::uint64_t Stat(Client& client, const std::string& name) {
    return client.Query("stats").At(name).AsUint();
  }

  TempDir dir_;
  std::string endpoint_;
  Keyring keyring_ = Keyring::Generate();
  fs::path keyring_path_;
  fs::path runs_ = dir_.path() / "runs.log";
  std::unique_ptr<ChildProcess> broker_;
  std::unique_ptr<ChildProcess> worker_;
  int broker_starts_ = 0;
  int worker_starts_ = 0;
};

// (1) 10,000 jobs acknowledged with no worker up, the broker killed and restarted on the
// same data directory, then a worker: every job runs exactly once, and every result is
// there to fetch by its id.
TEST_F(DurableJobsTest, TenThousandAcceptedJobsSurviveKill9AndEachRunsOnce) {
  constexpr int kJobs = 10000;
  StartBroker();
  std::map<std::string, std::int64_t> accepted;  // job id hex → key
  {
    Client client(Options());
    std::mutex mutex;
    std::atomic<int> done{0};
    std::atomic<int> failed{0};
    for (int key = 0; key < kJobs; ++key) {
      client.Enqueue(std::string(kService), Value::Object({{"key", key}}), [&, key](courier::Result result) {
        if (result.ok()) {
          std::lock_guard lock(mutex);
          accepted.emplace(result.job_id().Hex(), key);
        } else {
          ++failed;
        }
        ++done;
      });
    }
    ASSERT_TRUE(WaitFor([&] { return done.load() == kJobs; }, 120s)) << done.load() << " of " << kJobs;
    ASSERT_EQ(failed.load(), 0);
  }
  ASSERT_EQ(accepted.size(), static_cast<std::size_t>(kJobs));
  KillBroker();
  StartBroker();
  EXPECT_TRUE(broker_->WaitForLog("restored 10000 stored job(s)", 10s)) << broker_->Log();
  StartWorker();
  ASSERT_TRUE(WaitFor([&] { return Runs().size() >= static_cast<std::size_t>(kJobs); }, 120s)) << Runs().size();
  std::map<std::string, int> runs_per_id;
  for (const PluginRun& run : Runs()) {
    ++runs_per_id[run.id];
    EXPECT_EQ(run.attempt, 1u) << run.id;  // queued when the broker died: no attempt spent
    const auto found = accepted.find(run.id);
    ASSERT_NE(found, accepted.end()) << "a job nobody enqueued ran: " << run.id;
    EXPECT_EQ(found->second, run.key);
  }
  EXPECT_EQ(runs_per_id.size(), accepted.size());
  for (const auto& [id, count] : runs_per_id) EXPECT_EQ(count, 1) << id << " ran " << count << " times";

  Client client(Options());
  std::size_t fetched = 0;
  for (const auto& [hex, key] : accepted) {
    const Value result = client.Result(*JobId::FromHex(hex), 30s);
    EXPECT_EQ(result.At("key").AsInt(), key);
    ++fetched;
  }
  EXPECT_EQ(fetched, accepted.size());
}

// (2) The broker dies while a worker holds jobs: after the restart they run again, with
// attempt + 1, and their results are kept.
TEST_F(DurableJobsTest, JobsAWorkerHeldWhenTheBrokerDiedRunAgainWithTheNextAttempt) {
  constexpr int kJobs = 4;
  StartBroker();
  StartWorker(kJobs);
  std::vector<JobId> ids;
  {
    Client client(Options());
    for (int key = 0; key < kJobs; ++key) {
      ids.push_back(client.Enqueue(std::string(kService), Value::Object({{"key", key}, {"ms", 60000}})));
    }
  }
  ASSERT_TRUE(WaitFor([&] { return Runs().size() >= static_cast<std::size_t>(kJobs); }, 20s)) << Runs().size();
  // The store knows they are running (`jobs` reads it): their dispatch marks are written.
  {
    Client client(Options());
    JobsFilter running;
    running.state = JobState::kRunning;
    ASSERT_TRUE(WaitFor([&] { return client.Jobs(running).size() == static_cast<std::size_t>(kJobs); }, 10s));
  }
  // The machine goes down: broker and worker with it. Both come back.
  KillBroker();
  worker_->Kill();
  StartBroker();
  EXPECT_TRUE(broker_->WaitForLog("(4 redelivered with attempt + 1)", 10s)) << broker_->Log();
  // The same keys again, quickly this time: clusterkit sleeps only when asked, so the
  // redelivered jobs (still carrying ms = 60000) are told apart by their attempt.
  StartWorker(kJobs);
  ASSERT_TRUE(WaitFor([&] { return Runs().size() >= 2u * kJobs; }, 90s)) << Runs().size();
  std::map<std::string, std::set<std::uint32_t>> attempts;
  for (const PluginRun& run : Runs()) attempts[run.id].insert(run.attempt);
  for (const JobId& id : ids) EXPECT_EQ(attempts[id.Hex()], (std::set<std::uint32_t>{1, 2})) << id.Hex();
  Client client(Options());
  for (const JobId& id : ids) {
    const JobStatus status = client.Job(id);
    EXPECT_TRUE(status.state == JobState::kRunning || status.state == JobState::kDone) << ToString(status.state);
    EXPECT_EQ(status.attempt, 2u);
  }
}

// (2b) The same with the worker host alive through the broker's crash: it reconnects, the
// restored jobs (attempt 2) reach it while it may still run attempt 1, and every job ends
// done, its result kept.
TEST_F(DurableJobsTest, JobsAWorkerHeldFinishAfterTheBrokerRestartsWhileTheWorkerLives) {
  constexpr int kJobs = 4;
  StartBroker();
  StartWorker(kJobs);
  std::vector<JobId> ids;
  Client client(Options());
  for (int key = 0; key < kJobs; ++key) {
    ids.push_back(client.Enqueue(std::string(kService), Value::Object({{"key", key}, {"ms", 1500}})));
  }
  JobsFilter running;
  running.state = JobState::kRunning;
  ASSERT_TRUE(WaitFor([&] { return client.Jobs(running).size() == static_cast<std::size_t>(kJobs); }, 10s));
  KillBroker();
  StartBroker();
  EXPECT_TRUE(broker_->WaitForLog("(4 redelivered with attempt + 1)", 10s)) << broker_->Log();
  for (const JobId& id : ids) {
    const Value result = client.Result(id, 30s);
    EXPECT_GE(result.At("key").AsInt(), 0);
    EXPECT_EQ(client.Job(id).attempt, 2u) << id.Hex();
  }
}

// (3) A store that cannot take more: jobs are refused busy, none is acknowledged that was
// not stored (a kill -9 and restart finds exactly the acknowledged ones), and the service
// takes jobs again once the store has room.
TEST_F(DurableJobsTest, AFullStoreRefusesJobsBusyAndTakesThemAgainOnceItHasRoom) {
  StartBroker("store_max_bytes = 262144\n[defaults]\nqueue_limit = 100000");
  std::size_t acknowledged = 0;
  std::optional<Error> refusal;
  {
    Client client(Options());
    CallOptions once;
    once.max_retries = 0;
    const std::string filler(2000, 'x');
    for (int key = 0; key < 5000 && !refusal; ++key) {
      try {
        client.Send(std::string(kService), Value::Object({{"key", key}, {"pad", filler}}), once);
        ++acknowledged;
      } catch (const Error& error) {
        refusal = error;
      }
    }
    ASSERT_TRUE(refusal.has_value()) << "the store never filled up";
    EXPECT_EQ(refusal->code(), ErrorCode::kBusy) << refusal->what();
    EXPECT_NE(std::string(refusal->what()).find("full"), std::string::npos) << refusal->what();
    EXPECT_GE(Stat(client, "store_refusals"), 1u);
  }
  ASSERT_GT(acknowledged, 10u);
  KillBroker();
  StartBroker("store_max_bytes = 262144\n[defaults]\nqueue_limit = 100000");
  EXPECT_TRUE(broker_->WaitForLog("restored " + std::to_string(acknowledged) + " stored job(s)", 10s))
      << "acknowledged " << acknowledged << "\n"
      << broker_->Log();
  StartWorker();
  ASSERT_TRUE(WaitFor([&] { return Runs().size() >= acknowledged; }, 60s)) << Runs().size();
  Client client(Options());
  CallOptions once;
  once.max_retries = 0;
  std::optional<Error> last;
  const bool resumed = WaitFor(
      [&] {
        try {
          client.Send(std::string(kService), Value::Object({{"key", -1}}), once);
          return true;
        } catch (const Error& error) {
          last = error;
          return false;
        }
      },
      30s);
  EXPECT_TRUE(resumed) << (last ? last->what() : "");
}

// (4) A result lives for result_ttl, then the job is not_found.
TEST_F(DurableJobsTest, AResultPastItsTtlIsGoneAndReportedNotFound) {
  StartBroker("[defaults]\nresult_ttl = \"1s\"");
  StartWorker();
  Client client(Options());
  const JobId id = client.Enqueue(std::string(kService), Value::Object({{"key", 42}}));
  EXPECT_EQ(client.Result(id, 20s).At("key").AsInt(), 42);
  const JobStatus done = client.Job(id);
  EXPECT_EQ(done.state, JobState::kDone);
  EXPECT_GT(done.expires_ms, done.since_ms);
  std::optional<Error> gone;
  ASSERT_TRUE(WaitFor(
      [&] {
        try {
          client.Job(id);
          return false;
        } catch (const Error& error) {
          gone = error;
          return true;
        }
      },
      10s));
  EXPECT_EQ(gone->code(), ErrorCode::kNotFound) << gone->what();
}

// A plain Majordomo client (RFC 7 framing on a DEALER) speaking Titanic (RFC 9).
class TitanicClient {
 public:
  explicit TitanicClient(const std::string& endpoint) : socket_(context_, zmq::socket_type::dealer) {
    socket_.set(zmq::sockopt::linger, 0);
    socket_.set(zmq::sockopt::rcvtimeo, 5000);
    socket_.connect(endpoint);
  }
  // Returns: the reply's body frames (after [empty][MDPC01][service]).
  std::vector<std::string> Ask(const std::string& service, const std::vector<std::string>& body) {
    std::vector<std::string> frames{"", "MDPC01", service};
    frames.insert(frames.end(), body.begin(), body.end());
    for (std::size_t i = 0; i < frames.size(); ++i) {
      socket_.send(zmq::buffer(frames[i]), i + 1 < frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
    }
    std::vector<std::string> reply;
    zmq::message_t part;
    do {
      if (!socket_.recv(part)) return {};
      reply.push_back(part.to_string());
    } while (part.more());
    if (reply.size() < 3 || reply[1] != "MDPC01" || reply[2] != service) return {};
    return {reply.begin() + 3, reply.end()};
  }

 private:
  zmq::context_t context_;
  zmq::socket_t socket_;
};

// (5) Titanic: request, broker kill -9, restart, reply retrieved; then closed.
TEST_F(DurableJobsTest, ATitanicRequestOutlivesABrokerCrashAndItsReplyIsRetrieved) {
  StartBroker();
  std::string id;
  {
    TitanicClient titanic(endpoint_);
    const auto accepted = titanic.Ask("titanic.request", {std::string(kService), EncodeValue(Value::Object({{"key", 7}}))});
    ASSERT_EQ(accepted.size(), 2u);
    EXPECT_EQ(accepted[0], "200");
    id = accepted[1];
    EXPECT_EQ(titanic.Ask("titanic.reply", {id}), std::vector<std::string>{"300"});
  }
  KillBroker();
  StartBroker();
  StartWorker();
  TitanicClient titanic(endpoint_);
  std::vector<std::string> reply;
  ASSERT_TRUE(WaitFor(
      [&] {
        reply = titanic.Ask("titanic.reply", {id});
        return !reply.empty() && reply[0] != "300";
      },
      30s));
  ASSERT_EQ(reply.size(), 2u);
  EXPECT_EQ(reply[0], "200");
  EXPECT_EQ(DecodeValue(reply[1]).At("key").AsInt(), 7);
  EXPECT_EQ(titanic.Ask("titanic.close", {id}), std::vector<std::string>{"200"});
  EXPECT_EQ(titanic.Ask("titanic.reply", {id}), std::vector<std::string>{"400"});
  EXPECT_EQ(titanic.Ask("titanic.reply", {std::string(32, '0')}), std::vector<std::string>{"400"});
}

}  // namespace
}  // namespace courier::test
