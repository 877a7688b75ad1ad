// Attacks on one courier-broker, written from the attacker's side with raw DEALER peers
// (issue 15): each test proves the attack fails and that honest traffic through the same
// broker is still served.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <array>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>
#include <thread>
#include <unistd.h>
#include <zmq_addon.hpp>

#include "courier/value.hpp"
#include "broker_fixture.hpp"
#include "frames.hpp"
#include "protocol.hpp"

namespace courier::test {
namespace {

using namespace std::chrono_literals;

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kUnderAddressSanitizer = true;
#else
constexpr bool kUnderAddressSanitizer = false;
#endif

class HostileTest : public BrokerFixture {};

// Reply theft: job ids can be predictable (an idempotency key), so an attacker who knows the
// victim's id submits a job under it while the victim's job is in flight, hoping the broker
// re-points the victim's reply to the newest sender.
TEST_F(HostileTest, AnotherClientCannotStealAReplyBySubmittingTheSameJobId) {
  StartBroker();
  auto worker = StartWorker("slow", {"--service", "slow", "--protocol", "courier", "--delay-ms", "1500", "--heartbeat-ms", "100"});
  ASSERT_TRUE(worker.WaitForLog("ready", 5s));
  ASSERT_TRUE(WaitForMmi("slow", "200", 5s));

  auto victim = Peer();
  auto attacker = Peer();
  const JobId id = JobId::Random();
  const std::string envelope = Envelope("slow", id);
  victim->Send({"", "CRC01", "\x01", envelope, "victim's secret"});
  ASSERT_TRUE(worker.WaitForLog("received 1", 5s));  // in flight now

  attacker->Send({"", "CRC01", "\x01", envelope, "attacker"});
  const auto refused = attacker->Receive(2s);
  ASSERT_TRUE(refused.has_value()) << "the attacker got no answer";
  ASSERT_EQ(refused->at(2), "\x04") << "the attacker got something other than ERROR";
  const auto error = detail::DecodeErrorBody(refused->at(3));
  EXPECT_EQ(error.code, ErrorCode::kBadRequest);
  EXPECT_NE(error.message.find("already in use by another client"), std::string::npos) << error.message;

  const auto reply = victim->ReceiveWhere(2, "\x03", 5s);
  ASSERT_TRUE(reply.has_value()) << "the victim lost its reply";
  EXPECT_EQ(reply->back(), "victim's secret");
  EXPECT_FALSE(attacker->Receive(1s).has_value()) << "the attacker received something after the refusal";

  // The victim's own retry on its connection is still a duplicate, not a second job.
  const JobId again = JobId::Random();
  const std::string second = Envelope("slow", again);
  victim->Send({"", "CRC01", "\x01", second, "one"});
  victim->Send({"", "CRC01", "\x01", second, "one"});
  ASSERT_TRUE(victim->ReceiveWhere(2, "\x03", 5s).has_value());
  EXPECT_FALSE(victim->ReceiveWhere(2, "\x03", 2500ms).has_value()) << "a retry ran twice";
}

// Returns: the services the broker lists (the `services` query), by name.
std::vector<std::string> ServiceNames(RawPeer& peer) {
  peer.Send({"", "CRC01", "\x05", "q", detail::EncodeQuery("services")});
  const auto reply = peer.ReceiveWhere(2, "\x06", 5s);
  EXPECT_TRUE(reply.has_value());
  std::vector<std::string> names;
  if (!reply) return names;
  const Value body = DecodeValue(reply->back());
  for (const Value& service : body.AsArray().at(1).AsArray()) {
    names.push_back(service.At("name").AsString());
  }
  return names;
}

// Returns: one counter of the `stats` query.
std::uint64_t Stat(RawPeer& peer, const std::string& name) {
  peer.Send({"", "CRC01", "\x05", "s", detail::EncodeQuery("stats")});
  const auto reply = peer.ReceiveWhere(2, "\x06", 5s);
  EXPECT_TRUE(reply.has_value());
  return reply ? DecodeValue(reply->back()).AsArray().at(1).At(name).AsUint() : 0;
}

// Returns: how many messages were waiting on `peer` (read without blocking).
std::size_t DrainCount(RawPeer& peer, std::size_t* errors_with = nullptr, const std::string& text = {}) {
  std::size_t count = 0;
  while (true) {
    std::vector<zmq::message_t> message;
    if (!zmq::recv_multipart(peer.socket(), std::back_inserter(message), zmq::recv_flags::dontwait)) break;
    ++count;
    if (errors_with != nullptr && message.size() == 4 && message[2].to_string_view() == "\x04" &&
        detail::DecodeErrorBody(message[3].to_string_view()).message.find(text) != std::string::npos) {
      ++*errors_with;
    }
  }
  return count;
}

// Service-table flooding: one peer names 20,000 new services (jobs no worker will ever
// take). The table must not fill for good: honest echo jobs keep flowing, new workers still
// register, and once the attacker's jobs are gone the phantom services are forgotten.
TEST_F(HostileTest, FloodingTheServiceTableWithNewNamesLeavesNoPhantomsAndHonestJobsFlow) {
  StartBroker("heartbeat_interval = \"200ms\"\nservice_grace = \"1s\"\n");
  auto echo = StartWorker("echo", {"--service", "echo", "--protocol", "courier", "--capacity", "8", "--heartbeat-ms", "100"});
  ASSERT_TRUE(WaitForMmi("echo", "200", 5s));
  auto attacker = Peer();
  auto honest = Peer();
  auto observer = Peer();
  std::size_t quota_refusals = 0;
  std::size_t honest_ok = 0;
  std::size_t honest_sent = 0;
  const auto give_up = std::chrono::steady_clock::now() + 60s;
  for (int i = 0; i < 20000 && std::chrono::steady_clock::now() < give_up; ++i) {
    attacker->Send({"", "CRC01", "\x01", Envelope("phantom-" + std::to_string(i), JobId::Random(), 1, 1500), "x"});
    if (i % 200 == 0) {
      honest->Send({"", "CRC01", "\x01", Envelope("echo", JobId::Random()), "hello " + std::to_string(i)});
      ++honest_sent;
      const auto reply = honest->Receive(5s);
      ASSERT_TRUE(reply.has_value()) << "honest job " << honest_sent << " unanswered";
      ASSERT_EQ(reply->at(2), "\x03") << "honest job " << honest_sent << " refused: "
                                      << detail::DecodeErrorBody(reply->at(3)).message;
      ++honest_ok;
    }
    if (i % 500 == 0) DrainCount(*attacker, &quota_refusals, "new services");
  }
  ASSERT_TRUE(WaitFor([&] { return (DrainCount(*attacker, &quota_refusals, "new services"), quota_refusals >= 19000); }, 10s))
      << quota_refusals << " refusals naming the per-peer quota";
  EXPECT_EQ(honest_ok, honest_sent);

  // A new worker registers while the attacker's queued jobs still hold their services.
  auto late = StartWorker("late", {"--service", "late", "--protocol", "courier", "--heartbeat-ms", "100"});
  ASSERT_TRUE(WaitForMmi("late", "200", 5s)) << "a new worker could not register after the flood";

  // Deadline (1.5 s) + grace (1 s) + a sweep later, only real services are left.
  ASSERT_TRUE(WaitFor([&] { return Stat(*observer, "services") == 2; }, 10s))
      << Stat(*observer, "services") << " services held";
  auto names = ServiceNames(*observer);
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"echo", "late"}));
  EXPECT_GE(Stat(*observer, "services_pruned"), 100u);
}

