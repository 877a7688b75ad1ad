#include "cluster_support.hpp"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <sstream>

namespace courier::test {

namespace fs = std::filesystem;

namespace {

// Both sides alike: a peer is dead after 1 s of silence (the client's failover is its own).
constexpr auto kHeartbeat = 200ms;
constexpr int kLiveness = 5;

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string Tail(const std::string& text, std::size_t lines) {
  std::size_t at = text.size();
  for (std::size_t n = 0; n <= lines && at != std::string::npos && at > 0; ++n) at = text.rfind('\n', at - 1);
  return at == std::string::npos ? text : text.substr(at + 1);
}

std::string Quoted(const std::string& text) { return "\"" + text + "\""; }

}  // namespace

// ---- Cluster ---------------------------------------------------------------------------------

Cluster::Cluster() {
  keyring_path_ = dir_.path() / "keyring.toml";
  const Keyring keyring = Keyring::Generate();
  keyring.Save(keyring_path_);
  keyring_ = std::make_shared<const Keyring>(Keyring::Load(keyring_path_));
}

Cluster::~Cluster() {
  // Workers first, so none is left trying to reach a broker that is gone.
  workers_.clear();
  brokers_.clear();
}

std::size_t Cluster::AddBroker(BrokerSpec spec) {
  BrokerNode node;
  node.spec = std::move(spec);
  brokers_.push_back(std::move(node));
  const std::size_t index = brokers_.size() - 1;
  EXPECT_TRUE(StartBroker(index)) << Logs();
  return index;
}

bool Cluster::StartBroker(std::size_t i) {
  BrokerNode& node = brokers_[i];
  if (node.process) node.process->Kill();
  ++node.starts;
  const fs::path config = dir_.Write(
      node.spec.name + ".toml", "bind = [" + Quoted(node.spec.endpoint) + "]\nheartbeat_interval = \"" +
                                    std::to_string(kHeartbeat.count()) + "ms\"\nheartbeat_liveness = " +
                                    std::to_string(kLiveness) + "\n[log]\nlevel = \"info\"\n");
  node.log = dir_.path() / (node.spec.name + "." + std::to_string(node.starts) + ".log");
  std::vector<std::string> args;
  fs::path binary = BinaryPath("courier-broker");
  if (!node.spec.netns.empty()) {
    args = {"netns", "exec", node.spec.netns, binary.string()};
    binary = TestHosts::IpBinary();
  }
  args.push_back("--config");
  args.push_back(config.string());
  node.process = std::make_unique<ChildProcess>(binary, std::move(args), node.log);
  return node.process->WaitForLog("listening on", 10s);
}

std::vector<std::string> Cluster::endpoints() const {
  std::vector<std::string> out;
  for (const BrokerNode& node : brokers_) out.push_back(node.spec.endpoint);
  return out;
}

void Cluster::AddWorker(const std::string& name, std::uint32_t capacity, int threads) {
  WorkerNode node;
  node.name = name;
  node.runs = dir_.path() / (name + ".runs");
  std::string list;
  for (const BrokerNode& broker : brokers_) list += (list.empty() ? "" : ", ") + Quoted(broker.spec.endpoint);
  const std::string config =
      "brokers = [" + list + "]\nkeyring = " + Quoted(keyring_path_.string()) + "\nthreads = " +
      std::to_string(threads) + "\nheartbeat_interval = \"" + std::to_string(kHeartbeat.count()) +
      "ms\"\nheartbeat_liveness = " + std::to_string(kLiveness) +
      "\nreconnect_initial = \"50ms\"\nreconnect_max = \"500ms\"\nreport = false\n"
      "plugin_dir = \"" COURIER_PLUGIN_DIR "\"\ninstance = " + Quoted(name) +
      "\n[log]\nlevel = \"debug\"\n[services.\"cluster.work\"]\nplugin = \"clusterkit\"\ncapacity = " +
      std::to_string(capacity) + "\nlog = " + Quoted(node.runs.string()) + "\n";
  const fs::path file = dir_.Write(name + ".toml", config);
  node.process = std::make_unique<ChildProcess>(BinaryPath("courier-worker"),
                                                std::vector<std::string>{"--config", file.string()},
                                                dir_.path() / (name + ".log"),
                                                std::vector<std::string>{"XDG_CONFIG_HOME=" + dir_.path().string()});
  EXPECT_TRUE(node.process->WaitForLog("serving [", 10s)) << node.process->Log();
  workers_.push_back(std::move(node));
}

ClientOptions Cluster::ClientFor() const {
  ClientOptions options;
  options.brokers = endpoints();
  options.keyring = keyring_;
  options.report = false;
  return options;
}

std::vector<HandlerRun> Cluster::Runs() const {
  std::vector<HandlerRun> runs;
  for (const WorkerNode& worker : workers_) {
    std::ifstream in(worker.runs);
    std::string line;
    while (std::getline(in, line)) {
      std::istringstream fields(line);
      HandlerRun run;
      if (fields >> run.job_id >> run.attempt >> run.key >> run.running >> run.pid) runs.push_back(run);
    }
  }
  return runs;
}

std::size_t Cluster::CountInWorkerLogs(const std::string& text) const {
  std::size_t count = 0;
  for (const WorkerNode& worker : workers_) {
    const std::string log = worker.process->Log();
    for (std::size_t at = log.find(text); at != std::string::npos; at = log.find(text, at + text.size())) ++count;
  }
  return count;
}

std::string Cluster::Logs() const {
  std::string out;
  for (const BrokerNode& broker : brokers_) {
    for (int start = 1; start <= broker.starts; ++start) {
      const fs::path log = dir_.path() / (broker.spec.name + "." + std::to_string(start) + ".log");
      out += "---- " + log.filename().string() + "\n" + Tail(ReadFile(log), 15);
    }
  }
  for (const WorkerNode& worker : workers_) {
    out += "---- " + worker.name + ".log\n" + Tail(worker.process->Log(), 15);
  }
  return out;
}

std::optional<ServiceRow> QueryService(Client& client, std::size_t broker, std::string_view service) {
  try {
    const std::vector<BrokerAnswer> answers = client.QueryAll("services");
    if (broker >= answers.size() || !answers[broker].result) return std::nullopt;
    for (const Value& row : answers[broker].result->AsArray()) {
      const Value* name = row.Find("name");
      if (name == nullptr || !name->IsString() || name->AsString() != service) continue;
      ServiceRow out;
      out.workers = row.At("workers").AsUint();
      out.queued = row.At("queued").AsUint();
      out.in_flight = row.At("in_flight").AsUint();
      out.dispatched = row.At("dispatched").AsUint();
      out.replied = row.At("replied").AsUint();
      return out;
    }
  } catch (const Error&) {
  }
  return std::nullopt;
}

bool EveryBrokerHasWorkers(Client& client, std::size_t brokers, std::uint64_t workers) {
  for (std::size_t b = 0; b < brokers; ++b) {
    const auto row = QueryService(client, b, kWorkService);
    if (!row || row->workers < workers) return false;
  }
  return true;
}

// ---- JobStream -------------------------------------------------------------------------------

JobStream::JobStream(int total, int handler_ms)
    : total_(total),
      handler_ms_(handler_ms),
      submitted_(static_cast<std::size_t>(total), 0),
      answers_(static_cast<std::size_t>(total), 0),
      answered_at_(static_cast<std::size_t>(total)) {}

bool JobStream::SubmitUpTo(Client& client, int end, std::chrono::milliseconds limit) {
  std::lock_guard submitting(submit_mutex_);
  const auto started = Clock::now();
  end = std::min(end, total_);
  for (; next_ < end; ++next_) {
    if (Clock::now() - started > limit) return false;
    const int key = next_;
    {
      std::lock_guard lock(mutex_);
      submitted_[static_cast<std::size_t>(key)] = 1;
    }
    client.Submit(kWorkService, Value::Object({{"key", key}, {"ms", handler_ms_}}),
                  [this, key](Result result) { OnResult(key, result); });
  }
  return true;
}

void JobStream::OnResult(int key, const Result& result) {
  std::lock_guard lock(mutex_);
  const auto index = static_cast<std::size_t>(key);
  ++answers_[index];
  ++answered_;
  answered_at_[index] = Clock::now();
  max_latency_ = std::max(max_latency_, result.elapsed());
  if (!result.ok()) {
    ++errors_[std::string(ToString(result.error()->code())) + " (" + result.error()->what() + ")"];
    return;
  }
  const Value& reply = result.value();
  const Value* got = reply.Find("key");
  if (got == nullptr || got->AsInt() != key) {
    ++errors_["a reply for another key"];
    return;
  }
  ++ok_;
  if (const Value* running = reply.Find("running")) max_running_ = std::max(max_running_, running->AsInt());
}

bool JobStream::WaitAnswered(int count, std::chrono::milliseconds timeout) {
  return WaitFor([&] { return answered() >= count; }, timeout);
}

int JobStream::answered() const {
  std::lock_guard lock(mutex_);
  return answered_;
}

int JobStream::ok() const {
  std::lock_guard lock(mutex_);
  return ok_;
}

std::string JobStream::Errors() const {
  std::lock_guard lock(mutex_);
  std::string out;
  for (const auto& [what, count] : errors_) out += (out.empty() ? "" : ", ") + what + ": " + std::to_string(count);
  return out.empty() ? "none" : out;
}

std::vector<int> JobStream::AnsweredTwice() const {
  std::lock_guard lock(mutex_);
  std::vector<int> out;
  for (std::size_t i = 0; i < answers_.size(); ++i) {
    if (answers_[i] > 1) out.push_back(static_cast<int>(i));
  }
  return out;
}

std::vector<int> JobStream::Unanswered() const {
  std::lock_guard lock(mutex_);
  std::vector<int> out;
  for (std::size_t i = 0; i < answers_.size(); ++i) {
    if (answers_[i] == 0) out.push_back(static_cast<int>(i));
  }
  return out;
}

std::vector<int> JobStream::Outstanding() const {
  std::lock_guard lock(mutex_);
  std::vector<int> out;
  for (std::size_t i = 0; i < answers_.size(); ++i) {
    if (submitted_[i] != 0 && answers_[i] == 0) out.push_back(static_cast<int>(i));
  }
  return out;
}

std::optional<JobStream::Clock::time_point> JobStream::AnsweredAt(int key) const {
  std::lock_guard lock(mutex_);
  const auto index = static_cast<std::size_t>(key);
  if (answers_[index] == 0) return std::nullopt;
  return answered_at_[index];
}

std::chrono::microseconds JobStream::MaxLatency() const {
  std::lock_guard lock(mutex_);
  return max_latency_;
}

std::int64_t JobStream::MaxRunning() const {
  std::lock_guard lock(mutex_);
  return max_running_;
}

// ---- TestHosts -------------------------------------------------------------------------------

fs::path TestHosts::IpBinary() {
  for (const char* candidate : {"/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"}) {
    if (::access(candidate, X_OK) == 0) return candidate;
  }
  return {};
}

bool TestHosts::Ip(const std::vector<std::string>& args, const fs::path& scratch, std::string* output) {
  const fs::path ip = IpBinary();
  if (ip.empty()) {
    if (output != nullptr) *output = "ip(8) not found";
    return false;
  }
  std::error_code ignored;
  fs::remove(scratch, ignored);
  ChildProcess process(ip, args, scratch);
  const int status = process.Wait(10s);
  if (output != nullptr) *output = process.Log();
  return status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

std::unique_ptr<TestHosts> TestHosts::Make(int count, const TempDir& dir, std::string& why) {
  std::unique_ptr<TestHosts> hosts(new TestHosts(dir));
  if (IpBinary().empty()) {
    why = "ip(8) is not installed";
    return nullptr;
  }
  // Namespaces of earlier runs that died before cleaning up: courier-test-PID-I.
  std::string listing;
  if (Ip({"netns", "list"}, hosts->scratch_, &listing)) {
    std::istringstream lines(listing);
    std::string name;
    while (lines >> name) {
      if (!name.starts_with("courier-test-")) continue;
      const std::string rest = name.substr(13);
      const std::string pid = rest.substr(0, rest.find('-'));
      if (pid.empty() || pid.find_first_not_of("0123456789") != std::string::npos) continue;
      if (::kill(static_cast<pid_t>(std::stol(pid)), 0) == 0) continue;  // its test still runs
      Ip({"netns", "delete", name}, hosts->scratch_);
    }
  }
  const int pid = static_cast<int>(::getpid());
  const int subnet = 1 + pid % 250;  // 10.99.X.0/24, X from the pid: two runs rarely meet
  for (int i = 0; i < count; ++i) {
    Host host;
    host.netns = "courier-test-" + std::to_string(pid) + "-" + std::to_string(i);
    host.test_link = "cq" + std::to_string(pid) + "t" + std::to_string(i);
    host.host_link = "cq" + std::to_string(pid) + "h" + std::to_string(i);
    const std::string prefix = "10.99." + std::to_string(subnet) + ".";
    const std::string test_address = prefix + std::to_string(4 * i + 1) + "/30";
    host.address = prefix + std::to_string(4 * i + 2);
    std::string output;
    if (!Ip({"netns", "add", host.netns}, hosts->scratch_, &output)) {
      why = "ip netns add is not permitted here: " + output;
      return nullptr;  // the destructor removes the hosts made so far
    }
    host.made = true;
    hosts->hosts_.push_back(host);
    const std::vector<std::vector<std::string>> steps = {
        {"link", "add", host.test_link, "type", "veth", "peer", "name", host.host_link},
        {"link", "set", host.host_link, "netns", host.netns},
        {"addr", "add", test_address, "dev", host.test_link},
        {"link", "set", host.test_link, "up"},
        {"netns", "exec", host.netns, IpBinary().string(), "addr", "add", host.address + "/30", "dev", host.host_link},
        {"netns", "exec", host.netns, IpBinary().string(), "link", "set", host.host_link, "up"},
        {"netns", "exec", host.netns, IpBinary().string(), "link", "set", "lo", "up"},
    };
    for (const auto& step : steps) {
      if (!Ip(step, hosts->scratch_, &output)) {
        std::string command = "ip";
        for (const auto& arg : step) command += " " + arg;
        why = "cannot set up test host " + host.netns + " (" + command + "): " + output;
        return nullptr;
      }
    }
  }
  return hosts;
}

bool TestHosts::SetLink(int i, bool up) {
  return Ip({"link", "set", hosts_[static_cast<std::size_t>(i)].test_link, up ? "up" : "down"}, scratch_);
}

TestHosts::~TestHosts() {
  for (const Host& host : hosts_) {
    // Deleting the namespace deletes the veth end inside it, and with it the pair.
    if (host.made) Ip({"netns", "delete", host.netns}, scratch_);
    Ip({"link", "delete", host.test_link}, scratch_);  // normally gone already
  }
}

}  // namespace courier::test
