// courier-test-worker: a deliberately simple worker process for integration tests. It
// echoes each request after an optional delay, speaking plain MDP/0.1 or Courier (CRW01),
// and prints "received N" and "served N" lines so tests can see progress. Tests kill it
// with SIGKILL; with --die-on-payload it kills itself (SIGKILL) when a job's body is that
// text, as a host whose handler crashes the process would die.
#include <signal.h>

#include <CLI/CLI.hpp>
#include <zmq.hpp>

#include <chrono>
#include <deque>
#include <iostream>
#include <thread>

#include "frames.hpp"

int main(int argc, char** argv) {
  CLI::App app{"test worker"};
  std::string broker = "tcp://127.0.0.1:5555";
  std::string service = "echo";
  std::string protocol = "mdp";
  unsigned capacity = 1;
  unsigned weight = 1;
  int delay_ms = 0;
  int heartbeat_ms = 2500;
  std::string die_on_payload;
  app.add_option("--broker", broker);
  app.add_option("--service", service);
  app.add_option("--protocol", protocol)->check(CLI::IsMember({"mdp", "courier"}));
  app.add_option("--capacity", capacity);
  app.add_option("--weight", weight);
  app.add_option("--delay-ms", delay_ms);
  app.add_option("--heartbeat-ms", heartbeat_ms);
  app.add_option("--die-on-payload", die_on_payload, "die by SIGKILL on a job whose body is this text");
  CLI11_PARSE(app, argc, argv);

  const bool courier = protocol == "courier";
  const std::string header = courier ? "CRW01" : "MDPW01";
  zmq::context_t context(1);
  zmq::socket_t socket(context, zmq::socket_type::dealer);
  socket.set(zmq::sockopt::linger, 0);
  socket.connect(broker);
  auto send = [&](std::vector<std::string> frames) {
    for (std::size_t i = 0; i < frames.size(); ++i) {
      socket.send(zmq::buffer(frames[i]), i + 1 < frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
    }
  };
  if (courier) {
    courier::detail::ReadyInfo info;
    info.capacity = capacity;
    info.weight = weight;
    info.host = "test";
    info.instance = "test-worker";
    send({"", header, "\x01", service, courier::detail::EncodeReadyInfo(info)});
  } else {
    send({"", header, "\x01", service});
  }
  std::cout << "ready" << std::endl;

  struct Pending {
    std::vector<std::string> frames;
    std::chrono::steady_clock::time_point due;
  };
  std::deque<Pending> pending;
  std::size_t served = 0;
  std::size_t received = 0;
  auto last_sent = std::chrono::steady_clock::now();
  while (true) {
    const auto now = std::chrono::steady_clock::now();
    while (!pending.empty() && pending.front().due <= now) {
      send(pending.front().frames);
      pending.pop_front();
      last_sent = now;
      std::cout << "served " << ++served << std::endl;
    }
    if (now - last_sent >= std::chrono::milliseconds(heartbeat_ms)) {
      send({"", header, "\x04"});
      last_sent = now;
    }
    zmq::pollitem_t item{socket.handle(), 0, ZMQ_POLLIN, 0};
    zmq::poll(&item, 1, std::chrono::milliseconds(pending.empty() ? 20 : 1));
    if (!(item.revents & ZMQ_POLLIN)) continue;
    std::vector<std::string> frames;
    zmq::message_t frame;
    do {
      (void)socket.recv(frame, zmq::recv_flags::none);
      frames.push_back(frame.to_string());
    } while (frame.more());
    if (frames.size() < 3 || frames[2].size() != 1) continue;
    const char command = frames[2][0];
    if (command == 0x05) return 0;  // DISCONNECT
    if (command != 0x02) continue;
    std::cout << "received " << ++received << std::endl;
    // Courier: [""][CRW01][02][envelope][payload]...; MDP: [""][MDPW01][02][client][""][body]...
    const std::size_t body = courier ? 4 : 5;
    if (!die_on_payload.empty() && frames.size() > body && frames[body] == die_on_payload) {
      std::cout << "dying on a poison job" << std::endl;
      ::raise(SIGKILL);
    }
    std::vector<std::string> reply{"", header, "\x03"};
    for (std::size_t i = 3; i < frames.size(); ++i) reply.push_back(frames[i]);
    pending.push_back({std::move(reply), std::chrono::steady_clock::now() + std::chrono::milliseconds(delay_ms)});
  }
}
