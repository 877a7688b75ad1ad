// actor.hpp — a background thread with its own ZeroMQ context and a PAIR pipe to its owner
// (CLASS/czmq actor): synchronised start (the constructor returns once the thread runs)
// and stop (Stop() sends "$TERM" and joins).
//
// The body receives the actor's context and the pipe's far end and returns only after reading "$TERM" from it
// (soon after). A body that throws is logged; the thread then waits for "$TERM".
// Thread-safety: construct, Stop and destroy on one thread; the body runs on the actor.
#pragma once

#include <functional>
#include <string>
#include <thread>

#include <zmq.hpp>

namespace courier::detail {

class Actor {
 public:
  using Body = std::function<void(zmq::context_t& context, zmq::socket_t& pipe)>;

  // Starts `body` on a new thread. `name` is used for the inproc endpoint and logs.
  Actor(std::string name, Body body);
  // Stops the actor if it still runs. noexcept.
  ~Actor();
  Actor(const Actor&) = delete;
  Actor& operator=(const Actor&) = delete;

  // Sends "$TERM" and joins. Idempotent. noexcept.
  void Stop() noexcept;

 private:
  zmq::context_t context_{1};
  zmq::socket_t pipe_;
  std::thread thread_;
};

inline constexpr std::string_view kActorTerm = "$TERM";

}  // namespace courier::detail