TEST_F(HostileTest, InvalidServiceNamesAreRefusedWithTheRule) {
  StartBroker();
  auto client = Peer();
  const JobId id = JobId::Random();
  client->Send({"", "CRC01", "\x01", Envelope("bad\xff\xfename", id), "x"});
  auto refused = client->ReceiveWhere(2, "\x04", 5s);
  ASSERT_TRUE(refused.has_value());
  auto error = detail::DecodeErrorBody(refused->at(3));
  EXPECT_EQ(error.code, ErrorCode::kBadRequest);
  EXPECT_EQ(error.job_id, id);
  EXPECT_NE(error.message.find("not valid UTF-8"), std::string::npos) << error.message;

  client->Send({"", "CRC01", "\x01", Envelope(std::string("tab\tname"), JobId::Random()), "x"});
  refused = client->ReceiveWhere(2, "\x04", 5s);
  ASSERT_TRUE(refused.has_value());
  EXPECT_NE(detail::DecodeErrorBody(refused->at(3)).message.find("control character"), std::string::npos);

  auto worker = Peer();
  worker->Send({"", "CRW01", "\x01", "w\xc0\xafrker", CourierReady(1)});  // an overlong '/'
  EXPECT_TRUE(worker->ReceiveWhere(2, "\x05", 5s).has_value()) << "READY for a non-UTF-8 name was not refused";

  auto observer = Peer();
  EXPECT_TRUE(ServiceNames(*observer).empty());
  EXPECT_EQ(Stat(*observer, "services"), 0u);
  EXPECT_EQ(Stat(*observer, "invalid_service_names"), 3u);
}

