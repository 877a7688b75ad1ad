// cluster_support.hpp — what the cluster integration tests share: a cluster of real
// courier-broker and courier-worker processes serving the clusterkit plugin's
// "cluster.work" (one run log per worker host), a bounded job stream driven through
// courier::Client, and test hosts made of network namespaces with veth pairs.
// Thread-safety: a Cluster and a TestHosts belong to the test's thread; a JobStream may be
// fed from several threads (its results arrive on the client's callback thread).
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "courier/client.hpp"
#include "courier/keyring.hpp"
#include "process.hpp"

namespace courier::test {

using namespace std::chrono_literals;

inline constexpr std::string_view kWorkService = "cluster.work";

// One broker of the cluster. `netns` empty: it runs in the test's own namespace.
struct BrokerSpec {
  std::string name;
  std::string endpoint;  // bound by the broker and dialled by everyone
  std::string netns;
};

// One run of a handler, as a worker host's run log has it.
struct HandlerRun {
  std::string job_id;
  std::uint32_t attempt = 0;
  std::int64_t key = 0;
  std::int64_t running = 0;  // runs of the service in progress in that process, itself included
  std::int64_t pid = 0;
};

// What a broker's `services` query says about one service.
struct ServiceRow {
  std::uint64_t workers = 0;
  std::uint64_t queued = 0;
  std::uint64_t in_flight = 0;
  std::uint64_t dispatched = 0;
  std::uint64_t replied = 0;
};

class Cluster {
 public:
  Cluster();
  ~Cluster();
  Cluster(const Cluster&) = delete;
  Cluster& operator=(const Cluster&) = delete;

  const TempDir& dir() const { return dir_; }
  std::shared_ptr<const Keyring> keyring() const { return keyring_; }

  // Adds a broker and starts it (heartbeat 200 ms × liveness 5, like the workers).
  // Returns: its index.
  std::size_t AddBroker(BrokerSpec spec);
  // (Re)starts broker `i` on its endpoint, with a log file of its own for each start.
  // Returns: whether it said it listens within 10 s.
  bool StartBroker(std::size_t i);
  ChildProcess& broker(std::size_t i) { return *brokers_[i].process; }
  const std::string& endpoint(std::size_t i) const { return brokers_[i].spec.endpoint; }
  std::vector<std::string> endpoints() const;

  // Starts a worker host serving cluster.work with `capacity` to every broker, with
  // `threads` handler threads; its runs are logged to dir/NAME.runs.
  void AddWorker(const std::string& name, std::uint32_t capacity, int threads);
  ChildProcess& worker(std::size_t i) { return *workers_[i].process; }
  std::size_t worker_count() const { return workers_.size(); }

  // Client options for the whole cluster: every broker, the shared keyring, no reports.
  ClientOptions ClientFor() const;

  // Returns: every handler run logged by every worker host so far.
  std::vector<HandlerRun> Runs() const;
  // Returns: how often `text` occurs in the worker hosts' logs, all together.
  std::size_t CountInWorkerLogs(const std::string& text) const;
  // Returns: the jobs the worker hosts rejected because every slot was taken.
  std::size_t CapacityRejects() const { return CountInWorkerLogs("slots taken"); }
  // Returns: the last lines of every process's log, for failure messages.
  std::string Logs() const;

 private:
  struct BrokerNode {
    BrokerSpec spec;
    int starts = 0;
    std::filesystem::path log;
    std::unique_ptr<ChildProcess> process;
  };
  struct WorkerNode {
    std::string name;
    std::filesystem::path runs;
    std::unique_ptr<ChildProcess> process;
  };

