// testkit — a plugin for the worker host's integration tests (not installed, not a
// template): it can misbehave on request.
//
// Service "testkit" takes {action: "...", ...}:
//   echo                  → the request
//   pid                   → {pid}
//   sleep, ms             → {slept: ms, pid} after sleeping ms milliseconds
//   throw, message        → throws std::runtime_error(message)
//   error, code, message  → throws courier::Error(code by name, message)
//   abort                 → std::abort()
//   segfault              → raise(SIGSEGV)
//   abort_first           → std::abort() on the job's first attempt, else {attempt, pid}
//   exit                  → std::exit(3)
//   allocate, mb          → allocates and touches mb MiB, then {allocated: mb, pid}
// Service "testkit.once" (not idempotent) counts its invocations in this process:
//   {key, ms?}            → {count: invocations so far, key, pid}, after sleeping ms.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <stdexcept>
#include <thread>
#include <vector>

#include <courier/plugin.hpp>

namespace {

using courier::Value;

void SleepMs(const Value& request) {
  if (const Value* ms = request.Find("ms")) std::this_thread::sleep_for(std::chrono::milliseconds(ms->AsInt()));
}

class TestKit {
 public:
  static constexpr std::string_view kName = "testkit";
  explicit TestKit(const courier::ConfigSection& config) : tag_(config.GetString("tag", "")) {
    config.RejectUnknownKeys();
  }

  Value Handle(const Value& request, const courier::JobContext& job) const {
    const std::string& action = request.At("action").AsString();
    const auto pid = static_cast<std::int64_t>(::getpid());
    if (action == "echo") return request;
    if (action == "pid") return Value::Object({{"pid", pid}, {"tag", tag_}});
    if (action == "sleep") {
      SleepMs(request);
      return Value::Object({{"slept", request.At("ms")}, {"pid", pid}, {"tag", tag_}});
    }
    if (action == "throw") throw std::runtime_error(request.At("message").AsString());
    if (action == "error") {
      const auto code = courier::ParseErrorCode(request.At("code").AsString());
      throw courier::Error(code.value_or(courier::ErrorCode::kInternal), request.At("message").AsString());
    }
    if (action == "abort") std::abort();
    if (action == "exit") std::exit(3);
    if (action == "allocate") {
      const auto mb = static_cast<std::size_t>(request.At("mb").AsInt());
      std::vector<char> block(mb << 20, 'x');  // every page touched
      return Value::Object({{"allocated", static_cast<std::int64_t>(block.size() >> 20)}, {"pid", pid}});
    }
    if (action == "segfault") ::raise(SIGSEGV);
    if (action == "abort_first") {
      if (job.attempt() <= 1) std::abort();
      return Value::Object({{"attempt", job.attempt()}, {"pid", pid}, {"tag", tag_}});
    }
    throw courier::Error(courier::ErrorCode::kInvalidPayload, "unknown action " + action);
  }

 private:
  std::string tag_;
};

class Once {
 public:
  static constexpr std::string_view kName = "testkit.once";
  static constexpr bool kIdempotent = false;

  Value Handle(const Value& request) {
    const std::int64_t count = ++count_;
    SleepMs(request);
    return Value::Object({{"count", count}, {"key", request.At("key")}, {"pid", static_cast<std::int64_t>(::getpid())}});
  }

 private:
  std::atomic<std::int64_t> count_{0};
};

}  // namespace

COURIER_PLUGIN(TestKit, Once)
