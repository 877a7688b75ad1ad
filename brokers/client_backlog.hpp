// client_backlog.hpp — bytes of answers each client connection has not taken yet.
//
// libzmq bounds what waits for a peer in messages (the send high-water mark), not bytes:
// 1000 answers of 16 MiB to a client that does not read are 16 GB. It tells nothing of a
// pipe's bytes either, but the kernel tells how many bytes of a TCP connection the peer has
// acknowledged (TCP_INFO tcpi_bytes_acked). What the broker handed to libzmq for a client
// (counted as ZMTP puts it on the wire) minus what the client acknowledged is what waits
// for it in the pipe, the engine and the kernel. Past max_client_bytes the connection is
// shut down: libzmq frees what was queued for it, as for any peer that left.
//
// Only TCP connections of clients (CRC01/MDPC01 senders) are tracked; workers' pipes are
// bounded by their credit. Counting drift (a CURVE estimate, the handshake) is reset
// whenever a connection is seen idle with nothing outstanding.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <zmq.hpp>

#include "broker_state.hpp"

namespace courier::broker {

class ClientBacklog {
 public:
  // `max_bytes` 0: no bound (nothing tracked). `curve`: frames travel as CURVE MESSAGEs.
  ClientBacklog(std::size_t max_bytes, bool curve) : max_bytes_(max_bytes), curve_(curve) {}

  // A message from `identity` arrived on `fd` (ZMQ_SRCFD); `client`: it is a client's.
  void OnReceived(std::string_view identity, int fd, bool client);
  // `frames` (routing id first) were handed to libzmq for the peer. Returns: the peer's
  // descriptor when it is a client now holding more than max_bytes unread (the caller
  // shuts it down), else -1.
  int OnSent(std::span<const zmq::message_t> frames);
  void OnClosed(int fd);
  // At most once a second (else nothing): connections idle with nothing outstanding start
  // counting from zero.
  void Sweep(std::chrono::steady_clock::time_point now);
  // Returns: the bytes tracked as waiting for `fd`'s client (tests), or 0.
  std::size_t Waiting(int fd) const;
  std::size_t tracked() const { return peers_.size(); }

 private:
  struct Peer {
    std::string identity;
    std::uint64_t sent = 0;          // wire bytes handed to libzmq since the baseline
    std::uint64_t acked_base = 0;    // the peer's acknowledged bytes at the baseline
    std::uint64_t acked = 0;         // at the last look
    std::uint64_t sent_at_sweep = 0;
    std::uint64_t acked_at_sweep = 0;
  };
  std::uint64_t WireBytes(std::span<const zmq::message_t> frames) const;
  std::size_t Outstanding(const Peer& peer) const {
    const std::uint64_t taken = peer.acked - peer.acked_base;
    return peer.sent > taken ? static_cast<std::size_t>(peer.sent - taken) : 0;
  }

  std::size_t max_bytes_;
  bool curve_;
  std::chrono::steady_clock::time_point next_sweep_{};
  std::unordered_map<int, Peer> peers_;  // by descriptor
  std::unordered_map<std::string, int, StringHash, std::equal_to<>> by_identity_;
};

}  // namespace courier::broker
