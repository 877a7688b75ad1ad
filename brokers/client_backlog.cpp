#include "client_backlog.hpp"

// linux/tcp.h, not netinet/tcp.h: only the kernel's header has tcpi_bytes_acked.
#include <linux/tcp.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstddef>

namespace courier::broker {
namespace {

struct TcpCounts {
  std::uint64_t acked = 0;      // bytes the peer acknowledged, since the connection opened
  std::uint64_t in_kernel = 0;  // bytes not yet sent or not yet acknowledged
};

// Returns: whether `fd` is a TCP socket whose counts were read.
bool ReadTcpCounts(int fd, TcpCounts& counts) {
  tcp_info info{};
  socklen_t length = sizeof info;
  if (::getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &length) != 0) return false;
  if (length < offsetof(tcp_info, tcpi_notsent_bytes) + sizeof info.tcpi_notsent_bytes) return false;
  counts.acked = info.tcpi_bytes_acked;
  counts.in_kernel = static_cast<std::uint64_t>(info.tcpi_notsent_bytes) + info.tcpi_unacked;
  return true;
}

// ZMTP 3: a frame of up to 255 bytes has a 2-byte header, a longer one 9 bytes.
std::uint64_t FrameOnWire(std::uint64_t body) { return body + (body <= 255 ? 2 : 9); }

// A CURVE MESSAGE command around each frame: "\x07MESSAGE", an 8-byte short nonce, and the
// box (a flags byte and a 16-byte MAC around the frame).
constexpr std::uint64_t kCurveMessageOverhead = 8 + 8 + 1 + 16;

}  // namespace

void ClientBacklog::OnReceived(std::string_view identity, int fd, bool client) {
  if (max_bytes_ == 0 || !client || fd < 0) return;
  if (const auto it = peers_.find(fd); it != peers_.end() && it->second.identity == identity) return;
  TcpCounts counts;
  if (!ReadTcpCounts(fd, counts)) return;  // ipc or inproc: libzmq's pipe bound only
  OnClosed(fd);                            // a descriptor reused by a new connection
  Peer& peer = peers_[fd];
  peer.identity = std::string(identity);
  peer.acked_base = counts.acked;
  peer.acked = counts.acked;
  peer.acked_at_sweep = counts.acked;
  by_identity_[peer.identity] = fd;
}

int ClientBacklog::OnSent(std::span<const zmq::message_t> frames) {
  if (by_identity_.empty() || frames.empty()) return -1;
  const auto found = by_identity_.find(frames[0].to_string_view());
  if (found == by_identity_.end()) return -1;
  const int fd = found->second;
  Peer& peer = peers_[fd];
  peer.sent += WireBytes(frames);
  if (Outstanding(peer) <= max_bytes_) return -1;
  TcpCounts counts;
  if (ReadTcpCounts(fd, counts)) peer.acked = counts.acked;
  if (Outstanding(peer) <= max_bytes_) return -1;
  OnClosed(fd);
  return fd;
}

void ClientBacklog::OnClosed(int fd) {
  const auto it = peers_.find(fd);
  if (it == peers_.end()) return;
  by_identity_.erase(it->second.identity);
  peers_.erase(it);
}

void ClientBacklog::Sweep(std::chrono::steady_clock::time_point now) {
  if (now < next_sweep_) return;
  next_sweep_ = now + std::chrono::seconds(1);
  for (auto& [fd, peer] : peers_) {
    TcpCounts counts;
    if (!ReadTcpCounts(fd, counts)) continue;
    peer.acked = counts.acked;
    // Nothing handed over for a second, nothing acknowledged, nothing in the kernel: the
    // pipe is empty too (libzmq's engine writes whenever the kernel has room).
    if (peer.sent == peer.sent_at_sweep && counts.acked == peer.acked_at_sweep && counts.in_kernel == 0) {
      peer.sent = 0;
      peer.acked_base = counts.acked;
    }
    peer.sent_at_sweep = peer.sent;
    peer.acked_at_sweep = counts.acked;
  }
}

std::size_t ClientBacklog::Waiting(int fd) const {
  const auto it = peers_.find(fd);
  return it == peers_.end() ? 0 : Outstanding(it->second);
}

std::uint64_t ClientBacklog::WireBytes(std::span<const zmq::message_t> frames) const {
  std::uint64_t bytes = 0;
  for (std::size_t i = 1; i < frames.size(); ++i) {  // the routing id stays here
    const std::uint64_t body = frames[i].size();
    bytes += curve_ ? FrameOnWire(body + kCurveMessageOverhead) : FrameOnWire(body);
  }
  return bytes;
}

}  // namespace courier::broker