// Returns: a field of /proc/PID/status in KiB (VmRSS, VmHWM), or 0.
std::size_t StatusKiB(pid_t pid, const std::string& field) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind(field + ":", 0) == 0) return std::stoull(line.substr(field.size() + 1));
  }
  return 0;
}

// Memory by bytes: 1,000 jobs of 1 MiB with a 1 h deadline for a service no worker serves.
// Past max_queued_bytes (64 MiB here) the broker answers busy with the reason, and its
// peak RSS stays near the bound instead of growing by the gigabyte sent.
TEST_F(HostileTest, BigJobsForAServiceWithoutWorkersAreRefusedPastTheByteBound) {
  if (kUnderAddressSanitizer) GTEST_SKIP() << "RSS bounds do not hold under ASan (shadow memory, quarantine)";
  StartBroker("heartbeat_interval = \"200ms\"\nunknown_service_grace = \"1h\"\n[defaults]\nmax_queued_bytes = 67108864\n");
  const std::size_t idle_kib = StatusKiB(broker_->pid(), "VmRSS");
  auto attacker = Peer();
  const std::string megabyte(1 << 20, 'm');
  std::size_t busy = 0;
  for (int i = 0; i < 1000; ++i) {
    attacker->Send({"", "CRC01", "\x01", Envelope("nobody", JobId::Random(), 1, 3600 * 1000), megabyte});
    if (i % 50 == 0) DrainCount(*attacker, &busy, "max_queued_bytes");
  }
  ASSERT_TRUE(WaitFor([&] { return (DrainCount(*attacker, &busy, "max_queued_bytes"), busy >= 930); }, 30s))
      << busy << " busy answers naming max_queued_bytes";
  const std::size_t peak_kib = StatusKiB(broker_->pid(), "VmHWM");
  std::cout << "broker RSS idle " << idle_kib / 1024 << " MiB, peak " << peak_kib / 1024 << " MiB\n";
  EXPECT_LT(peak_kib, idle_kib + 3 * 64 * 1024) << "peak RSS past 3 x max_queued_bytes";

  // A deadline past max_deadline (24 h) is refused outright.
  auto client = Peer();
  client->Send({"", "CRC01", "\x01", Envelope("nobody", JobId::Random(), 1, 48ull * 3600 * 1000), "x"});
  const auto refused = client->ReceiveWhere(2, "\x04", 5s);
  ASSERT_TRUE(refused.has_value());
  EXPECT_NE(detail::DecodeErrorBody(refused->at(3)).message.find("max_deadline"), std::string::npos);
}

