// The broker's whole inbound path: the input is split into frames (a length byte, then
// that many bytes, repeated) and fed to the routing core as messages from a few peers,
// with clock ticks in between. Nothing may crash, leak or throw out of OnMessage.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "broker.hpp"

namespace {

class NullOutbox final : public courier::broker::Outbox {
 public:
  courier::broker::SendResult Send(std::span<zmq::message_t>) override {
    return courier::broker::SendResult::kSent;
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static NullOutbox outbox;
  courier::broker::BrokerConfig config;
  config.defaults.queue_limit = 64;
  courier::broker::Broker broker(config, outbox, 1);
  courier::broker::Now now{std::chrono::steady_clock::time_point{}, 1'800'000'000'000ULL};
  std::vector<zmq::message_t> frames;
  std::size_t offset = 0;
  while (offset < size) {
    const std::uint8_t control = data[offset++];
    if (control == 0xff) {  // end of message
      if (!frames.empty()) broker.OnMessage(frames, now);
      frames.clear();
      now.steady += std::chrono::milliseconds(700);
      now.unix_ms += 700;
      broker.OnTick(now);
      continue;
    }
    if (frames.empty()) {
      const char peer = static_cast<char>('A' + control % 4);  // a few routing ids
      frames.emplace_back(&peer, 1);
    }
    const std::size_t length = std::min<std::size_t>(control, size - offset);
    frames.emplace_back(data + offset, length);
    offset += length;
  }
  if (!frames.empty()) broker.OnMessage(frames, now);
  return 0;
}
