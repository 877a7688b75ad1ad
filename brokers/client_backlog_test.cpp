#include "client_backlog.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <vector>

namespace courier::broker {
namespace {

using namespace std::chrono_literals;

// A connected pair of TCP sockets on 127.0.0.1: `served` is the broker's end.
class TcpPair {
 public:
  TcpPair() {
    const int listener = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    EXPECT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
    EXPECT_EQ(::listen(listener, 1), 0);
    EXPECT_EQ(::getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length), 0);
    client = ::socket(AF_INET, SOCK_STREAM, 0);
    EXPECT_EQ(::connect(client, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
    served = ::accept(listener, nullptr, nullptr);
    ::close(listener);
  }
  ~TcpPair() {
    ::close(client);
    ::close(served);
  }
  TcpPair(const TcpPair&) = delete;
  TcpPair& operator=(const TcpPair&) = delete;

  int client = -1;
  int served = -1;
};

// An answer to `identity` whose body is `bytes` long: 4 frames as the broker sends them.
std::vector<zmq::message_t> Answer(const std::string& identity, std::size_t bytes) {
  std::vector<zmq::message_t> frames;
  frames.emplace_back(identity.data(), identity.size());
  frames.emplace_back();
  frames.emplace_back("CRC01", 5);
  frames.emplace_back(std::string(bytes, 'r').data(), bytes);
  return frames;
}

TEST(ClientBacklogTest, AClientThatTakesNothingIsReportedPastTheBoundOnce) {
  TcpPair pair;
  ClientBacklog backlog(1 << 20, false);
  backlog.OnReceived("C1", pair.served, true);
  ASSERT_EQ(backlog.tracked(), 1u);
  int reported = -1;
  int answers = 0;
  for (; answers < 100 && reported < 0; ++answers) {
    auto frames = Answer("C1", 64 * 1024);
    reported = backlog.OnSent(frames);
  }
  EXPECT_EQ(reported, pair.served);
  EXPECT_EQ(answers, 16) << "15 answers of 64 KiB and their framing fit in 1 MiB, the 16th does not";
  EXPECT_EQ(backlog.tracked(), 0u) << "reported once, then forgotten";
  auto more = Answer("C1", 64 * 1024);
  EXPECT_EQ(backlog.OnSent(more), -1);
}

TEST(ClientBacklogTest, BytesTheClientAcknowledgedNoLongerCount) {
  TcpPair pair;
  ClientBacklog backlog(1 << 20, false);
  backlog.OnReceived("C1", pair.served, true);
  // 4 MiB handed over, really sent as the wire would carry it, and read by the client.
  const std::size_t body = 256 * 1024;
  const std::size_t on_wire = 2 + (5 + 2) + (body + 9);
  const std::string bytes(on_wire, 'x');
  char sink[65536];
  for (int i = 0; i < 16; ++i) {
    auto frames = Answer("C1", body);
    EXPECT_EQ(backlog.OnSent(frames), -1) << "answer " << i;
    for (std::size_t written = 0; written < on_wire;) {
      const ssize_t n = ::send(pair.served, bytes.data() + written, on_wire - written, MSG_DONTWAIT);
      if (n > 0) written += static_cast<std::size_t>(n);
      while (::recv(pair.client, sink, sizeof sink, MSG_DONTWAIT) > 0) {
      }
    }
  }
  // Let the last acknowledgements arrive, reading what is left.
  for (int spin = 0; spin < 1000 && ::recv(pair.client, sink, sizeof sink, MSG_DONTWAIT) > 0; ++spin) {
  }
  EXPECT_LT(backlog.Waiting(pair.served), std::size_t{1} << 20);
}

TEST(ClientBacklogTest, AnIdleConnectionStartsCountingFromZeroAgain) {
  TcpPair pair;
  ClientBacklog backlog(1 << 20, false);
  backlog.OnReceived("C1", pair.served, true);
  auto frames = Answer("C1", 100 * 1024);
  EXPECT_EQ(backlog.OnSent(frames), -1);
  EXPECT_GT(backlog.Waiting(pair.served), 100u * 1024);
  const auto start = std::chrono::steady_clock::now();
  backlog.Sweep(start);
  EXPECT_GT(backlog.Waiting(pair.served), 100u * 1024) << "handed over since the last look: not idle";
  backlog.Sweep(start + 500ms);
  EXPECT_GT(backlog.Waiting(pair.served), 100u * 1024) << "at most one look a second";
  backlog.Sweep(start + 2s);
  EXPECT_EQ(backlog.Waiting(pair.served), 0u);
}

TEST(ClientBacklogTest, WorkersAndNonTcpPeersAreNotTracked) {
  TcpPair pair;
  ClientBacklog backlog(1 << 20, false);
  backlog.OnReceived("W1", pair.served, false);
  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);
  backlog.OnReceived("C2", pipe_fds[0], true);
  EXPECT_EQ(backlog.tracked(), 0u);
  ::close(pipe_fds[0]);
  ::close(pipe_fds[1]);
  ClientBacklog unbounded(0, false);
  unbounded.OnReceived("C1", pair.served, true);
  EXPECT_EQ(unbounded.tracked(), 0u);
}

TEST(ClientBacklogTest, AClosedDescriptorIsForgottenAndItsReuseStartsAfresh) {
  TcpPair pair;
  ClientBacklog backlog(1 << 20, false);
  backlog.OnReceived("C1", pair.served, true);
  auto frames = Answer("C1", 512 * 1024);
  EXPECT_EQ(backlog.OnSent(frames), -1);
  backlog.OnReceived("C9", pair.served, true);  // the same descriptor, another connection
  EXPECT_EQ(backlog.Waiting(pair.served), 0u);
  auto old = Answer("C1", 1024);
  EXPECT_EQ(backlog.OnSent(old), -1);
  backlog.OnClosed(pair.served);
  EXPECT_EQ(backlog.tracked(), 0u);
}

}  // namespace
}  // namespace courier::broker
