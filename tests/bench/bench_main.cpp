// courier-bench: the load generators and the raw-ZeroMQ baseline that ops/bench runs as
// separate processes on 127.0.0.1. Each client mode prints one JSON object on stdout (after
// a {"phase":"start"} line marking the end of the warm-up, so ops/bench can sample the
// other processes' CPU around exactly the timed jobs).
//
//   courier-bench baseline-broker --bind EP          forwarding ROUTER, nothing else
//   courier-bench baseline-worker --connect EP       echo worker for the baseline broker
//   courier-bench baseline-client --connect EP ...   client of the baseline broker
//   courier-bench raw-client --connect EP ...        Courier CRC01 client from raw frames,
//                                                    sealing with the keyring (--keyring)
//   courier-bench courier-client --connect EP ...    the real courier::Client SDK: every job
//                                                    a MessagePack Value, sealed, its reply
//                                                    opened, decoded and checked
//   courier-bench mdp-worker --connect EP            a plain Majordomo (MDPW01) echo worker
//   courier-bench mdp-client --connect EP ...        a plain Majordomo (MDPC01) client,
//                                                    pipelined on one DEALER
// Client options: --mode sync|pipelined, --size BYTES, --count N, --window N, --warmup N,
// --service S; courier-client also --keyring FILE, --api callback|future, --send,
// --request echo|textstats (the request's shape; textstats: {"text": SIZE bytes of words})
// (fire-and-forget), --connect repeated for several brokers, --wait-workers N.
//
// Sync mode keeps one job in flight and reports p50/p99/p999 latency; pipelined keeps
// `window` in flight and reports jobs/s. "cpu_s" is this process's CPU time (all threads)
// over the timed jobs.
#include <CLI/CLI.hpp>
#include <zmq.hpp>

#include <time.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <future>
#include <iostream>
#include <map>
#include <mutex>
#include <numeric>
#include <thread>
#include <unordered_map>
#include <vector>

#include "courier/client.hpp"
#include "courier/keyring.hpp"
#include "envelope_codec.hpp"

namespace {

using Clock = std::chrono::steady_clock;

struct ClientOptions {
  std::vector<std::string> endpoints;
  std::string mode = "pipelined";
  std::size_t size = 1024;
  std::size_t count = 100000;
  std::size_t window = 1000;
  std::size_t warmup = 100;
  std::string service = "echo";
  std::string request = "echo";       // courier-client: the request's shape, echo or textstats
  std::string keyring;
  std::string api = "callback";
  std::size_t wait_workers = 1;
  double wait_timeout_s = 20;
  bool fire_and_forget = false;
  std::uint64_t deadline_ms = 30000;  // courier-client: each job's deadline
  std::size_t max_failures = 0;       // courier-client: stop submitting past this many

