#include "wire/stages.hpp"

#include <set>
#include <string>

#include <gtest/gtest.h>

namespace courier::wire {
namespace {

TEST(StageVocabularyTest, EveryDesignGroupHasStagesAndNamesRoundTrip) {
  std::set<StageGroup> seen;
  for (const StageInfo& info : kStages) seen.insert(info.group);
  EXPECT_EQ(seen.size(), kStageGroups);
  for (std::size_t i = 0; i < kStageGroups; ++i) {
    const auto group = static_cast<StageGroup>(i);
    EXPECT_EQ(ParseStageGroup(ToString(group)), group);
  }
  EXPECT_FALSE(ParseStageGroup("load balancing").has_value());
}

TEST(StageVocabularyTest, StagesAreUniquePerProcessAndGrouped) {
  std::set<std::pair<std::string, std::string>> names;
  for (const StageInfo& info : kStages) {
    EXPECT_TRUE(names.emplace(std::string(info.process), std::string(info.name)).second) << info.name;
  }
  EXPECT_EQ(GroupOf("worker", "reply_verify"), StageGroup::kResponse);
  EXPECT_EQ(GroupOf("worker", "error_capture"), StageGroup::kError);
  EXPECT_EQ(GroupOf("worker", "error_handle"), StageGroup::kError);
  EXPECT_EQ(GroupOf("client", "key"), StageGroup::kCrypto);
  EXPECT_EQ(GroupOf("broker", "lb_monitor"), StageGroup::kLoadBalancing);
  EXPECT_FALSE(GroupOf("broker", "parse").has_value());
}

TEST(StageVocabularyTest, OrdersFollowTheJobsPath) {
  EXPECT_LT(ProcessOrder("client"), ProcessOrder("broker"));
  EXPECT_LT(ProcessOrder("broker"), ProcessOrder("worker"));
  EXPECT_EQ(ProcessOrder("other"), 3);
  EXPECT_LT(StageOrder("worker", "key"), StageOrder("worker", "open"));
  EXPECT_LT(StageOrder("worker", "convert"), StageOrder("worker", "reply_verify"));
  EXPECT_LT(StageOrder("worker", "reply_verify"), StageOrder("worker", "seal"));
  EXPECT_LT(StageOrder("broker", "queue_wait"), StageOrder("broker", "dispatch"));
  EXPECT_LT(StageOrder("worker", "error_send"), StageOrder("worker", "unknown_stage"));
}

}  // namespace
}  // namespace courier::wire
