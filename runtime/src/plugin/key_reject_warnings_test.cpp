#include "key_reject_warnings.hpp"

#include <gtest/gtest.h>

namespace courier::detail {
namespace {

using namespace std::chrono_literals;
using Clock = KeyRejectWarnings::Clock;

TEST(KeyRejectWarningsTest, OneLinePerKeyIdPerIntervalWithTheHeldBackCount) {
  KeyRejectWarnings warnings(10s);
  const Clock::time_point start{};
  const auto first = warnings.Count("echo", 1234, ErrorCode::kUnknownKey, start);
  ASSERT_TRUE(first);
  EXPECT_EQ(first->service, "echo");
  EXPECT_EQ(first->key_id, 1234u);
  EXPECT_EQ(first->jobs, 1u);
  for (int i = 1; i <= 36; ++i) {
    EXPECT_FALSE(warnings.Count("echo", 1234, ErrorCode::kUnknownKey, start + i * 100ms)) << i;
  }
  EXPECT_TRUE(warnings.Due(start + 9s).empty());
  // Another key id, or another service, has its own interval.
  EXPECT_TRUE(warnings.Count("echo", 99, ErrorCode::kUnauthenticated, start + 1s));
  EXPECT_TRUE(warnings.Count("resize", 1234, ErrorCode::kUnknownKey, start + 1s));
  // The next job after the interval carries the 36 held back.
  const auto later = warnings.Count("echo", 1234, ErrorCode::kUnknownKey, start + 10s);
  ASSERT_TRUE(later);
  EXPECT_EQ(later->jobs, 37u);
  EXPECT_FALSE(warnings.Count("echo", 1234, ErrorCode::kUnauthenticated, start + 11s));
  EXPECT_FALSE(warnings.Count("echo", 1234, ErrorCode::kUnauthenticated, start + 12s));
}

TEST(KeyRejectWarningsTest, HeldBackJobsAreReportedWhenNoneFollow) {
  KeyRejectWarnings warnings(10s);
  const Clock::time_point start{};
  ASSERT_TRUE(warnings.Count("echo", 7, ErrorCode::kUnknownKey, start));
  EXPECT_FALSE(warnings.Count("echo", 7, ErrorCode::kUnauthenticated, start + 1s));
  EXPECT_FALSE(warnings.Count("echo", 7, ErrorCode::kUnauthenticated, start + 2s));
  EXPECT_TRUE(warnings.Due(start + 9s).empty());
  const auto due = warnings.Due(start + 10s);
  ASSERT_EQ(due.size(), 1u);
  EXPECT_EQ(due[0].key_id, 7u);
  EXPECT_EQ(due[0].jobs, 2u);
  EXPECT_EQ(due[0].code, ErrorCode::kUnauthenticated);
  EXPECT_TRUE(warnings.Due(start + 30s).empty());
  // Quiet for a whole interval: forgotten, so the next job is logged at once.
  EXPECT_TRUE(warnings.Count("echo", 7, ErrorCode::kUnknownKey, start + 31s));
}

TEST(KeyRejectWarningsTest, ManyKeyIdsAreBounded) {
  KeyRejectWarnings warnings(10s);
  const Clock::time_point start{};
  std::size_t logged = 0;
  for (std::uint32_t id = 1; id <= 10 * KeyRejectWarnings::kMaxTracked; ++id) {
    if (const auto line = warnings.Count("echo", id, ErrorCode::kUnknownKey, start)) {
      ++logged;
      if (id > KeyRejectWarnings::kMaxTracked) {
        EXPECT_EQ(line->key_id, 0u);
      }
    }
  }
  EXPECT_EQ(logged, KeyRejectWarnings::kMaxTracked + 1) << "one line per tracked id, one for all others";
  const auto due = warnings.Due(start + 10s);
  ASSERT_EQ(due.size(), 1u);
  EXPECT_EQ(due[0].key_id, 0u);
  EXPECT_EQ(due[0].jobs, 9 * KeyRejectWarnings::kMaxTracked - 1);
}

}  // namespace
}  // namespace courier::detail
