// broker_fixture.hpp — starts a real courier-broker on an ephemeral port for a test and
// offers raw MDP/Courier peers against it.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "courier/job.hpp"
#include "courier/value.hpp"
#include "envelope_codec.hpp"
#include "frames.hpp"
#include "process.hpp"
#include "raw_peer.hpp"

namespace courier::test {

class BrokerFixture : public ::testing::Test {
 protected:
  // Starts the broker with `extra_config` appended to a config binding a fresh endpoint.
  void StartBroker(const std::string& extra_config = "heartbeat_interval = \"200ms\"\n") {
    endpoint_ = FreeEndpoint();
    const auto config = dir_.Write("broker.toml", "bind = [\"" + endpoint_ + "\"]\n" + extra_config);
    broker_ = std::make_unique<ChildProcess>(BinaryPath("courier-broker"),
                                             std::vector<std::string>{"--config", config.string()},
                                             dir_.path() / "broker.log");
    ASSERT_TRUE(broker_->WaitForLog("listening on", std::chrono::seconds(10))) << broker_->Log();
  }

  void TearDown() override {
    if (HasFailure() && broker_) std::cerr << "--- broker log ---\n" << broker_->Log() << "\n";
  }

  std::unique_ptr<RawPeer> Peer(const std::string& identity = {}) {
    return std::make_unique<RawPeer>(context_, endpoint_, identity);
  }

  ChildProcess StartWorker(const std::string& name, std::vector<std::string> args) {
    args.insert(args.begin(), {"--broker", endpoint_});
    return ChildProcess(BinaryPath("courier-test-worker"), std::move(args), dir_.path() / (name + ".log"));
  }

public:
  static std::string CourierReady(std::uint32_t capacity, std::uint32_t weight = 1) {
    detail::ReadyInfo info;
    info.capacity = capacity;
    info.weight = weight;
    info.host = "test";
    info.instance = "raw";
    return detail::EncodeReadyInfo(info);
  }

  static std::string Envelope(const std::string& service, const JobId& id, std::uint32_t max_attempts = 3,
                              std::uint64_t deadline_in_ms = 30000, ReplyMode mode = ReplyMode::kCall) {
    courier::Envelope envelope;
    envelope.job_id = id;
    envelope.service = service;
    envelope.created_at_ms = NowUnixMs();
    envelope.deadline_ms = envelope.created_at_ms + deadline_in_ms;
    envelope.max_attempts = max_attempts;
    envelope.mode = mode;
    return detail::EncodeEnvelope(envelope);
  }

protected:
  // Waits until mmi.service says `code` for `service`.
  bool WaitForMmi(const std::string& service, const std::string& code, std::chrono::milliseconds timeout) {
    auto client = Peer();
    return WaitFor(
        [&] {
          client->Send({"", "MDPC01", "mmi.service", service});
          const auto reply = client->Receive(std::chrono::milliseconds(500));
          return reply && reply->back() == code;
        },
        timeout);
  }

  TempDir dir_;
  zmq::context_t context_{1};
  std::string endpoint_;
  std::unique_ptr<ChildProcess> broker_;
};

}  // namespace courier::test
