#include "courier/error.hpp"

#include <gtest/gtest.h>

namespace courier {
namespace {

TEST(ErrorCodeTest, NamesRoundTripForEveryCode) {
  for (std::uint32_t number = 1; number <= 19; ++number) {
    const auto code = ParseErrorCode(std::to_string(number));
    ASSERT_TRUE(code.has_value()) << number;
    EXPECT_TRUE(IsWireCode(number));
    EXPECT_EQ(ParseErrorCode(ToString(*code)), code);
    EXPECT_NE(ToString(*code), "unknown");
  }
  EXPECT_EQ(ParseErrorCode("busy"), ErrorCode::kBusy);
  EXPECT_FALSE(ParseErrorCode("no-such-code").has_value());
  EXPECT_EQ(ParseErrorCode("19"), ErrorCode::kInvalidReply);
  EXPECT_FALSE(ParseErrorCode("20").has_value());
  EXPECT_FALSE(IsWireCode(0));
  EXPECT_FALSE(IsWireCode(static_cast<std::uint32_t>(ErrorCode::kConfig)));
}

TEST(ErrorCodeTest, OnlyTransientFailuresAreRetryable) {
  EXPECT_TRUE(IsRetryable(ErrorCode::kBusy));
  EXPECT_TRUE(IsRetryable(ErrorCode::kWorkerLost));
  EXPECT_TRUE(IsRetryable(ErrorCode::kUnavailable));
  EXPECT_FALSE(IsRetryable(ErrorCode::kHandlerError));
  EXPECT_FALSE(IsRetryable(ErrorCode::kInvalidPayload));
  EXPECT_FALSE(IsRetryable(ErrorCode::kAttemptsExhausted));
}

TEST(ErrorTest, CarriesCodeAndMessage) {
  const Error error(ErrorCode::kDeadlineExceeded, "too late");
  EXPECT_EQ(error.code(), ErrorCode::kDeadlineExceeded);
  EXPECT_STREQ(error.what(), "too late");
}

}  // namespace
}  // namespace courier
