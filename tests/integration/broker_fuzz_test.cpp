// Throws thousands of random and half-valid multipart messages at a real broker, then
// checks it still serves a normal request and counted what it dropped.
#include <random>

#include "broker_fixture.hpp"

namespace courier::test {
namespace {

using namespace std::chrono_literals;

class BrokerFuzzTest : public BrokerFixture {
 protected:
  void SetUp() override { StartBroker("max_message_bytes = 65536\n"); }
};

std::string RandomBytes(std::mt19937& random, std::size_t max) {
  std::string bytes(random() % (max + 1), '\0');
  for (auto& byte : bytes) byte = static_cast<char>(random());
  return bytes;
}

TEST_F(BrokerFuzzTest, SurvivesRandomMultipartMessages) {
  std::mt19937 random(20261128);
  const std::vector<std::string> headers{"MDPC01", "MDPW01", "CRC01", "CRW01", "", "MDPC0", "XXXXXX"};
  std::vector<std::unique_ptr<RawPeer>> peers;
  for (int i = 0; i < 8; ++i) peers.push_back(Peer());
  const JobId real_id = JobId::Random();
  const std::string valid_envelope = Envelope("fuzzed", real_id);
  for (int i = 0; i < 5000; ++i) {
    Frames frames;
    const int shape = static_cast<int>(random() % 4);
    const std::size_t count = random() % 9;
    if (shape > 0) {
      frames.push_back(random() % 8 == 0 ? "x" : "");
      frames.push_back(headers[random() % headers.size()]);
      frames.push_back(std::string(1, static_cast<char>(random() % 12)));
    }
    for (std::size_t f = 0; f < count; ++f) {
      if (shape == 3 && f == 0) {
        std::string mutated = valid_envelope;  // a valid envelope with one byte changed
        mutated[random() % mutated.size()] = static_cast<char>(random());
        frames.push_back(mutated);
      } else {
        frames.push_back(RandomBytes(random, f == 0 ? 64 : 300));
      }
    }
    if (random() % 500 == 0) frames.push_back(std::string(70000, 'x'));  // oversized
    if (frames.empty()) frames.push_back("");
    peers[random() % peers.size()]->Send(frames);
  }
  // The broker still serves a normal request.
  auto worker = Peer();
  worker->Send({"", "MDPW01", "\x01", "after-fuzz"});
  ASSERT_TRUE(WaitForMmi("after-fuzz", "200", 20s)) << "broker stopped answering";
  auto client = Peer();
  client->Send({"", "MDPC01", "after-fuzz", "still alive?"});
  const auto request = worker->ReceiveWhere(2, "\x02", 10s);
  ASSERT_TRUE(request);
  worker->Send({"", "MDPW01", "\x03", (*request)[3], "", "yes"});
  const auto reply = client->Receive(10s);
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->back(), "yes");
  EXPECT_TRUE(broker_->Running());
  // What it dropped was counted.
  client->Send({"", "CRC01", "\x05", "s", detail::EncodeQuery("stats")});
  const auto stats = client->ReceiveWhere(2, "\x06", 5s);
  ASSERT_TRUE(stats);
  const Value counters = DecodeValue(stats->back()).AsArray().at(1);
  const auto dropped = counters.At("malformed").AsUint() + counters.At("unknown_command").AsUint() +
                       counters.At("protocol_errors").AsUint() + counters.At("oversized").AsUint();
  EXPECT_GT(dropped, 1000u);
  std::cout << "dropped and counted: " << dropped << "\n";
}

}  // namespace
}  // namespace courier::test
