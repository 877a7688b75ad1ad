// client_test_worker.hpp — a Courier worker speaking raw CRW01 frames, for the client's
// integration tests: it registers one service with one or more real brokers and answers
// each job as the test's behaviour says (echo, reply, error, reject, answer late, ignore),
// recording what it saw. Tests control it fully, independent of courier-worker.
//
// Thread-safety: the worker runs its own thread; its accessors are safe from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "courier/error.hpp"
#include "courier/job.hpp"
#include "courier/keyring.hpp"
#include "courier/value.hpp"

namespace courier::test {

struct WorkerJob {
  JobId id;
  std::string service;
  std::uint32_t attempt = 0;
  ReplyMode mode = ReplyMode::kCall;
  Value request;
  std::size_t delivery = 0;  // 1 the first time this worker sees the job id, 2 the next...
  std::size_t broker = 0;    // index of the endpoint it came from
};

struct WorkerAction {
  enum class Kind { kReply, kError, kReject, kIgnore, kUnsealedReply };
  Kind kind = Kind::kReply;
  Value reply;
  ErrorCode code = ErrorCode::kInternal;
  std::string message;
  std::chrono::milliseconds delay{0};  // answer this much later (the worker keeps serving)

  static WorkerAction Reply(Value value, std::chrono::milliseconds delay = {}) {
    WorkerAction action;
    action.reply = std::move(value);
    action.delay = delay;
    return action;
  }
  static WorkerAction Fail(ErrorCode code, std::string message = "test failure") {
    WorkerAction action;
    action.kind = Kind::kError;
    action.code = code;
    action.message = std::move(message);
    return action;
  }
};

using Behaviour = std::function<WorkerAction(const WorkerJob&)>;

// Returns: a behaviour that replies with the request itself after `delay`.
Behaviour Echo(std::chrono::milliseconds delay = {});

class TestWorker {
 public:
  TestWorker(std::vector<std::string> endpoints, std::string service, std::shared_ptr<const Keyring> keyring,
             Behaviour behaviour, std::uint32_t capacity = 64);
  ~TestWorker();
  TestWorker(const TestWorker&) = delete;
  TestWorker& operator=(const TestWorker&) = delete;

  // Returns: deliveries received in total, and of one job id.
  std::size_t deliveries() const;
  std::size_t deliveries(const JobId& id) const;
  std::size_t distinct_jobs() const;
  // Returns: the most jobs this worker held unanswered at once.
  std::size_t max_concurrent() const;
  // Returns: jobs whose payload did not open or decode (should stay 0).
  std::size_t bad_jobs() const { return bad_jobs_.load(); }

  void Stop();

 private:
  void Run();

  std::vector<std::string> endpoints_;
  std::string service_;
  std::shared_ptr<const Keyring> keyring_;
  Behaviour behaviour_;
  std::uint32_t capacity_;
  std::atomic<bool> stop_{false};
  std::atomic<std::size_t> bad_jobs_{0};
  mutable std::mutex mutex_;
  std::map<JobId, std::size_t> seen_;
  std::size_t deliveries_ = 0;
  std::size_t holding_ = 0;
  std::size_t max_holding_ = 0;
  std::thread thread_;
};

}  // namespace courier::test
