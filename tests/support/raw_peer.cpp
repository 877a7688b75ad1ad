#include "raw_peer.hpp"

namespace courier::test {

RawPeer::RawPeer(zmq::context_t& context, const std::string& endpoint, const std::string& identity,
                 const CurveClientKeys* curve)
    : socket_(context, zmq::socket_type::dealer) {
  if (curve != nullptr) {
    socket_.set(zmq::sockopt::curve_serverkey, curve->server_public);
    socket_.set(zmq::sockopt::curve_publickey, curve->public_key);
    socket_.set(zmq::sockopt::curve_secretkey, curve->secret_key);
  }
  socket_.set(zmq::sockopt::linger, 0);
  socket_.set(zmq::sockopt::sndhwm, 1000000);
  socket_.set(zmq::sockopt::rcvhwm, 1000000);
  if (!identity.empty()) socket_.set(zmq::sockopt::routing_id, identity);
  socket_.connect(endpoint);
}

void RawPeer::Send(const Frames& frames) {
  for (std::size_t i = 0; i < frames.size(); ++i) {
    socket_.send(zmq::buffer(frames[i]), i + 1 < frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
  }
}

std::optional<Frames> RawPeer::Receive(std::chrono::milliseconds timeout) {
  zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
  if (zmq::poll(&item, 1, timeout) == 0) return std::nullopt;
  Frames frames;
  zmq::message_t frame;
  do {
    (void)socket_.recv(frame, zmq::recv_flags::none);
    frames.push_back(frame.to_string());
  } while (frame.more());
  return frames;
}

std::optional<Frames> RawPeer::ReceiveWhere(std::size_t index, const std::string& value,
                                            std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return std::nullopt;
    auto frames = Receive(left);
    if (!frames) return std::nullopt;
    if (frames->size() > index && (*frames)[index] == value) return frames;
  }
}

}  // namespace courier::test
