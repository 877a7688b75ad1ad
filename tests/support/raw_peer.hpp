// raw_peer.hpp — a DEALER socket speaking raw frames, for tests that play a Majordomo or
// Courier client/worker by hand. Every receive has a timeout; nothing blocks forever.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>
#include <zmq.hpp>

namespace courier::test {

using Frames = std::vector<std::string>;

// CURVE client settings: the broker's public key and this peer's key pair (Z85).
struct CurveClientKeys {
  std::string server_public;
  std::string public_key;
  std::string secret_key;
};

class RawPeer {
 public:
  RawPeer(zmq::context_t& context, const std::string& endpoint, const std::string& identity = {},
          const CurveClientKeys* curve = nullptr);

  void Send(const Frames& frames);
  // Returns: the next message, or std::nullopt after `timeout`.
  std::optional<Frames> Receive(std::chrono::milliseconds timeout = std::chrono::milliseconds(5000));
  // Returns: the next message whose frame `index` equals `value`, skipping others (e.g.
  // heartbeats), or std::nullopt after `timeout`.
  std::optional<Frames> ReceiveWhere(std::size_t index, const std::string& value,
                                     std::chrono::milliseconds timeout = std::chrono::milliseconds(5000));
  zmq::socket_t& socket() { return socket_; }

 private:
  zmq::socket_t socket_;
};

}  // namespace courier::test
