#include "actor.hpp"

#include <atomic>

#include <spdlog/spdlog.h>

namespace courier::detail {

namespace {
std::atomic<std::uint64_t> next_actor{0};
}

Actor::Actor(std::string name, Body body) : pipe_(context_, zmq::socket_type::pair) {
  const std::string endpoint = "inproc://courier-actor-" + name + "-" + std::to_string(next_actor.fetch_add(1));
  pipe_.set(zmq::sockopt::linger, 0);
  pipe_.bind(endpoint);
  thread_ = std::thread([this, endpoint, name, body = std::move(body)] {
    zmq::socket_t pipe(context_, zmq::socket_type::pair);
    pipe.set(zmq::sockopt::linger, 0);
    pipe.connect(endpoint);
    pipe.send(zmq::str_buffer("READY"), zmq::send_flags::none);
    try {
      body(context_, pipe);
      return;  // the body returns only after reading $TERM
    } catch (const std::exception& e) {
      spdlog::error("{} thread stopped: {}", name, e.what());
    } catch (...) {
      spdlog::error("{} thread stopped by an unknown exception", name);
    }
    // The body died early: wait for $TERM so Stop() still finds the thread and joins it.
    zmq::message_t message;
    try {
      while (pipe.recv(message, zmq::recv_flags::none)) {
        if (message.to_string_view() == kActorTerm) break;
      }
    } catch (const zmq::error_t&) {
    }
  });
  zmq::message_t ready;
  (void)pipe_.recv(ready, zmq::recv_flags::none);
}

Actor::~Actor() { Stop(); }

void Actor::Stop() noexcept {
  if (!thread_.joinable()) return;
  try {
    pipe_.send(zmq::buffer(kActorTerm), zmq::send_flags::none);
  } catch (...) {
  }
  thread_.join();
}

}  // namespace courier::detail