// A client that submits many 64 KiB jobs and never reads its replies: once more than
// max_client_bytes (8 MiB here) of answers wait for its connection, the broker shuts the
// connection down (logged, counted) and frees them, so its RSS stays bounded while an
// honest stream alongside is served.
TEST_F(HostileTest, AClientThatNeverReadsCannotGrowTheBroker) {
  if (kUnderAddressSanitizer) GTEST_SKIP() << "RSS bounds do not hold under ASan (shadow memory, quarantine)";
  StartBroker("heartbeat_interval = \"200ms\"\nmax_client_bytes = 8388608\n");
  auto echo = StartWorker("echo", {"--service", "echo", "--protocol", "courier", "--capacity", "64", "--heartbeat-ms", "100"});
  ASSERT_TRUE(WaitForMmi("echo", "200", 5s));
  const std::size_t idle_kib = StatusKiB(broker_->pid(), "VmRSS");
  zmq::context_t context(1);
  zmq::socket_t attacker(context, zmq::socket_type::dealer);
  attacker.set(zmq::sockopt::linger, 0);
  attacker.set(zmq::sockopt::rcvhwm, 10);
  attacker.set(zmq::sockopt::rcvbuf, 64 * 1024);
  attacker.set(zmq::sockopt::sndtimeo, 2000);
  attacker.connect(endpoint_);
  auto honest = Peer();
  const std::string payload(64 * 1024, 'p');
  std::size_t honest_ok = 0;
  std::size_t honest_sent = 0;
  const auto give_up = std::chrono::steady_clock::now() + 90s;
  for (int i = 0; i < 5000 && std::chrono::steady_clock::now() < give_up; ++i) {
    const std::string envelope = Envelope("echo", JobId::Random());
    std::array<zmq::const_buffer, 5> frames{zmq::str_buffer(""), zmq::str_buffer("CRC01"), zmq::str_buffer("\x01"),
                                            zmq::buffer(envelope), zmq::buffer(payload)};
    if (!zmq::send_multipart(attacker, frames)) break;
    if (i % 500 == 0) {
      honest->Send({"", "CRC01", "\x01", Envelope("echo", JobId::Random()), "hello"});
      ++honest_sent;
      const auto reply = honest->ReceiveWhere(2, "\x03", 30s);
      if (reply) ++honest_ok;
    }
  }
  auto observer = Peer();
  ASSERT_TRUE(WaitFor([&] { return Stat(*observer, "jobs_live") == 0; }, 60s));
  const std::size_t rss_kib = StatusKiB(broker_->pid(), "VmRSS");
  const std::size_t peak_kib = StatusKiB(broker_->pid(), "VmHWM");
  const std::uint64_t dropped = Stat(*observer, "slow_clients_dropped");
  std::cout << "broker RSS idle " << idle_kib / 1024 << " MiB, after " << rss_kib / 1024 << " MiB, peak "
            << peak_kib / 1024 << " MiB; slow client connections shut down " << dropped << "\n";
  EXPECT_EQ(honest_ok, honest_sent);
  EXPECT_GE(dropped, 1u);
  EXPECT_TRUE(broker_->WaitForLog("max_client_bytes", 5s)) << broker_->Log();
  // 8 MiB may wait for the attacker's connection (send_hwm alone let 64 MiB wait); the
  // 320 MB it asked for may not.
  EXPECT_LT(peak_kib, idle_kib + 96 * 1024);
  EXPECT_LT(rss_kib, idle_kib + 48 * 1024);
}

// Returns: the CPU time (user + system) the process used so far.
std::chrono::milliseconds CpuTime(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  std::istringstream fields(text.substr(text.rfind(')') + 2));
  std::string field;
  std::uint64_t utime = 0;
  std::uint64_t stime = 0;
  for (int i = 3; i <= 15 && fields >> field; ++i) {
    if (i == 14) utime = std::stoull(field);
    if (i == 15) stime = std::stoull(field);
  }
  return std::chrono::milliseconds((utime + stime) * 1000 / static_cast<std::uint64_t>(::sysconf(_SC_CLK_TCK)));
}

