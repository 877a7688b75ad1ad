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
// The pool has no thread of its own: the host's I/O thread polls every child's descriptors
// beside its broker sockets, hands jobs to idle children, takes their outputs straight to
// the brokers, replays their stage samples and error records, and replaces a child that
// died (no hand-off between threads on a job's path). A child whose job is still running `kill_after` past the job's deadline is killed
// (SIGKILL) and replaced; its job is answered deadline_exceeded. A child that died with a
// job is answered worker_crashed, with the signal and the child's last log lines in the
// error record. Children are recycled after max_jobs_per_child jobs. Each child's data
// segment is limited to max_memory (RLIMIT_DATA): an allocation beyond it fails in the
// handler (std::bad_alloc → handler_error) instead of growing the host.
//
// Every child and the zygote die with the host (PR_SET_PDEATHSIG), and signals meant for
// the host (SIGTERM, SIGINT, SIGHUP) stay blocked in them: the host decides when they end.
// Thread-safety: every call from the I/O thread.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
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
  // Jobs written ahead to one child (it runs them one at a time, in order), so a child
  // never waits for the host between two jobs. A crash costs the job running; the ones
  // queued behind it have not started and go to other children. Behind a hung job they
  // wait until its child is killed (kill_after).
  std::size_t prefetch = 4;
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
  // Where each output goes: the I/O thread sends it on the job's connection.
  using Output = std::function<void(JobOutput&&)>;

  // Asks `zygote` for the children. `stats` and `reporter` outlive the pool. The pool has
  // no thread: the I/O loop polls its descriptors (AppendPollItems, OnPoll) and calls
  // Tick() at least as often as it asks.
  ProcessPool(std::unique_ptr<Zygote> zygote, ProcessPoolOptions options, StageStats& stats,
              ErrorReporter& reporter, Output output);
  ~ProcessPool();  // Stop()
  ProcessPool(const ProcessPool&) = delete;
  ProcessPool& operator=(const ProcessPool&) = delete;

  // Hands the job to an idle child now, or as soon as one is idle.
  void Submit(JobInput job);
  // Appends the descriptors to poll: the zygote's, then each child's link and log.
  void AppendPollItems(std::vector<zmq::pollitem_t>& items);
  // Handles the events of the items the last AppendPollItems added (`items` points at the
  // first of them), then Tick()s. Outputs go to `output` from inside this call.
  void OnPoll(const zmq::pollitem_t* items);
  // Replaces finished children, kills overdue ones, hands out pending jobs.
  // Returns: how soon it wants to be called again.
  std::chrono::milliseconds Tick();
  // Returns: how soon Tick() has work (a job to kill, a child to start).
  std::chrono::milliseconds NextTimer() const;
  // Kills every child and the zygote. Jobs not answered yet get no answer from the pool:
  // the caller answers them.
  void Stop();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace courier::detail
