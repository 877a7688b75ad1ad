// Attacks on one courier-broker, written from the attacker's side with raw DEALER peers
// (issue 15): each test proves the attack fails and that honest traffic through the same
// broker is still served.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <fstream>
#include <iostream>
#include <zmq_addon.hpp>

#include "courier/value.hpp"
#include "broker_fixture.hpp"
#include "protocol.hpp"

namespace courier::test {
namespace {

using namespace std::chrono_literals;

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
  StartBroker("heartbeat_interval = \"200ms\"\n[defaults]\nmax_queued_bytes = 67108864\n");
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

// A client that submits many 64 KiB jobs and never reads its replies: the answers waiting
// for it are bounded by send_hwm (the rest dropped and counted), so the broker's RSS stays
// bounded while an honest stream alongside is served.
TEST_F(HostileTest, AClientThatNeverReadsCannotGrowTheBroker) {
  StartBroker("heartbeat_interval = \"200ms\"\n");
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
  std::cout << "broker RSS idle " << idle_kib / 1024 << " MiB, after " << rss_kib / 1024 << " MiB, peak "
            << peak_kib / 1024 << " MiB; answers dropped " << Stat(*observer, "client_sends_full") << "\n";
  EXPECT_EQ(honest_ok, honest_sent);
  EXPECT_GT(Stat(*observer, "client_sends_full"), 0u);
  // send_hwm (1000) x 64 KiB = 64 MiB may wait for the attacker; the 1.28 GB sent may not.
  EXPECT_LT(rss_kib, idle_kib + 200 * 1024);
}

}  // namespace
}  // namespace courier::test
