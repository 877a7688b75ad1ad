// courier-bench: the load generators and the raw-ZeroMQ baseline that ops/bench runs as
// separate processes on 127.0.0.1. Each mode prints one JSON object on stdout.
//
//   courier-bench baseline-broker --bind EP          forwarding ROUTER, nothing else
//   courier-bench baseline-worker --connect EP       echo worker for the baseline broker
//   courier-bench baseline-client --connect EP ...   client of the baseline broker
//   courier-bench raw-client --connect EP ...        Courier CRC01 client from raw frames,
//                                                    sealing with the keyring (--keyring)
// Client options: --mode sync|pipelined, --size BYTES, --count N, --window N, --service S
#include <CLI/CLI.hpp>
#include <zmq.hpp>

#include <algorithm>
#include <cstring>
#include <chrono>
#include <cstdio>
#include <deque>
#include <iostream>
#include <unordered_map>
#include <vector>

#include "courier/keyring.hpp"
#include "envelope_codec.hpp"

namespace {

using Clock = std::chrono::steady_clock;

struct ClientOptions {
  std::string endpoint;
  std::string mode = "pipelined";
  std::size_t size = 1024;
  std::size_t count = 100000;
  std::size_t window = 1000;
  std::string service = "echo";
  std::string keyring;
  bool fire_and_forget = false;
};

zmq::socket_t Dealer(zmq::context_t& context, const std::string& endpoint) {
  zmq::socket_t socket(context, zmq::socket_type::dealer);
  socket.set(zmq::sockopt::linger, 0);
  socket.set(zmq::sockopt::sndhwm, 0);
  socket.set(zmq::sockopt::rcvhwm, 0);
  socket.connect(endpoint);
  return socket;
}

void PrintResult(const ClientOptions& options, std::size_t done, Clock::duration elapsed,
                 std::vector<double>& latencies_us) {
  const double seconds = std::chrono::duration<double>(elapsed).count();
  std::sort(latencies_us.begin(), latencies_us.end());
  const auto pct = [&](double p) {
    if (latencies_us.empty()) return 0.0;
    return latencies_us[std::min(latencies_us.size() - 1, static_cast<std::size_t>(p * latencies_us.size()))];
  };
  std::printf(
      "{\"mode\":\"%s\",\"size\":%zu,\"jobs\":%zu,\"seconds\":%.4f,\"jobs_per_s\":%.1f,"
      "\"p50_us\":%.1f,\"p99_us\":%.1f,\"p999_us\":%.1f}\n",
      options.mode.c_str(), options.size, done, seconds, done / seconds, pct(0.5), pct(0.99), pct(0.999));
}

// A forwarding broker: workers say "READY", clients send [empty][body]; requests go to
// workers round-robin as [worker][client][body] and replies come back the same way.
int BaselineBroker(const std::string& endpoint) {
  zmq::context_t context(1);
  zmq::socket_t router(context, zmq::socket_type::router);
  router.set(zmq::sockopt::sndhwm, 0);
  router.set(zmq::sockopt::rcvhwm, 0);
  router.bind(endpoint);
  std::vector<std::string> workers;
  std::size_t next = 0;
  std::vector<zmq::message_t> frames;
  while (true) {
    frames.clear();
    zmq::message_t frame;
    (void)router.recv(frame);
    frames.push_back(std::move(frame));
    while (frames.back().more()) {
      zmq::message_t part;
      (void)router.recv(part);
      frames.push_back(std::move(part));
    }
    if (frames.size() == 2 && frames[1].to_string_view() == "READY") {
      workers.push_back(frames[0].to_string());
      continue;
    }
    if (frames.size() == 3 && frames[1].size() == 0) {  // client: [id][empty][body]
      if (workers.empty()) continue;
      const std::string& worker = workers[next++ % workers.size()];
      router.send(zmq::buffer(worker), zmq::send_flags::sndmore);
      router.send(frames[0], zmq::send_flags::sndmore);
      router.send(frames[2], zmq::send_flags::none);
    } else if (frames.size() == 3) {  // worker reply: [worker][client][body]
      router.send(frames[1], zmq::send_flags::sndmore);
      router.send(zmq::message_t(), zmq::send_flags::sndmore);
      router.send(frames[2], zmq::send_flags::none);
    }
  }
}

int BaselineWorker(const std::string& endpoint) {
  zmq::context_t context(1);
  zmq::socket_t socket = Dealer(context, endpoint);
  socket.send(zmq::str_buffer("READY"), zmq::send_flags::none);
  while (true) {
    zmq::message_t client, body;
    (void)socket.recv(client);
    (void)socket.recv(body);
    socket.send(client, zmq::send_flags::sndmore);
    socket.send(body, zmq::send_flags::none);
  }
}

// Drives `count` jobs: in sync mode one at a time (latencies), pipelined with `window` in
// flight. `send(i)` sends job i; `receive()` blocks for one answer and returns its index.
template <typename Send, typename Receive>
int Drive(const ClientOptions& options, Send send, Receive receive) {
  std::vector<double> latencies_us;
  std::vector<Clock::time_point> sent_at(options.count);
  const std::size_t window = options.mode == "sync" ? 1 : options.window;
  latencies_us.reserve(options.count);
  const auto start = Clock::now();
  std::size_t sent = 0, done = 0;
  while (done < options.count) {
    while (sent < options.count && sent - done < window) {
      sent_at[sent] = Clock::now();
      send(sent++);
    }
    const std::size_t index = receive();
    if (index == SIZE_MAX) {
      std::cerr << "courier-bench: no answer within 10 s after " << done << " jobs\n";
      return 1;
    }
    if (options.mode == "sync" && index < sent_at.size()) {
      latencies_us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - sent_at[index]).count());
    }
    ++done;
  }
  PrintResult(options, done, Clock::now() - start, latencies_us);
  return 0;
}

