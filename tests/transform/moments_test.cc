#include "transform/moments.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "core/error.h"
#include "proto/analyzer_state.pb.h"
#include "tests/transform/partition.h"

namespace kiln::transform {
namespace {

uint64_t bits(double x) { return std::bit_cast<uint64_t>(x); }

Moments moments_of(const std::vector<double>& values) {
  Moments m;
  for (double x : values) m.add(x);
  return m;
}

std::string serialized(const Moments& m) {
  MomentsState state;
  m.to_proto(&state);
  return state.SerializeAsString();
}

// Two passes in long double: the textbook reference.
struct Reference {
  long double mean = 0, variance = 0;
};
Reference two_pass(const std::vector<double>& values) {
  Reference r;
  for (double x : values) r.mean += x;
  r.mean /= values.size();
  for (double x : values) r.variance += (x - r.mean) * (x - r.mean);
  r.variance /= values.size();
  return r;
}

std::vector<std::vector<double>> data_sets(std::mt19937_64& rng, size_t n) {
  std::normal_distribution<double> normal(0, 1);
  std::uniform_real_distribution<double> uniform(0, 1);
  std::lognormal_distribution<double> lognormal(0, 2);
  std::vector<double> standard, offset, hard, skewed, wide;
  for (size_t i = 0; i < n; ++i) {
    standard.push_back(normal(rng));
    offset.push_back(1e6 + normal(rng));      // variance / mean^2 = 1e-12
    hard.push_back(1e9 + uniform(rng));       // naive S2 - S1^2/n in double loses every digit
    skewed.push_back(lognormal(rng));
    wide.push_back(std::ldexp(normal(rng), static_cast<int>(i % 80) - 40));
  }
  return {standard, offset, hard, skewed, wide};
}

TEST(Moments, MatchesLongDoubleTwoPassReference) {
  std::mt19937_64 rng(3);
  for (const std::vector<double>& values : data_sets(rng, 20000)) {
    const Moments m = moments_of(values);
    const Reference r = two_pass(values);
    EXPECT_EQ(m.count(), static_cast<int64_t>(values.size()));
    EXPECT_NEAR(m.mean(), static_cast<double>(r.mean), 1e-15 * std::fabs(static_cast<double>(r.mean)));
    EXPECT_NEAR(m.variance(), static_cast<double>(r.variance), 1e-14 * static_cast<double>(r.variance));
    EXPECT_EQ(m.stddev(), std::sqrt(m.variance()));
    EXPECT_EQ(m.min(), *std::min_element(values.begin(), values.end()));
    EXPECT_EQ(m.max(), *std::max_element(values.begin(), values.end()));
  }
}

TEST(Moments, SmallCasesAreExact) {
  const Moments m = moments_of({2, 4, 4, 4, 5, 5, 7, 9});
  EXPECT_EQ(m.mean(), 5.0);
  EXPECT_EQ(m.variance(), 4.0);
  EXPECT_EQ(m.stddev(), 2.0);
  // A constant column: the mean is the value and the variance exactly 0, at any scale.
  for (double v : {0.1, -3e-300, 7e150, 1e9 + 0.5}) {
    const Moments constant = moments_of(std::vector<double>(1001, v));
    EXPECT_EQ(constant.mean(), v);
    EXPECT_EQ(bits(constant.variance()), bits(0.0)) << v;
  }
  const Moments one = moments_of({-2.5});
  EXPECT_EQ(one.mean(), -2.5);
  EXPECT_EQ(one.variance(), 0.0);
  const Moments empty;
  EXPECT_TRUE(std::isnan(empty.mean()));
  EXPECT_TRUE(std::isnan(empty.variance()));
  EXPECT_EQ(empty.min(), std::numeric_limits<double>::infinity());
}

TEST(Moments, NonFiniteValuesAreCountedApart) {
  const double inf = std::numeric_limits<double>::infinity();
  const Moments m = moments_of({1, std::numeric_limits<double>::quiet_NaN(), 3, inf, -inf});
  EXPECT_EQ(m.count(), 2);
  EXPECT_EQ(m.non_finite(), 3);
  EXPECT_EQ(m.mean(), 2.0);
  EXPECT_EQ(m.variance(), 1.0);
  EXPECT_EQ(m.max(), 3.0);
  // Squares that overflow make the variance infinite, the mean stays right.
  const Moments huge = moments_of({1e200, -1e200});
  EXPECT_EQ(huge.mean(), 0.0);
  EXPECT_EQ(huge.variance(), inf);
}

TEST(Moments, AddAllEqualsAddOneByOne) {
  std::mt19937_64 rng(13);
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<std::vector<double>> sets = data_sets(rng, 3000);
  sets.push_back({1, std::numeric_limits<double>::quiet_NaN(), -0.0, 3, inf, -inf, 0.0, 1e200, -2});
  sets.push_back({inf});
  sets.push_back({});
  for (const std::vector<double>& values : sets) {
    Moments batch;
    batch.add_all(values);
    const Moments one_by_one = moments_of(values);
    EXPECT_TRUE(batch == one_by_one);
    EXPECT_EQ(batch.non_finite(), one_by_one.non_finite());
    EXPECT_EQ(serialized(batch), serialized(one_by_one));
  }
}

TEST(Moments, SignedZerosDoNotDependOnOrder) {
  const Moments a = moments_of({-0.0, 0.0});
  const Moments b = moments_of({0.0, -0.0});
  EXPECT_EQ(bits(a.min()), bits(b.min()));
  EXPECT_EQ(bits(a.max()), bits(b.max()));
  EXPECT_TRUE(a == b);
}

TEST(Moments, AnyPartitionGivesTheSameBits) {
  std::mt19937_64 rng(11);
  for (const std::vector<double>& values : data_sets(rng, 5000)) {
    const Moments whole = moments_of(values);
    auto make = [] { return Moments(); };
    auto add = [](Moments& m, double x) { m.add(x); };
    std::vector<Moments> splits = {testing::accumulate_in_parts(values, 1, rng, make, add),
                                   testing::accumulate_in_parts(values, 7, rng, make, add),
                                   testing::accumulate_in_parts(values, 100, rng, make, add),
                                   testing::accumulate_each_apart(values, rng, make, add)};
    for (const Moments& m : splits) {
      EXPECT_TRUE(m == whole);
      EXPECT_EQ(bits(m.mean()), bits(whole.mean()));
      EXPECT_EQ(bits(m.variance()), bits(whole.variance()));
      EXPECT_EQ(bits(m.min()), bits(whole.min()));
      EXPECT_EQ(bits(m.max()), bits(whole.max()));
      EXPECT_EQ(serialized(m), serialized(whole));
    }
  }
}

TEST(Moments, ProtoRoundTripMergesIdentically) {
  std::mt19937_64 rng(13);
  for (const std::vector<double>& values : data_sets(rng, 1000)) {
    const auto middle = values.begin() + 400;
    Moments a = moments_of({values.begin(), middle});
    a.add(std::numeric_limits<double>::quiet_NaN());
    const Moments b = moments_of({middle, values.end()});
    MomentsState state;
    a.to_proto(&state);
    Moments restored = Moments::from_proto(state);
    EXPECT_TRUE(restored == a);
    restored.merge(b);
    a.merge(b);
    EXPECT_TRUE(restored == a);
    EXPECT_EQ(bits(restored.variance()), bits(a.variance()));
  }
  MomentsState empty;
  Moments().to_proto(&empty);
  EXPECT_FALSE(empty.has_min());
  EXPECT_TRUE(Moments::from_proto(empty) == Moments());
}

TEST(Moments, MalformedStatesAreErrors) {
  MomentsState state;
  moments_of({1, 2}).to_proto(&state);
  MomentsState no_min = state;
  no_min.clear_min();
  EXPECT_THROW(Moments::from_proto(no_min), Error);
  MomentsState negative = state;
  negative.set_count(-1);
  EXPECT_THROW(Moments::from_proto(negative), Error);
  MomentsState inverted = state;
  inverted.set_min(3);
  EXPECT_THROW(Moments::from_proto(inverted), Error);
}

}  // namespace
}  // namespace kiln::transform