// A connection flood against a broker whose file-descriptor limit is low (128): it never
// reaches the limit (max_connections is lowered to fit), closes the connections past it as
// they come, logs that once a second, does not spin, and keeps answering PINGs from a
// client that was connected before.
TEST_F(HostileTest, AConnectionFloodIsRefusedWithoutSpinningAndPingsAreAnswered) {
  endpoint_ = FreeEndpoint();
  const auto config = dir_.Write("broker.toml", "bind = [\"" + endpoint_ + "\"]\nheartbeat_interval = \"200ms\"\n");
  broker_ = std::make_unique<ChildProcess>(
      "/usr/bin/prlimit",
      std::vector<std::string>{"--nofile=128:128", BinaryPath("courier-broker").string(), "--config", config.string()},
      dir_.path() / "broker.log");
  ASSERT_TRUE(broker_->WaitForLog("listening on", std::chrono::seconds(10))) << broker_->Log();
  auto honest = Peer();
  honest->Send({"", "CRC01", "\x07", "first"});
  ASSERT_TRUE(honest->ReceiveWhere(2, "\x08", 5s).has_value());

  zmq::context_t flood_context(1);
  std::vector<zmq::socket_t> flood;
  for (int i = 0; i < 400; ++i) {
    flood.emplace_back(flood_context, zmq::socket_type::dealer);
    flood.back().set(zmq::sockopt::linger, 0);
    flood.back().set(zmq::sockopt::reconnect_ivl, 200);
    flood.back().connect(endpoint_);
  }
  const auto cpu_before = CpuTime(broker_->pid());
  const auto wall_before = std::chrono::steady_clock::now();
  int answered = 0;
  for (int i = 0; i < 20; ++i) {
    honest->Send({"", "CRC01", "\x07", "p" + std::to_string(i)});
    if (honest->ReceiveWhere(3, "p" + std::to_string(i), 2s)) ++answered;
    std::this_thread::sleep_for(100ms);
  }
  const auto cpu = CpuTime(broker_->pid()) - cpu_before;
  const auto wall = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - wall_before);
  auto observer_stats = [&](const std::string& name) { return Stat(*honest, name); };
  const auto open = observer_stats("connections");
  const auto refused = observer_stats("connections_refused");
  std::cout << "broker CPU " << cpu.count() << " ms in " << wall.count() << " ms; connections " << open
            << ", refused " << refused << "\n";
  EXPECT_EQ(answered, 20);
  EXPECT_LE(open, 64u);      // 128 descriptors - 64 reserved
  EXPECT_GT(refused, 0u);
  EXPECT_LT(cpu.count(), wall.count() / 2) << "the broker spins";
  EXPECT_TRUE(broker_->WaitForLog("max_connections", 2s));
  // Connections closed at the cap still hold a descriptor for a moment, so a flood may
  // touch the limit: accept() failures are then logged at most once a second, not per try.
  const std::string log = broker_->Log();
  std::size_t accept_lines = 0;
  for (auto at = log.find("accept() failed"); at != std::string::npos; at = log.find("accept() failed", at + 1)) {
    ++accept_lines;
  }
  EXPECT_LE(accept_lines, static_cast<std::size_t>(wall.count() / 1000 + 2)) << log;
  flood.clear();
}


