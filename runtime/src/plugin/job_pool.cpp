#include "job_pool.hpp"

#include <spdlog/spdlog.h>

#include <cstring>
#include <memory>

namespace courier::detail {
namespace {

// A frame that takes over `body` instead of copying it (a sealed payload travels from here
// to the broker's socket without another copy); small bodies are cheaper copied.
zmq::message_t Frame(std::string&& body) {
  constexpr std::size_t kCopyBelow = 256;
  if (body.size() < kCopyBelow) return zmq::message_t(body.data(), body.size());
  auto owned = std::make_unique<std::string>(std::move(body));
  // libzmq frees the buffer through this C callback, which takes the string back.
  zmq::message_t frame(
      owned->data(), owned->size(), [](void*, void* hint) { std::unique_ptr<std::string>(static_cast<std::string*>(hint)); },
      owned.get());
  (void)owned.release();  // the message owns it now
  return frame;
}

}  // namespace

void SendJobOutput(zmq::socket_t& push, JobOutput&& output) {
  zmq::message_t seq(sizeof output.seq);
  std::memcpy(seq.data(), &output.seq, sizeof output.seq);
  const auto command = static_cast<std::uint8_t>(output.command);
  const bool two_bodies = output.command == WorkerCommand::kReply;
  push.send(seq, zmq::send_flags::sndmore);
  push.send(zmq::buffer(&command, 1), zmq::send_flags::sndmore);
  push.send(Frame(std::move(output.body1)), two_bodies ? zmq::send_flags::sndmore : zmq::send_flags::none);
  if (two_bodies) push.send(Frame(std::move(output.body2)), zmq::send_flags::none);
}

JobPool::JobPool(zmq::context_t& context, std::string endpoint, unsigned threads, Work work)
    : shared_(std::make_shared<Shared>()) {
  threads_.reserve(threads);
  for (unsigned i = 0; i < threads; ++i) {
    threads_.emplace_back(&JobPool::Loop, shared_, &context, endpoint, work);
  }
}

JobPool::~JobPool() { Stop(); }

void JobPool::Submit(JobInput job) {
  {
    std::lock_guard lock(shared_->mutex);
    shared_->queue.push_back(std::move(job));
  }
  shared_->wake.notify_one();
}

void JobPool::Stop() {
  {
    std::lock_guard lock(shared_->mutex);
    shared_->stopping = true;
  }
  shared_->wake.notify_all();
  for (std::thread& thread : threads_) {
    if (thread.joinable()) thread.join();
  }
  threads_.clear();
}

void JobPool::Abandon() {
  {
    std::lock_guard lock(shared_->mutex);
    shared_->stopping = true;
    shared_->queue.clear();
  }
  shared_->wake.notify_all();
  for (std::thread& thread : threads_) thread.detach();
  threads_.clear();
}

void JobPool::Loop(std::shared_ptr<Shared> shared, zmq::context_t* context, std::string endpoint,
                   Work work) {
  try {
    zmq::socket_t push(*context, zmq::socket_type::push);
    push.set(zmq::sockopt::linger, 2000);
    push.set(zmq::sockopt::sndhwm, 0);  // bounded by the credit windows, never drop a result
    push.connect(endpoint);
    while (true) {
      JobInput job;
      {
        std::unique_lock lock(shared->mutex);
        shared->wake.wait(lock, [&] { return shared->stopping || !shared->queue.empty(); });
        if (shared->queue.empty()) break;  // stopping, and nothing left to run
        job = std::move(shared->queue.front());
        shared->queue.pop_front();
      }
      std::vector<JobOutput> outputs = work(job);
      for (JobOutput& output : outputs) SendJobOutput(push, std::move(output));
    }
  } catch (const std::exception& e) {
    // Every thread's loop catches at its top; a pool thread failing is a bug worth shouting.
    spdlog::critical("worker pool thread stopped: {}", e.what());
  }
}

}  // namespace courier::detail