  TempDir dir_;
  std::filesystem::path keyring_path_;
  std::shared_ptr<const Keyring> keyring_;
  std::vector<BrokerNode> brokers_;
  std::vector<WorkerNode> workers_;
};

// Returns: broker `broker`'s row for `service` (nullopt if it did not answer or does not
// list the service).
std::optional<ServiceRow> QueryService(Client& client, std::size_t broker, std::string_view service);
// Returns: whether each of the first `brokers` brokers lists at least `workers` workers for
// cluster.work.
bool EveryBrokerHasWorkers(Client& client, std::size_t brokers, std::uint64_t workers);

// A bounded stream of cluster.work jobs (key = index) submitted through one client;
// records when and how each job was answered.
class JobStream {
 public:
  using Clock = std::chrono::steady_clock;

  JobStream(int total, int handler_ms);

  // Submits jobs [next, end) with Submit + callback; blocks while the client's window is
  // full. Returns: false if that took longer than `limit` (it then stops early).
  bool SubmitUpTo(Client& client, int end, std::chrono::milliseconds limit = 60s);
  // Returns: whether every submitted job was answered within `timeout`.
  bool WaitAnswered(int count, std::chrono::milliseconds timeout);

  int answered() const;
  int ok() const;
  // Returns: "code: n, ..." for the failed jobs.
  std::string Errors() const;
  // Returns: the keys answered more than once, and those never answered.
  std::vector<int> AnsweredTwice() const;
  std::vector<int> Unanswered() const;
  // Returns: the keys submitted but not yet answered now.
  std::vector<int> Outstanding() const;
  // Returns: when job `key` was answered (nullopt if it was not).
  std::optional<Clock::time_point> AnsweredAt(int key) const;
  std::chrono::microseconds MaxLatency() const;
  // Returns: the largest `running` a reply reported (handler runs overlapping in one host).
  std::int64_t MaxRunning() const;

 private:
  void OnResult(int key, const Result& result);

  const int total_;
  const int handler_ms_;
  int next_ = 0;  // guarded by submit_mutex_
  std::mutex submit_mutex_;
  mutable std::mutex mutex_;
  std::vector<int> submitted_;
  std::vector<int> answers_;
  std::vector<Clock::time_point> answered_at_;
  int answered_ = 0;
  int ok_ = 0;
  std::map<std::string, int> errors_;
  std::chrono::microseconds max_latency_{0};
  std::int64_t max_running_ = 0;
};

// Test hosts: one network namespace per host, each joined to the test's namespace by a
// veth pair on private test addresses 10.99.X.(4i+1) (test side) / 10.99.X.(4i+2) (host
// side), /30 each, X chosen from the test's pid. Everything it made is deleted by the
// destructor; namespaces left by a test that died are deleted by the next Make.
class TestHosts {
 public:
  // Returns: the hosts, or null with `why` set if namespaces cannot be made here.
  static std::unique_ptr<TestHosts> Make(int count, const TempDir& dir, std::string& why);
  ~TestHosts();
  TestHosts(const TestHosts&) = delete;
  TestHosts& operator=(const TestHosts&) = delete;

  const std::string& netns(int i) const { return hosts_[static_cast<std::size_t>(i)].netns; }
  // Returns: the host's address (inside its namespace).
  const std::string& address(int i) const { return hosts_[static_cast<std::size_t>(i)].address; }
  // Sets the test side of host `i`'s link down (cut off) or up. Returns: whether ip agreed.
  bool SetLink(int i, bool up);

  // Returns: the ip(8) binary.
  static std::filesystem::path IpBinary();
  // Runs ip(8) with `args`. Returns: whether it exited 0; `output` gets what it printed.
  static bool Ip(const std::vector<std::string>& args, const std::filesystem::path& scratch,
                 std::string* output = nullptr);

 private:
  struct Host {
    std::string netns;
    std::string test_link;  // in the test's namespace
    std::string host_link;  // inside the host's namespace
    std::string address;
    bool made = false;
  };
  explicit TestHosts(const TempDir& dir) : scratch_(dir.path() / "ip.out") {}

  std::filesystem::path scratch_;
  std::vector<Host> hosts_;
};

}  // namespace courier::test
