// Attacks on one courier-broker, written from the attacker's side with raw DEALER peers
// (issue 15): each test proves the attack fails and that honest traffic through the same
// broker is still served.
#include <gtest/gtest.h>

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

}  // namespace
}  // namespace courier::test