bool PollIn(zmq::socket_t& socket) {
  zmq::pollitem_t item{socket.handle(), 0, ZMQ_POLLIN, 0};
  return zmq::poll(&item, 1, std::chrono::milliseconds(10000)) > 0;
}

int BaselineClient(const ClientOptions& options) {
  zmq::context_t context(1);
  zmq::socket_t socket = Dealer(context, options.endpoint);
  std::string body(options.size, 'x');
  return Drive(
      options,
      [&](std::size_t index) {
        std::memcpy(body.data(), &index, sizeof index);
        socket.send(zmq::message_t(), zmq::send_flags::sndmore);
        socket.send(zmq::buffer(body), zmq::send_flags::none);
      },
      [&]() -> std::size_t {
        if (!PollIn(socket)) return SIZE_MAX;
        zmq::message_t empty, reply;
        (void)socket.recv(empty);
        (void)socket.recv(reply);
        std::size_t index = 0;
        std::memcpy(&index, reply.data(), sizeof index);
        return index;
      });
}

// A Courier client made of raw CRC01 frames: each job's payload is sealed (so the broker
// and worker carry real sealed bytes), replies are matched by job id.
int RawCourierClient(const ClientOptions& options) {
  zmq::context_t context(1);
  zmq::socket_t socket = Dealer(context, options.endpoint);
  const courier::Keyring keyring = options.keyring.empty() ? courier::Keyring::Generate()
                                                           : courier::Keyring::Load(options.keyring);
  const std::string payload(options.size, 'x');
  std::unordered_map<courier::JobId, std::size_t, courier::JobIdHash> index_of;
  const char submit = 0x01;
  return Drive(
      options,
      [&](std::size_t index) {
        courier::Envelope envelope;
        envelope.job_id = courier::JobId::Random();
        envelope.service = options.service;
        envelope.created_at_ms = courier::NowUnixMs();
        envelope.deadline_ms = envelope.created_at_ms + 600'000;
        envelope.mode = options.fire_and_forget ? courier::ReplyMode::kSend : courier::ReplyMode::kCall;
        index_of.emplace(envelope.job_id, index);
        auto sealed = keyring.Seal(envelope, payload);
        socket.send(zmq::message_t(), zmq::send_flags::sndmore);
        socket.send(zmq::str_buffer("CRC01"), zmq::send_flags::sndmore);
        socket.send(zmq::buffer(&submit, 1), zmq::send_flags::sndmore);
        socket.send(zmq::buffer(sealed.envelope), zmq::send_flags::sndmore);
        socket.send(zmq::buffer(sealed.payload), zmq::send_flags::none);
      },
      [&]() -> std::size_t {
        if (!PollIn(socket)) return SIZE_MAX;
        std::vector<zmq::message_t> frames;
        do {
          frames.emplace_back();
          (void)socket.recv(frames.back());
        } while (frames.back().more());
        if (frames.size() < 4) return SIZE_MAX;
        const auto command = *static_cast<const char*>(frames[2].data());
        courier::JobId id;
        if (command == 0x02) {  // ACCEPT (fire-and-forget)
          id = *courier::JobId::FromBytes(frames[3].to_string_view());
        } else if (command == 0x03 && frames.size() == 5) {
          id = courier::detail::DecodeEnvelope(frames[3].to_string_view()).job_id;
          (void)keyring.Open(frames[3].to_string_view(), frames[4].to_string_view());
        } else {
          std::cerr << "courier-bench: unexpected answer (command " << int(command) << ")\n";
          return SIZE_MAX;
        }
        const auto found = index_of.find(id);
        if (found == index_of.end()) return SIZE_MAX;
        const std::size_t index = found->second;
        index_of.erase(found);
        return index;
      });
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"courier-bench: load generators for ops/bench"};
  app.require_subcommand(1);
  std::string endpoint = "tcp://127.0.0.1:5599";
  ClientOptions options;
  auto* broker = app.add_subcommand("baseline-broker", "raw forwarding ROUTER broker");
  broker->add_option("--bind", endpoint);
  auto* worker = app.add_subcommand("baseline-worker", "raw echo worker");
  worker->add_option("--connect", endpoint);
  auto add_client = [&](CLI::App* command) {
    command->add_option("--connect", options.endpoint)->required();
    command->add_option("--mode", options.mode)->check(CLI::IsMember({"sync", "pipelined"}));
    command->add_option("--size", options.size);
    command->add_option("--count", options.count);
    command->add_option("--window", options.window);
  };
  auto* baseline_client = app.add_subcommand("baseline-client", "client of the baseline broker");
  add_client(baseline_client);
  auto* raw_client = app.add_subcommand("raw-client", "Courier client from raw frames");
  add_client(raw_client);
  raw_client->add_option("--service", options.service);
  raw_client->add_option("--keyring", options.keyring);
  raw_client->add_flag("--send", options.fire_and_forget, "fire-and-forget (counts ACCEPTs)");
  CLI11_PARSE(app, argc, argv);
  try {
    if (broker->parsed()) return BaselineBroker(endpoint);
    if (worker->parsed()) return BaselineWorker(endpoint);
    if (baseline_client->parsed()) return BaselineClient(options);
    return RawCourierClient(options);
  } catch (const std::exception& error) {
    std::cerr << "courier-bench: " << error.what() << "\n";
    return 1;
  }
}
