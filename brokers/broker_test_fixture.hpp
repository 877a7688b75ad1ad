// broker_test_fixture.hpp — the routing core's test bench: a fake outbox that records every
// message and a fake clock; tests deliver frames and read what came out.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "broker.hpp"
#include "courier/value.hpp"
#include "envelope_codec.hpp"
#include "frames.hpp"
#include "protocol.hpp"

namespace courier::broker::test {

using Message = std::vector<std::string>;
using namespace std::chrono_literals;

class FakeOutbox final : public Outbox {
 public:
  SendResult Send(std::span<zmq::message_t> frames) override {
    Message message;
    for (auto& frame : frames) message.emplace_back(frame.to_string());
    if (unreachable.count(message[0]) != 0) return SendResult::kUnreachable;
    if (full.count(message[0]) != 0) return SendResult::kFull;
    sent.push_back(std::move(message));
    return SendResult::kSent;
  }
  // Returns and forgets every message sent to `peer`.
  std::vector<Message> Take(const std::string& peer) {
    std::vector<Message> taken;
    std::erase_if(sent, [&](const Message& message) {
      if (message[0] != peer) return false;
      taken.push_back(message);
      return true;
    });
    return taken;
  }
  std::vector<Message> sent;
  std::set<std::string> unreachable;
  std::set<std::string> full;  // peers whose pipe is at its high-water mark
};



class BrokerTest : public ::testing::Test {
 protected:
  BrokerTest() { Reset(BrokerConfig{}); }

  void Reset(BrokerConfig config) {
    config.heartbeat_interval = 1000ms;
    config.heartbeat_liveness = 3;
    broker_ = std::make_unique<Broker>(std::move(config), outbox_, 42);
  }

  Now At() const { return Now{start_ + elapsed_, 1'800'000'000'000ULL + static_cast<std::uint64_t>(elapsed_.count())}; }
  void Advance(std::chrono::milliseconds by) {
    elapsed_ += by;
    broker_->OnTick(At());
  }

  void Deliver(const Message& message) {
    std::vector<zmq::message_t> frames;
    for (const auto& frame : message) frames.emplace_back(frame.data(), frame.size());
    broker_->OnMessage(frames, At());
  }

  void CourierReady(const std::string& id, const std::string& service, std::uint32_t capacity = 1,
                    std::uint32_t weight = 1, std::vector<detail::KeyFingerprint> keys = {}) {
    detail::ReadyInfo info;
    info.capacity = capacity;
    info.weight = weight;
    info.host = "test";
    info.instance = id;
    info.keys = std::move(keys);
    Deliver({id, "", "CRW01", "\x01", service, detail::EncodeReadyInfo(info)});
  }

  // Returns: the job ids of the REQUESTs among `messages`, in order.
  static std::vector<JobId> RequestIds(const std::vector<Message>& messages) {
    std::vector<JobId> ids;
    for (const auto& message : messages) {
      if (message.size() >= 6 && message[3] == "\x02") ids.push_back(detail::DecodeEnvelope(message[4]).job_id);
    }
    return ids;
  }

  // Returns: the decoded result of a management query.
  Value Query(const std::string& name) {
    Deliver({"Q", "", "CRC01", "\x05", "q", detail::EncodeQuery(name)});
    const auto replies = outbox_.Take("Q");
    EXPECT_EQ(replies.size(), 1u);
    return DecodeValue(replies.back()[5]).AsArray().at(1);
  }

  // Returns: the dead letters delivered to a courier.errors worker "SINK" (registered here).
  std::vector<Value> DeadLetters() {
    if (broker_->WorkerCount("courier.errors") == 0) CourierReady("SINK", "courier.errors", 100);
    std::vector<Value> letters;
    for (const auto& message : outbox_.Take("SINK")) {
      if (message.size() != 6 || message[3] != "\x02") continue;
      Deliver({"SINK", "", "CRW01", "\x03", message[4], "ok"});
      const Value batch = DecodeValue(message[5]);
      for (const Value& entry : batch.At("reports").AsArray()) letters.push_back(entry);
    }
    outbox_.Take("SINK");
    return letters;
  }

  std::string MakeEnvelope(const std::string& service, JobId id, ReplyMode mode = ReplyMode::kCall,
                           std::uint32_t max_attempts = 3, std::uint64_t deadline_in_ms = 30000) {
    Envelope envelope;
    envelope.job_id = id;
    envelope.service = service;
    envelope.created_at_ms = At().unix_ms;
    envelope.deadline_ms = At().unix_ms + deadline_in_ms;
    envelope.max_attempts = max_attempts;
    envelope.mode = mode;
    return detail::EncodeEnvelope(envelope);
  }

  JobId Submit(const std::string& client, const std::string& service, ReplyMode mode = ReplyMode::kCall,
               std::uint32_t max_attempts = 3, std::uint64_t deadline_in_ms = 30000) {
    const JobId id = JobId::Random();
    Deliver({client, "", "CRC01", "\x01", MakeEnvelope(service, id, mode, max_attempts, deadline_in_ms), "payload"});
    return id;
  }

  // Replies to every REQUEST the worker got, as a Courier worker.
  std::size_t AnswerAll(const std::string& worker) {
    std::size_t answered = 0;
    for (const auto& message : outbox_.Take(worker)) {
      if (message.size() >= 6 && message[3] == "\x02") {  // 7 with a CURVE sender
        Deliver({worker, "", "CRW01", "\x03", message[4], "reply"});
        ++answered;
      }
    }
    return answered;
  }

  static std::size_t Requests(const std::vector<Message>& messages) {
    return std::count_if(messages.begin(), messages.end(),
                         [](const Message& m) { return m.size() >= 4 && m[3] == "\x02"; });
  }

  static detail::ErrorBody ErrorOf(const Message& message) {
    EXPECT_EQ(message.size(), 5u);
    EXPECT_EQ(message[3], "\x04");
    return detail::DecodeErrorBody(message[4]);
  }

  FakeOutbox outbox_;
  std::unique_ptr<Broker> broker_;
  SteadyTime start_ = std::chrono::steady_clock::now();
  std::chrono::milliseconds elapsed_{0};
};

}  // namespace courier::broker::test
