#include "histogram.hpp"

#include <gtest/gtest.h>

namespace courier::detail {
namespace {

TEST(HistogramTest, BucketIndexMatchesTheProtocolExamples) {
  EXPECT_EQ(LatencyBucket(0), 0u);
  EXPECT_EQ(LatencyBucket(3), 3u);
  EXPECT_EQ(LatencyBucket(4), 4u);
  EXPECT_EQ(LatencyBucket(8), 8u);
  EXPECT_EQ(LatencyBucket(10), 9u);
  EXPECT_EQ(LatencyBucket(1000), 35u);
  EXPECT_EQ(LatencyBucket(1500), 37u);
  EXPECT_EQ(LatencyBucket(UINT64_MAX), 251u);
}

TEST(HistogramTest, BoundsContainEveryValueOfTheirBucket) {
  EXPECT_EQ(LatencyBucketLower(35), 896u);
  EXPECT_EQ(LatencyBucketUpper(35), 1024u);
  EXPECT_EQ(LatencyBucketLower(37), 1280u);
  EXPECT_EQ(LatencyBucketUpper(37), 1536u);
  for (std::uint64_t v : {0ull, 1ull, 5ull, 7ull, 999ull, 123456789ull, 1ull << 40, (1ull << 63) + 12345}) {
    const std::size_t i = LatencyBucket(v);
    EXPECT_LE(LatencyBucketLower(i), v) << v;
    EXPECT_LT(v, LatencyBucketUpper(i)) << v;
  }
  for (std::size_t i = 0; i + 1 < kLatencyBuckets; ++i) {
    EXPECT_EQ(LatencyBucketUpper(i), LatencyBucketLower(i + 1)) << i;
    EXPECT_EQ(LatencyBucket(LatencyBucketLower(i)), i) << i;
  }
}

TEST(HistogramTest, MergeKeepsIndexesAscendingAndAddsCounts) {
  SparseBuckets a{{3, 1}, {10, 2}, {40, 5}};
  MergeBuckets(a, {{2, 1}, {10, 3}, {50, 1}});
  EXPECT_EQ(a, (SparseBuckets{{2, 1}, {3, 1}, {10, 5}, {40, 5}, {50, 1}}));
}

TEST(HistogramTest, QuantilesOfAConstantAreExactThanksToClamping) {
  const std::uint64_t v = 20'000'000;  // 20 ms
  const SparseBuckets buckets{{static_cast<std::uint32_t>(LatencyBucket(v)), 100}};
  EXPECT_DOUBLE_EQ(*EstimateQuantile(buckets, 0.5, v, v), static_cast<double>(v));
  EXPECT_DOUBLE_EQ(*EstimateQuantile(buckets, 0.99, v, v), static_cast<double>(v));
  EXPECT_FALSE(EstimateQuantile({}, 0.5, 0, 0).has_value());
}

TEST(HistogramTest, QuantilesLandInTheRightBucket) {
  // 90 values of ~1 ms, 10 of ~100 ms.
  SparseBuckets buckets{{static_cast<std::uint32_t>(LatencyBucket(1'000'000)), 90},
                        {static_cast<std::uint32_t>(LatencyBucket(100'000'000)), 10}};
  const double p50 = *EstimateQuantile(buckets, 0.5, 900'000, 110'000'000);
  const double p90 = *EstimateQuantile(buckets, 0.9, 900'000, 110'000'000);
  const double p99 = *EstimateQuantile(buckets, 0.99, 900'000, 110'000'000);
  EXPECT_NEAR(p50, 1'000'000, 200'000);
  EXPECT_NEAR(p90, 1'000'000, 200'000);
  EXPECT_NEAR(p99, 100'000'000, 20'000'000);
}

TEST(LatencyBucketTest, SmallValuesAreTheirOwnBucket) {
  for (std::uint64_t v = 0; v < 4; ++v) EXPECT_EQ(LatencyBucket(v), v);
}

TEST(LatencyBucketTest, FourBucketsPerPowerOfTwo) {
  EXPECT_EQ(LatencyBucket(4), 4u);
  EXPECT_EQ(LatencyBucket(5), 5u);
  EXPECT_EQ(LatencyBucket(7), 7u);
  EXPECT_EQ(LatencyBucket(8), 8u);
  EXPECT_EQ(LatencyBucket(9), 8u);
  EXPECT_EQ(LatencyBucket(10), 9u);
  EXPECT_EQ(LatencyBucket(15), 11u);
  EXPECT_EQ(LatencyBucket(16), 12u);
  EXPECT_EQ(LatencyBucket(1000), 4u * (9 - 1) + ((1000 >> 7) & 3));
  EXPECT_EQ(LatencyBucket(UINT64_MAX), kLatencyBuckets - 1);
}

TEST(LatencyBucketTest, LowerBoundsInvertTheIndex) {
  for (std::size_t i = 0; i < kLatencyBuckets; ++i) {
    EXPECT_EQ(LatencyBucket(LatencyBucketLower(i)), i) << i;
    if (i + 1 < kLatencyBuckets) {
      EXPECT_EQ(LatencyBucket(LatencyBucketLower(i + 1) - 1), i) << i;
    }
  }
}

}  // namespace
}  // namespace courier::detail
