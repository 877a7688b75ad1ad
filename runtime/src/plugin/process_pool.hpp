// process_pool.hpp — handlers in supervised child processes (isolation = "process").
//
// A crash, abort, exit() or runaway allocation in a handler then costs the one job that
// child was running, never the host. Children are forked by a *zygote*: a process the host
// forks before it starts any thread (so no lock can be held in the copy), holding the
// loaded plugins, their service instances and the keys. The zygote forks one child per
// request and reports each child's exit status; a child runs one job at a time over a
// socketpair (child_link.hpp), its stdout/stderr go to a pipe the supervisor reads, keeps
// the last lines of (for crash records) and forwards to the host's stderr.
//
// The supervisor is a thread of the host owning every child's descriptors. It hands jobs
// to idle children, sends their outputs to the I/O thread's results PULL (the format of
// job_pool.hpp), replays their stage samples and error records, and replaces a child that
// died. A child whose job is still running `kill_after` past the job's deadline is killed
// (SIGKILL) and replaced; its job is answered deadline_exceeded. A child that died with a
// job is answered worker_crashed, with the signal and the child's last log lines in the
// error record. Children are recycled after max_jobs_per_child jobs. Each child's data
// segment is limited to max_memory (RLIMIT_DATA): an allocation beyond it fails in the
// handler (std::bad_alloc → handler_error) instead of growing the host.
//
// Every child and the zygote die with the host (PR_SET_PDEATHSIG), and signals meant for
// the host (SIGTERM, SIGINT, SIGHUP) stay blocked in them: the host decides when they end.
// Thread-safety: construct, Submit and Stop from the I/O thread.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <zmq.hpp>

#include "child_link.hpp"
#include "error_reporter.hpp"
#include "job_runner.hpp"
#include "stage_stats.hpp"

namespace courier::detail {

// Runs in each child: serves jobs from `link` until the host closes it.
using ChildMain = std::function<void(int link)>;

class Zygote {
 public:
  // Forks the zygote now. Call it while the process has one thread. `max_memory` bytes
  // (0 = no limit) bound each child's data segment.
  // Throws: Error(kIo) if the process cannot be forked.
  Zygote(ChildMain child_main, std::size_t max_memory);
  // Closes the control socket (the zygote kills its children and exits) and reaps it.
  ~Zygote();
  Zygote(const Zygote&) = delete;
  Zygote& operator=(const Zygote&) = delete;

  int control() const { return control_; }
  pid_t pid() const { return pid_; }

 private:
  int control_ = -1;
  pid_t pid_ = -1;
};

// The loop a child runs (child_main calls it): reads JOB frames from `link`, answers each
// with the DONE frame `run` makes, until the link closes. Never returns an exception.
void ServeChild(int link, std::size_t max_frame, const std::function<ChildDone(JobInput&)>& run) noexcept;

// A non-idempotent service's duplicate-suppression window (ServiceSettings::dedup_*).
struct DedupWindow {
  std::chrono::milliseconds window{};
  std::size_t entries = 0;
};

struct ProcessPoolOptions {
  unsigned children = 1;
  // By service index: set for non-idempotent services. Each child suppresses duplicates in
  // its own reply cache, so a job id is sent to the child that ran it first (while that
  // child lives and the window lasts): a duplicate waits for it and gets the first run's
  // answer. A duplicate whose child has died runs again: at least once, as after a crash.
  std::vector<std::optional<DedupWindow>> dedup;
  std::uint64_t max_jobs_per_child = 0;       // 0: never recycle
  std::chrono::milliseconds kill_after{5000};  // past a job's deadline
  std::size_t max_frame_bytes = 64 * 1024 * 1024;
};

class ProcessPool {
 public:
  // Starts the supervisor thread, which asks `zygote` for the children. The PULL at
  // `results_endpoint` must be bound already; `stats` and `reporter` outlive the pool.
  ProcessPool(std::unique_ptr<Zygote> zygote, ProcessPoolOptions options, zmq::context_t& context,
              std::string results_endpoint, StageStats& stats, ErrorReporter& reporter);
  ~ProcessPool();  // Stop()
  ProcessPool(const ProcessPool&) = delete;
  ProcessPool& operator=(const ProcessPool&) = delete;

  void Submit(JobInput job);
  // Kills every child and the zygote, and joins the supervisor. Jobs not answered yet get
  // no answer from the pool: the caller answers them.
  void Stop();

 private:
  struct Shared {
    std::mutex mutex;
    std::deque<JobInput> queue;
    bool stopping = false;
  };
  void Loop() noexcept;

  std::unique_ptr<Zygote> zygote_;
  ProcessPoolOptions options_;
  zmq::context_t& context_;
  std::string results_endpoint_;
  StageStats& stats_;
  ErrorReporter& reporter_;
  Shared shared_;
  int wake_fd_ = -1;
  std::thread thread_;
};

}  // namespace courier::detail
