// callback_thread.hpp — the thread that runs a client's completion callbacks, so user code
// never runs on (or stalls) the I/O thread.
//
// Post queues a task; tasks run one at a time in order. Stop runs what is queued, then
// joins; a task posted after Stop runs at once on the posting thread. The queue needs no
// bound of its own: every task holds an in-flight slot until it has run.
// Thread-safety: Post and OnThisThread from any thread; Stop from one thread, not this one.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

namespace courier::detail {

class CallbackThread {
 public:
  CallbackThread() : thread_([this] { Run(); }) {}
  ~CallbackThread() { Stop(); }
  CallbackThread(const CallbackThread&) = delete;
  CallbackThread& operator=(const CallbackThread&) = delete;

  void Post(std::function<void()> task) {
    {
      std::lock_guard lock(mutex_);
      if (!stopped_) {
        tasks_.push_back(std::move(task));
        ready_.notify_one();
        return;
      }
    }
    task();
  }

  void Stop() {
    {
      std::lock_guard lock(mutex_);
      if (stopping_) return;
      stopping_ = true;
    }
    ready_.notify_one();
    if (thread_.joinable()) thread_.join();
  }

  bool OnThisThread() const { return std::this_thread::get_id() == thread_.get_id(); }

 private:
  void Run() {
    std::unique_lock lock(mutex_);
    while (true) {
      ready_.wait(lock, [&] { return stopping_ || !tasks_.empty(); });
      if (tasks_.empty()) {
        stopped_ = true;  // stopping_ and drained: later posts run inline
        return;
      }
      std::function<void()> task = std::move(tasks_.front());
      tasks_.pop_front();
      lock.unlock();
      task();  // tasks catch their own exceptions
      task = nullptr;
      lock.lock();
    }
  }

  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<std::function<void()>> tasks_;
  bool stopping_ = false;
  bool stopped_ = false;
  std::thread thread_;
};

}  // namespace courier::detail