  std::size_t Window() const { return mode == "sync" ? 1 : std::max<std::size_t>(1, window); }
};

double ProcessCpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// Marks the end of the warm-up: ops/bench samples the other processes now.
void PrintStart() {
  std::printf("{\"phase\":\"start\"}\n");
  std::fflush(stdout);
}

struct Measured {
  std::size_t done = 0;
  std::size_t failed = 0;
  Clock::duration elapsed{};
  double cpu_s = 0;
  std::vector<double> latencies_us;
  std::string first_error;
  std::size_t payload_frame_bytes = 0;  // a sealed request payload frame, when known
};

void PrintResult(const ClientOptions& options, std::string_view kind, Measured& m) {
  const double seconds = std::chrono::duration<double>(m.elapsed).count();
  std::sort(m.latencies_us.begin(), m.latencies_us.end());
  const auto pct = [&](double p) {
    if (m.latencies_us.empty()) return 0.0;
    return m.latencies_us[std::min(m.latencies_us.size() - 1, static_cast<std::size_t>(p * m.latencies_us.size()))];
  };
  const double rate = seconds > 0 ? static_cast<double>(m.done) / seconds : 0.0;
  std::string error;
  for (const char c : m.first_error) {
    if (c == '"' || c == '\\') error += '\\';
    error += (static_cast<unsigned char>(c) < 0x20) ? ' ' : c;
  }
  std::printf(
      "{\"client\":\"%.*s\",\"mode\":\"%s\",\"send\":%s,\"size\":%zu,\"window\":%zu,\"jobs\":%zu,\"failed\":%zu,"
      "\"seconds\":%.4f,\"jobs_per_s\":%.1f,\"payload_bytes_per_s\":%.1f,\"p50_us\":%.1f,\"p99_us\":%.1f,"
      "\"p999_us\":%.1f,\"mean_us\":%.1f,\"cpu_s\":%.4f,\"payload_frame_bytes\":%zu,\"first_error\":\"%s\"}\n",
      static_cast<int>(kind.size()), kind.data(), options.mode.c_str(), options.fire_and_forget ? "true" : "false",
      options.size, options.Window(), m.done, m.failed, seconds, rate, rate * static_cast<double>(options.size),
      pct(0.5), pct(0.99), pct(0.999),
      m.latencies_us.empty() ? 0.0
                             : std::accumulate(m.latencies_us.begin(), m.latencies_us.end(), 0.0) /
                                   static_cast<double>(m.latencies_us.size()),
      m.cpu_s, m.payload_frame_bytes, error.c_str());
  std::fflush(stdout);
}

zmq::socket_t Dealer(zmq::context_t& context, const std::string& endpoint) {
  zmq::socket_t socket(context, zmq::socket_type::dealer);
  socket.set(zmq::sockopt::linger, 0);
  socket.set(zmq::sockopt::sndhwm, 0);
  socket.set(zmq::sockopt::rcvhwm, 0);
  socket.connect(endpoint);
  return socket;
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
      std::printf("ready %zu\n", workers.size());  // ops/bench waits for its workers
      std::fflush(stdout);
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

// Drives `warmup + count` jobs over raw sockets: in sync mode one at a time (latencies),
// pipelined with `window` in flight. The pipeline drains after the warm-up, then the timed
// jobs start. `send(i)` sends job i; `receive()` blocks for one answer and returns its
// index (SIZE_MAX: nothing within 10 s, or a bad answer).
template <typename Send, typename Receive>
int Drive(const ClientOptions& options, std::string_view kind, Send send, Receive receive) {
  const std::size_t total = options.warmup + options.count;
  const std::size_t window = options.Window();
  std::vector<Clock::time_point> sent_at(total);
  Measured m;
  m.latencies_us.reserve(options.mode == "sync" ? options.count : 0);
  Clock::time_point start{};
  double cpu_start = 0;
  std::size_t sent = 0, done = 0;
  while (done < total) {
    while (sent < total && sent - done < window && (sent != options.warmup || done == options.warmup)) {
      if (sent == options.warmup) {
        PrintStart();
        start = Clock::now();
        cpu_start = ProcessCpuSeconds();
      }
      sent_at[sent] = Clock::now();
      send(sent++);
    }
    const std::size_t index = receive();
    if (index == SIZE_MAX) {
      std::cerr << "courier-bench: no answer within 10 s after " << done << " jobs\n";
      return 1;
    }
    if (options.mode == "sync" && index >= options.warmup && index < sent_at.size()) {
      m.latencies_us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - sent_at[index]).count());
    }
    ++done;
  }
  m.elapsed = Clock::now() - start;
  m.cpu_s = ProcessCpuSeconds() - cpu_start;
  m.done = options.count;
  PrintResult(options, kind, m);
  return 0;
}

bool PollIn(zmq::socket_t& socket) {
  zmq::pollitem_t item{socket.handle(), 0, ZMQ_POLLIN, 0};
  return zmq::poll(&item, 1, std::chrono::milliseconds(10000)) > 0;
}

