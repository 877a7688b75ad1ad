// job_pool.hpp — the worker host's fixed pool of handler threads.
//
// The I/O thread Submit()s jobs; each pool thread runs them and hands every output back
// over its own inproc PUSH socket (created on that thread: one socket per thread) to the
// I/O thread's PULL at `endpoint`. A result message is
//   [seq: 8 bytes, native order][command: 1 byte][body1][body2 (REPLY only)].
// Thread-safety: Submit/Stop/Abandon from the I/O thread only.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <zmq.hpp>

#include "job_runner.hpp"

namespace courier::detail {

// Sends one output to the I/O thread's results PULL in the format above (bodies moved).
void SendJobOutput(zmq::socket_t& push, JobOutput&& output);

class JobPool {
 public:
  using Work = std::function<std::vector<JobOutput>(JobInput&)>;

  // Starts `threads` threads; the PULL at `endpoint` must be bound already.
  JobPool(zmq::context_t& context, std::string endpoint, unsigned threads, Work work);
  ~JobPool();  // Stop()
  JobPool(const JobPool&) = delete;
  JobPool& operator=(const JobPool&) = delete;

  void Submit(JobInput job);
  // Lets the threads finish the queue, then joins them.
  void Stop();
  // Detaches the threads (some are stuck in handlers). Their shared state stays alive; the
  // process must exit soon (std::_Exit) since they cannot be joined.
  void Abandon();

 private:
  struct Shared {
    std::mutex mutex;
    std::condition_variable wake;
    std::deque<JobInput> queue;
    bool stopping = false;
  };
  static void Loop(std::shared_ptr<Shared> shared, zmq::context_t* context, std::string endpoint,
                   Work work);

  std::shared_ptr<Shared> shared_;
  std::vector<std::thread> threads_;
};

}  // namespace courier::detail
