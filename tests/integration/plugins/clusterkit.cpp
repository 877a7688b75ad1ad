// clusterkit — a plugin for the cluster integration tests (not installed, not a template):
// it records every handler run so a test can count, across worker processes, how often
// each job really ran and how many runs overlapped.
//
// Service "cluster.work" (not idempotent, so the host suppresses duplicates by job id):
//   {key: int, ms?: int} → {key, pid, running, max_running}, after sleeping ms.
//   running is the number of runs of this service in progress in this process when the
//   run started (itself included); max_running the largest such number seen so far.
//   With `log = "PATH"` in [services.cluster.work], every run appends one line at its
//   start:  "<job id hex> <attempt> <key> <running> <pid>\n"  (O_APPEND, one write each).
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <stdexcept>
#include <string>
#include <thread>

#include <courier/plugin.hpp>

namespace {

using courier::Value;

class Work {
 public:
  static constexpr std::string_view kName = "cluster.work";
  static constexpr bool kIdempotent = false;

  explicit Work(const courier::ConfigSection& config) {
    const std::string log = config.GetString("log", "");
    config.RejectUnknownKeys();
    if (!log.empty()) {
      log_fd_ = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
      if (log_fd_ < 0) throw std::runtime_error("cannot open " + log + ": " + std::strerror(errno));
    }
  }
  ~Work() {
    if (log_fd_ >= 0) ::close(log_fd_);
  }
  Work(const Work&) = delete;
  Work& operator=(const Work&) = delete;

  Value Handle(const Value& request, const courier::JobContext& job) {
    const std::int64_t key = request.At("key").AsInt();
    const std::int64_t running = ++running_;
    struct Leave {
      std::atomic<std::int64_t>& running;
      ~Leave() { --running; }
    } leave{running_};
    std::int64_t seen = max_running_.load();
    while (running > seen && !max_running_.compare_exchange_weak(seen, running)) {
    }
    const auto pid = static_cast<std::int64_t>(::getpid());
    if (log_fd_ >= 0) {
      const std::string line = job.job_id().Hex() + " " + std::to_string(job.attempt()) + " " + std::to_string(key) +
                               " " + std::to_string(running) + " " + std::to_string(pid) + "\n";
      [[maybe_unused]] const auto written = ::write(log_fd_, line.data(), line.size());
    }
    if (const Value* ms = request.Find("ms")) std::this_thread::sleep_for(std::chrono::milliseconds(ms->AsInt()));
    return Value::Object({{"key", key}, {"pid", pid}, {"running", running}, {"max_running", max_running_.load()}});
  }

 private:
  int log_fd_ = -1;
  std::atomic<std::int64_t> running_{0};
  std::atomic<std::int64_t> max_running_{0};
};

}  // namespace

COURIER_PLUGIN(Work)