int BaselineClient(const ClientOptions& options) {
  zmq::context_t context(1);
  zmq::socket_t socket = Dealer(context, options.endpoints.front());
  std::string body(std::max<std::size_t>(options.size, sizeof(std::size_t)), 'x');
  return Drive(
      options, "baseline",
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

// ---- plain Majordomo peers (ZeroMQ RFC 7): what a courier-broker serves unchanged --------

// An MDP echo worker: READY for `service`, each REQUEST answered with its body, a HEARTBEAT
// every second (the broker's default liveness is several times that).
int MdpWorker(const std::string& endpoint, const std::string& service) {
  zmq::context_t context(1);
  zmq::socket_t socket = Dealer(context, endpoint);
  const auto command = [&](char byte, bool more) {
    socket.send(zmq::message_t(), zmq::send_flags::sndmore);
    socket.send(zmq::str_buffer("MDPW01"), zmq::send_flags::sndmore);
    socket.send(zmq::buffer(&byte, 1), more ? zmq::send_flags::sndmore : zmq::send_flags::none);
  };
  command('\x01', true);
  socket.send(zmq::buffer(service), zmq::send_flags::none);
  auto next_heartbeat = Clock::now() + std::chrono::seconds(1);
  std::vector<zmq::message_t> frames;
  while (true) {
    zmq::pollitem_t item{socket.handle(), 0, ZMQ_POLLIN, 0};
    zmq::poll(&item, 1, std::chrono::milliseconds(200));
    if (Clock::now() >= next_heartbeat) {
      command('\x04', false);
      next_heartbeat = Clock::now() + std::chrono::seconds(1);
    }
    while (true) {
      frames.clear();
      zmq::message_t first;
      if (!socket.recv(first, zmq::recv_flags::dontwait)) break;
      frames.push_back(std::move(first));
      while (frames.back().more()) {
        zmq::message_t part;
        (void)socket.recv(part);
        frames.push_back(std::move(part));
      }
      // [empty][MDPW01][command][client][empty][body...]
      if (frames.size() < 3 || frames[2].size() != 1) continue;
      const char byte = *static_cast<const char*>(frames[2].data());
      if (byte == '\x05') return 0;  // DISCONNECT
      if (byte != '\x02' || frames.size() < 6) continue;
      command('\x03', true);
      for (std::size_t i = 3; i < frames.size(); ++i) {
        socket.send(frames[i], i + 1 == frames.size() ? zmq::send_flags::none : zmq::send_flags::sndmore);
      }
    }
  }
}

// An MDP client on one DEALER, several requests in flight: [empty][MDPC01][service][body],
// answered as [empty][MDPC01][service][body]; the body's first bytes carry the job's index.
int MdpClient(const ClientOptions& options) {
  zmq::context_t context(1);
  zmq::socket_t socket = Dealer(context, options.endpoints.front());
  std::string body(std::max<std::size_t>(options.size, sizeof(std::size_t)), 'x');
  return Drive(
      options, "mdp",
      [&](std::size_t index) {
        std::memcpy(body.data(), &index, sizeof index);
        socket.send(zmq::message_t(), zmq::send_flags::sndmore);
        socket.send(zmq::str_buffer("MDPC01"), zmq::send_flags::sndmore);
        socket.send(zmq::buffer(options.service), zmq::send_flags::sndmore);
        socket.send(zmq::buffer(body), zmq::send_flags::none);
      },
      [&]() -> std::size_t {
        if (!PollIn(socket)) return SIZE_MAX;
        std::vector<zmq::message_t> frames;
        do {
          zmq::message_t part;
          (void)socket.recv(part);
          frames.push_back(std::move(part));
        } while (frames.back().more());
        if (frames.size() != 4 || frames[3].size() < sizeof(std::size_t)) return SIZE_MAX;
        std::size_t index = 0;
        std::memcpy(&index, frames[3].data(), sizeof index);
        return index;
      });
}

// Job i's request: {"seq": i, "data": <size bytes of binary>}, MessagePack-encoded by the SDK.
courier::Value Request(std::size_t index, const std::string& data) {
  courier::Value::Map map;
  map.reserve(2);
  map.emplace_back(courier::Value("seq"), courier::Value(static_cast<std::uint64_t>(index)));
  map.emplace_back(courier::Value("data"), courier::Value(courier::Binary{data}));
  return courier::Value(std::move(map));
}

// A Courier client made of raw CRC01 frames: each job's payload is sealed (so the broker
// and worker carry real sealed bytes), replies are matched by job id.
int RawCourierClient(const ClientOptions& options) {
  zmq::context_t context(1);
  zmq::socket_t socket = Dealer(context, options.endpoints.front());
  const courier::Keyring keyring = options.keyring.empty() ? courier::Keyring::Generate()
                                                           : courier::Keyring::Load(options.keyring);
  // A MessagePack document, as a worker host expects: {"seq": 0, "data": <size bytes>}.
  const std::string payload = courier::EncodeValue(Request(0, std::string(options.size, 'x')));
  std::unordered_map<courier::JobId, std::size_t, courier::JobIdHash> index_of;
  const char submit = 0x01;
  return Drive(
      options, "raw",
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

// ---- the SDK client ------------------------------------------------------------------------

// Returns: "" if `reply` echoes job `index`'s request, else what is wrong.
// textstats' request instead: {"text": <size bytes of words>}.
courier::Value Request(const ClientOptions& options, std::size_t index, const std::string& data) {
  if (options.request == "textstats") return courier::Value::Object({{"text", courier::Value(data)}});
  return Request(index, data);
}

// Returns: `size` bytes of text for the request kind (words for textstats, else 'x's).
std::string RequestData(const ClientOptions& options) {
  if (options.request != "textstats") return std::string(options.size, 'x');
  static constexpr std::string_view kWords[] = {"courier ", "routes ", "sealed ", "jobs ", "between ",
                                                "clients ", "and ", "workers ", "quickly "};
  std::string text;
  for (std::size_t i = 0; text.size() < options.size; ++i) text += kWords[i % std::size(kWords)];
  text.resize(options.size);
  return text;
}

std::string CheckReply(const ClientOptions& options, const courier::Value& reply, std::size_t index, std::size_t size) {
  if (options.request == "textstats") {
    const courier::Value* words = reply.Find("words");
    const courier::Value* sha = reply.Find("sha256");
    if (words == nullptr || !words->IsInteger() || words->AsUint() == 0 || sha == nullptr) {
      return "reply " + std::to_string(index) + " is not a textstats reply";
    }
    return {};
  }
  const courier::Value* seq = reply.Find("seq");
  const courier::Value* data = reply.Find("data");
  if (seq == nullptr || data == nullptr || !seq->IsInteger() || seq->AsUint() != index || data->size() != size) {
    return "reply " + std::to_string(index) + " does not echo its request";
  }
  return {};
}

// Waits until every broker the client knows reports `workers` workers for the service.
bool WaitForWorkers(courier::Client& client, const ClientOptions& options) {
  if (options.wait_workers == 0) return true;
  const auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                           std::chrono::duration<double>(options.wait_timeout_s));
  while (Clock::now() < deadline) {
    try {
      std::map<std::string, std::size_t> per_broker;
      for (const courier::WorkerInfo& worker : client.ClusterWorkers()) {
        if (worker.service == options.service) ++per_broker[worker.broker];
      }
      std::size_t ready = 0;
      for (const auto& endpoint : options.endpoints) ready += per_broker[endpoint] >= options.wait_workers ? 1 : 0;
      if (ready == options.endpoints.size()) return true;
    } catch (const courier::Error&) {
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  std::cerr << "courier-bench: fewer than " << options.wait_workers << " workers for '" << options.service
            << "' on some broker after " << options.wait_timeout_s << " s\n";
  return false;
}

int SdkClient(const ClientOptions& options) {
  courier::ClientOptions client_options;
  client_options.brokers = options.endpoints;
  if (!options.keyring.empty()) client_options.keyring_path = options.keyring;
  client_options.deadline = std::chrono::milliseconds(options.deadline_ms);
  client_options.max_in_flight = std::max<std::size_t>(10'000, 2 * options.Window());
  client_options.report = false;  // no courier.metrics/.errors in the bench (the baseline has none)
  courier::Client client(client_options);
  if (!WaitForWorkers(client, options)) return 1;

  const std::string data = RequestData(options);
  const std::size_t total = options.warmup + options.count;
  const std::size_t window = options.Window();
  Measured m;
  // What the broker holds per job: the plaintext plus the AEAD tag.
  m.payload_frame_bytes = courier::EncodeValue(Request(options, options.warmup + options.count / 2, data)).size() + 16;
  Clock::time_point start{};
  double cpu_start = 0;
  auto begin_timing = [&] {
    PrintStart();
    start = Clock::now();
    cpu_start = ProcessCpuSeconds();
  };
  auto end_timing = [&] {
    m.elapsed = Clock::now() - start;
    m.cpu_s = ProcessCpuSeconds() - cpu_start;
  };

  if (options.mode == "sync" && !options.fire_and_forget) {
    m.latencies_us.reserve(options.count);
    for (std::size_t i = 0; i < total; ++i) {
      if (i == options.warmup) begin_timing();
      const auto sent = Clock::now();
      try {
        const courier::Value reply = client.Call(options.service, Request(options, i, data));
        const double us = std::chrono::duration<double, std::micro>(Clock::now() - sent).count();
        if (std::string wrong = CheckReply(options, reply, i, options.size); !wrong.empty()) throw std::runtime_error(wrong);
        if (i >= options.warmup) {
          m.latencies_us.push_back(us);
          ++m.done;
        }
      } catch (const std::exception& error) {
        ++m.failed;
        if (m.first_error.empty()) m.first_error = error.what();
        if (m.failed > options.max_failures) break;  // a run that fails ends early, bounded
      }
    }
    end_timing();
    PrintResult(options, "courier", m);
    return m.failed == 0 ? 0 : 1;
  }

  if (options.api == "future" && !options.fire_and_forget) {
    std::deque<std::pair<std::size_t, std::future<courier::Value>>> pending;
    auto settle_one = [&] {
      auto [index, future] = std::move(pending.front());
      pending.pop_front();
      try {
        const courier::Value reply = future.get();
        if (std::string wrong = CheckReply(options, reply, index, options.size); !wrong.empty()) throw std::runtime_error(wrong);
        if (index >= options.warmup) ++m.done;
      } catch (const std::exception& error) {
        ++m.failed;
        if (m.first_error.empty()) m.first_error = error.what();
      }
    };
    for (std::size_t i = 0; i < total && m.failed <= options.max_failures; ++i) {
      if (i == options.warmup) {
        while (!pending.empty()) settle_one();
        begin_timing();
      }
      while (pending.size() >= window) settle_one();
      pending.emplace_back(i, client.Submit(options.service, Request(options, i, data)));
    }
    while (!pending.empty()) settle_one();
    end_timing();
    PrintResult(options, "courier", m);
    return m.failed == 0 ? 0 : 1;
  }

  // Callbacks (and fire-and-forget, whose callback runs on acceptance): a window of
  // `window` jobs outstanding, refilled as completions arrive.
  std::mutex mutex;
  std::condition_variable changed;
  std::size_t outstanding = 0;
  std::size_t completed = 0;
  auto on_done = [&](std::size_t index, courier::Result result) {
    std::string wrong;
    if (!result.ok()) {
      wrong = result.error()->what();
    } else if (!options.fire_and_forget) {
      wrong = CheckReply(options, result.value(), index, options.size);
    }
    std::lock_guard lock(mutex);
    if (wrong.empty()) {
      if (index >= options.warmup) ++m.done;
    } else {
      ++m.failed;
      if (m.first_error.empty()) m.first_error = wrong;
    }
    --outstanding;
    ++completed;
    changed.notify_one();
  };
  std::size_t submitted = 0;
  for (std::size_t i = 0; i < total; ++i) {
    {
      std::unique_lock lock(mutex);
      if (i == options.warmup) {
        changed.wait(lock, [&] { return completed == options.warmup || m.failed > options.max_failures; });
        lock.unlock();
        begin_timing();
        lock.lock();
      }
      changed.wait(lock, [&] { return outstanding < window || m.failed > options.max_failures; });
      if (m.failed > options.max_failures) break;  // a run that fails ends early, bounded
      ++outstanding;
    }
    ++submitted;
    auto callback = [&on_done, i](courier::Result result) { on_done(i, std::move(result)); };
    if (options.fire_and_forget) {
      client.Send(options.service, Request(options, i, data), std::move(callback));
    } else {
      client.Submit(options.service, Request(options, i, data), std::move(callback));
    }
  }
  {
    std::unique_lock lock(mutex);
    changed.wait(lock, [&] { return completed == submitted; });
  }
  end_timing();
  PrintResult(options, "courier", m);
  return m.failed == 0 ? 0 : 1;
}

// Waits until every broker reports nothing queued or in flight for the service.
int WaitDrained(const ClientOptions& options) {
  courier::ClientOptions client_options;
  client_options.brokers = options.endpoints;
  client_options.report = false;
  if (!options.keyring.empty()) client_options.keyring_path = options.keyring;
  courier::Client client(client_options);
  const auto started = Clock::now();
  const auto deadline = started + std::chrono::duration_cast<Clock::duration>(
                                      std::chrono::duration<double>(options.wait_timeout_s));
  while (Clock::now() < deadline) {
    try {
      std::uint64_t left = 0;
      bool seen = false;
      for (const courier::ServiceInfo& service : client.ClusterServices()) {
        if (service.name != options.service) continue;
        seen = true;
        left += service.queued + service.in_flight;
      }
      if (seen && left == 0) {
        std::printf("{\"drained_after_s\":%.3f}\n",
                    std::chrono::duration<double>(Clock::now() - started).count());
        return 0;
      }
    } catch (const courier::Error&) {
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  std::cerr << "courier-bench: '" << options.service << "' not drained after " << options.wait_timeout_s << " s\n";
  return 1;
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
    command->add_option("--connect", options.endpoints, "broker endpoint")->required();
    command->add_option("--mode", options.mode)->check(CLI::IsMember({"sync", "pipelined"}));
    command->add_option("--size", options.size, "payload bytes");
    command->add_option("--count", options.count, "timed jobs");
    command->add_option("--window", options.window, "jobs in flight when pipelined");
    command->add_option("--warmup", options.warmup, "untimed jobs first (default 100)");
  };
  auto* baseline_client = app.add_subcommand("baseline-client", "client of the baseline broker");
  add_client(baseline_client);
  std::string mdp_service = "mdp.echo";
  auto* mdp_worker = app.add_subcommand("mdp-worker", "plain Majordomo echo worker");
  mdp_worker->add_option("--connect", endpoint);
  mdp_worker->add_option("--service", mdp_service);
  auto* mdp_client = app.add_subcommand("mdp-client", "plain Majordomo client, pipelined");
  add_client(mdp_client);
  mdp_client->add_option("--service", options.service);
  auto* raw_client = app.add_subcommand("raw-client", "Courier client from raw frames");
  add_client(raw_client);
  raw_client->add_option("--service", options.service);
  raw_client->add_option("--keyring", options.keyring);
  raw_client->add_flag("--send", options.fire_and_forget, "fire-and-forget (counts ACCEPTs)");
  auto* sdk_client = app.add_subcommand("courier-client", "the courier::Client SDK end to end");
  add_client(sdk_client);
  sdk_client->add_option("--service", options.service);
  sdk_client->add_option("--request", options.request, "request shape: echo (default) or textstats ({text})")
      ->check(CLI::IsMember({"echo", "textstats"}));
  sdk_client->add_option("--keyring", options.keyring, "key file (default: the user keyring, created if missing)");
  sdk_client->add_option("--api", options.api, "pipelined completions: callback or future")
      ->check(CLI::IsMember({"callback", "future"}));
  sdk_client->add_flag("--send", options.fire_and_forget, "fire-and-forget Send (completes on ACCEPT)");
  sdk_client->add_option("--wait-workers", options.wait_workers,
                         "wait until every broker has this many workers for the service (0: don't)");
  sdk_client->add_option("--wait-timeout", options.wait_timeout_s, "seconds to wait for them (default 20)");
  sdk_client->add_option("--deadline-ms", options.deadline_ms, "each job's deadline (default 30000)");
  sdk_client->add_option("--max-failures", options.max_failures,
                         "failed jobs tolerated before the run stops early (default 0)");
  auto* drained = app.add_subcommand("wait-drained", "wait until a service has nothing queued or in flight");
  drained->add_option("--connect", options.endpoints, "broker endpoint")->required();
  drained->add_option("--service", options.service);
  drained->add_option("--keyring", options.keyring);
  drained->add_option("--timeout", options.wait_timeout_s, "seconds (default 20)");
  CLI11_PARSE(app, argc, argv);
  try {
    if (drained->parsed()) return WaitDrained(options);
    if (broker->parsed()) return BaselineBroker(endpoint);
    if (worker->parsed()) return BaselineWorker(endpoint);
    if (baseline_client->parsed()) return BaselineClient(options);
    if (mdp_worker->parsed()) return MdpWorker(endpoint, mdp_service);
    if (mdp_client->parsed()) return MdpClient(options);
    if (raw_client->parsed()) return RawCourierClient(options);
    return SdkClient(options);
  } catch (const std::exception& error) {
    std::cerr << "courier-bench: " << error.what() << "\n";
    return 1;
  }
}