// The broker fuzz run of issue 15: 1,000,000 random and mutated multi-frame messages from
// 16 raw peers (random bytes; the four headers with random commands; valid SUBMITs and
// READYs with a byte changed; READYs and requests naming random services) while an honest
// client calls a real worker throughout. The broker stays up, every honest call is
// answered, the phantom services and workers the fuzz made are forgotten, and its RSS
// comes back within twice what it was idle.
TEST_F(HostileTest, AMillionFuzzedMessagesLeaveTheBrokerUpTheStreamWholeAndNoPhantoms) {
  const std::size_t messages = kUnderAddressSanitizer ? 100'000 : 1'000'000;
  // Plain Majordomo requests for ghost services wait mdp_deadline in their queues: 5 s here.
  StartBroker(
      "heartbeat_interval = \"200ms\"\nservice_grace = \"300ms\"\nmax_message_bytes = 65536\nmdp_deadline = \"5s\"\n");
  auto echo = StartWorker("echo", {"--service", "echo", "--protocol", "courier", "--capacity", "16", "--heartbeat-ms", "100"});
  ASSERT_TRUE(WaitForMmi("echo", "200", 5s));
  auto observer = Peer();
  const std::size_t idle_kib = StatusKiB(broker_->pid(), "VmRSS");

  std::atomic<bool> fuzzing{true};
  std::atomic<std::size_t> honest_sent{0};
  std::atomic<std::size_t> honest_ok{0};
  std::thread honest([&] {
    auto client = Peer();
    while (fuzzing.load() && honest_sent.load() < 100'000) {
      ++honest_sent;
      client->Send({"", "CRC01", "\x01", Envelope("echo", JobId::Random()), "honest"});
      const auto reply = client->ReceiveWhere(2, "\x03", 10s);
      if (reply && reply->back() == "honest") ++honest_ok;
    }
  });

  std::mt19937 random(20261207);
  auto bytes = [&](std::size_t max) {
    std::string out(random() % (max + 1), '\0');
    for (auto& byte : out) byte = static_cast<char>(random());
    return out;
  };
  const std::vector<std::string> headers{"MDPC01", "MDPW01", "CRC01", "CRW01", "", "CRC0", "XXXXXX"};
  const std::string submit_envelope = Envelope("fuzz", JobId::Random());
  detail::ReadyInfo info;
  info.capacity = 4;
  const std::string ready_info = detail::EncodeReadyInfo(info);
  std::vector<std::unique_ptr<RawPeer>> peers;
  for (int i = 0; i < 16; ++i) peers.push_back(Peer());
  const auto give_up = std::chrono::steady_clock::now() + 240s;
  std::size_t sent = 0;
  for (; sent < messages && std::chrono::steady_clock::now() < give_up; ++sent) {
    Frames frames;
    switch (random() % 6) {
      case 0:  // random frames
        for (std::size_t f = 0, n = random() % 7; f < n; ++f) frames.push_back(bytes(64));
        break;
      case 1:  // a known header, a random command, random bodies
        frames = {"", headers[random() % headers.size()], std::string(1, static_cast<char>(random() % 12))};
        for (std::size_t f = 0, n = random() % 4; f < n; ++f) frames.push_back(bytes(300));
        break;
      case 2: {  // a SUBMIT whose envelope has one byte changed
        std::string envelope = submit_envelope;
        envelope[random() % envelope.size()] = static_cast<char>(random());
        frames = {"", "CRC01", "\x01", envelope, bytes(100)};
        break;
      }
      case 3: {  // a READY for a random service (a phantom) or with a mutated ready-info
        std::string mutated = ready_info;
        if (random() % 2) mutated[random() % mutated.size()] = static_cast<char>(random());
        frames = {"", "CRW01", "\x01", "phantom-" + std::to_string(random() % 100000), mutated};
        break;
      }
      case 4:  // an MDP request or READY naming a random service
        frames = random() % 2 ? Frames{"", "MDPC01", "ghost-" + std::to_string(random() % 100000), bytes(50)}
                              : Frames{"", "MDPW01", "\x01", "ghost-" + std::to_string(random() % 100000)};
        break;
      default:  // a query, a ping or a heartbeat with junk
        frames = {"", "CRC01", std::string(1, static_cast<char>(5 + random() % 3)), bytes(20), bytes(40)};
        break;
    }
    if (frames.empty()) frames.push_back("");
    peers[random() % peers.size()]->Send(frames);
  }
  fuzzing = false;
  honest.join();
  std::cout << "fuzzed " << sent << " messages; honest calls " << honest_ok.load() << " of " << honest_sent.load()
            << "\n";
  EXPECT_EQ(sent, messages) << "the fuzz run did not finish in time";
  ASSERT_TRUE(broker_->Running()) << broker_->Log();
  EXPECT_GT(honest_sent.load(), 0u);
  EXPECT_EQ(honest_ok.load(), honest_sent.load());
  // The fuzz peers go away; what they registered expires and is forgotten.
  peers.clear();
  // Left: echo, and courier.errors holding the dead letters of jobs the fuzz's phantom
  // workers took with them (they wait for a sink; that service is real).
  std::vector<std::string> names;
  EXPECT_TRUE(WaitFor(
      [&] {
        names = ServiceNames(*observer);
        std::erase(names, std::string("courier.errors"));
        return names == std::vector<std::string>{"echo"};
      },
      30s))
      << names.size() << " services listed, e.g. " << (names.empty() ? "" : names.back());
  EXPECT_EQ(Stat(*observer, "workers_live"), 1u);
  if (!kUnderAddressSanitizer) {
    // The target: back within 2x idle (measured 1.5x). It was 4-5x while pruned
    // services kept their slots (and each slot's empty queue), a burst's job index and
    // deadline heap stayed at their peak, and what libzmq freed when the fuzz peers left
    // came after the one trim; 200-330 MiB before the broker trimmed at all.
    std::size_t rss_kib = 0;
    EXPECT_TRUE(WaitFor(
        [&] {
          rss_kib = StatusKiB(broker_->pid(), "VmRSS");
          return rss_kib <= 2 * idle_kib;
        },
        30s))
        << "broker RSS " << rss_kib << " KiB after the run, idle " << idle_kib << " KiB";
    std::cout << "broker RSS idle " << idle_kib << " KiB, after the run " << rss_kib << " KiB ("
              << static_cast<double>(rss_kib) / static_cast<double>(idle_kib) << "x)\n";
  }
}

}  // namespace
}  // namespace courier::test
