#include "transform/quantile_sketch.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <span>
#include <vector>

#include "core/error.h"
#include "proto/transform_state.pb.h"
#include "tests/transform/partition.h"

namespace kiln::transform {
namespace {

QuantileSketch sketch_of(const std::vector<double>& values, double alpha = QuantileSketch::kDefaultAlpha) {
  QuantileSketch sketch(alpha);
  for (double x : values) sketch.add(x);
  return sketch;
}

std::string serialized(const QuantileSketch& sketch) {
  QuantileSketchState state;
  sketch.to_proto(&state);
  return state.SerializeAsString();
}

std::vector<std::vector<double>> data_sets(std::mt19937_64& rng, size_t n) {
  std::uniform_real_distribution<double> uniform(0, 1000);
  std::lognormal_distribution<double> lognormal(0, 3);
  std::normal_distribution<double> normal(0, 10);
  std::vector<double> flat, skewed, signed_values;
  for (size_t i = 0; i < n; ++i) {
    flat.push_back(uniform(rng));
    skewed.push_back(lognormal(rng));
    signed_values.push_back(i % 50 == 0 ? 0.0 : normal(rng));  // negatives, positives and zeros
  }
  return {flat, skewed, signed_values};
}

// The sketch answers for the sorted value at rank floor(q (n - 1)) within relative error alpha.
void expect_rank_accuracy(const std::vector<double>& values, double alpha) {
  const QuantileSketch sketch = sketch_of(values, alpha);
  std::vector<double> sorted = values;
  std::sort(sorted.begin(), sorted.end());
  const auto n = static_cast<int64_t>(sorted.size());
  for (int k = 0; k <= 200; ++k) {
    const double q = k / 200.0;
    const auto rank = static_cast<int64_t>(std::floor(static_cast<long double>(q) * (n - 1)));
    const double truth = sorted[static_cast<size_t>(rank)];
    const double answer = sketch.quantile(q);
    EXPECT_LE(std::fabs(answer - truth), alpha * (1 + 1e-9) * std::fabs(truth)) << "q " << q << " truth " << truth;
    EXPECT_EQ(std::signbit(answer), std::signbit(truth)) << q;
  }
}

TEST(QuantileSketch, RankErrorWithinAlpha) {
  std::mt19937_64 rng(21);
  for (const std::vector<double>& values : data_sets(rng, 20000)) {
    expect_rank_accuracy(values, QuantileSketch::kDefaultAlpha);
    expect_rank_accuracy(values, 0.05);
  }
}

TEST(QuantileSketch, BucketConvention) {
  const QuantileSketch sketch;
  const double alpha = sketch.alpha(), gamma = (1 + alpha) / (1 - alpha);
  EXPECT_EQ(sketch.index(1.0), 0);  // (gamma^-1, 1]
  EXPECT_EQ(sketch.index(1.001), 1);
  EXPECT_EQ(sketch.index(0.999), 0);
  EXPECT_EQ(sketch.index(gamma * gamma * 1.0001), 3);
  EXPECT_NEAR(sketch.representative(0), 2 / (gamma + 1), 1e-15);
  EXPECT_NEAR((1 - sketch.representative(0)) / 1, alpha, 1e-12);  // both bucket ends at alpha
  EXPECT_NEAR((sketch.representative(0) - 1 / gamma) * gamma, alpha, 1e-12);
  EXPECT_LE(sketch.representative(sketch.index(std::numeric_limits<double>::max())),
            std::numeric_limits<double>::max());
}

TEST(QuantileSketch, SmallCases) {
  const QuantileSketch sketch = sketch_of({-5, 0, 0, 1, 100});
  EXPECT_EQ(sketch.count(), 5);
  EXPECT_EQ(sketch.zero_count(), 2);
  EXPECT_NEAR(sketch.quantile(0), -5, 5 * sketch.alpha());
  EXPECT_EQ(sketch.quantile(0.25), 0.0);
  EXPECT_EQ(sketch.quantile(0.5), 0.0);
  EXPECT_NEAR(sketch.quantile(0.75), 1, sketch.alpha());
  EXPECT_NEAR(sketch.quantile(1), 100, 100 * sketch.alpha());
  const std::vector<QuantileSketch::Bucket> buckets = sketch.buckets();
  ASSERT_EQ(buckets.size(), 4u);
  EXPECT_EQ(buckets[0].sign, -1);
  EXPECT_EQ(buckets[1].sign, 0);
  EXPECT_EQ(buckets[1].count, 2);
  EXPECT_EQ(buckets[3].index, sketch.index(100));
  EXPECT_TRUE(std::isnan(QuantileSketch().quantile(0.5)));
  EXPECT_THROW(sketch.quantile(1.5), Error);
  EXPECT_THROW(sketch.quantile(std::nan("")), Error);
  EXPECT_THROW(QuantileSketch(0), Error);
  EXPECT_THROW(QuantileSketch(1), Error);
  QuantileSketch bad;
  EXPECT_THROW(bad.add(std::numeric_limits<double>::infinity()), InternalError);
  EXPECT_THROW(bad.add(std::nan("")), InternalError);
  EXPECT_EQ(bad.count(), 0);
}

TEST(QuantileSketch, AnyPartitionGivesTheSameSketch) {
  std::mt19937_64 rng(8);
  for (const std::vector<double>& values : data_sets(rng, 5000)) {
    const QuantileSketch whole = sketch_of(values);
    auto make = [] { return QuantileSketch(); };
    auto add = [](QuantileSketch& s, double x) { s.add(x); };
    for (const QuantileSketch& merged :
         {testing::accumulate_in_parts(values, 7, rng, make, add), testing::accumulate_in_parts(values, 64, rng, make, add),
          testing::accumulate_each_apart(values, rng, make, add)}) {
      EXPECT_TRUE(merged == whole);
      EXPECT_EQ(serialized(merged), serialized(whole));
      for (int k = 0; k <= 100; ++k) EXPECT_EQ(merged.quantile(k / 100.0), whole.quantile(k / 100.0)) << k;
    }
  }
  QuantileSketch coarse(0.01);
  EXPECT_THROW(coarse.merge(QuantileSketch()), Error);
}

TEST(QuantileSketch, AddAllEqualsAdd) {
  std::mt19937_64 rng(8);
  for (const std::vector<double>& values : data_sets(rng, 5000)) {
    QuantileSketch batch;
    batch.add_all(std::span(values).first(300));
    batch.add_all(std::span(values).subspan(300));
    EXPECT_TRUE(batch == sketch_of(values));
    EXPECT_EQ(serialized(batch), serialized(sketch_of(values)));
  }
}

TEST(QuantileSketch, ProtoRoundTripMergesIdentically) {
  std::mt19937_64 rng(6);
  for (const std::vector<double>& values : data_sets(rng, 3000)) {
    const auto middle = values.begin() + 1000;
    QuantileSketch a = sketch_of({values.begin(), middle});
    const QuantileSketch b = sketch_of({middle, values.end()});
    QuantileSketchState state;
    a.to_proto(&state);
    for (int i = 1; i < state.positive_index_size(); ++i) EXPECT_LT(state.positive_index(i - 1), state.positive_index(i));
    for (int i = 1; i < state.negative_index_size(); ++i) EXPECT_LT(state.negative_index(i - 1), state.negative_index(i));
    QuantileSketch restored = QuantileSketch::from_proto(state);
    EXPECT_TRUE(restored == a);
    restored.merge(b);
    a.merge(b);
    EXPECT_EQ(serialized(restored), serialized(a));
  }
}

TEST(QuantileSketch, MalformedStatesAreErrors) {
  QuantileSketchState good;
  sketch_of({1, 2, 3, -4, 0}).to_proto(&good);
  EXPECT_NO_THROW(QuantileSketch::from_proto(good));
  QuantileSketchState state = good;
  state.clear_alpha();
  EXPECT_THROW(QuantileSketch::from_proto(state), Error);
  state = good;
  state.add_positive_index(500);
  EXPECT_THROW(QuantileSketch::from_proto(state), Error);  // more indices than counts
  state = good;
  state.set_positive_index(1, state.positive_index(0));
  EXPECT_THROW(QuantileSketch::from_proto(state), Error);  // not increasing
  state = good;
  state.set_negative_count(0, 0);
  EXPECT_THROW(QuantileSketch::from_proto(state), Error);
  state = good;
  state.add_positive_index(2000000000);
  state.add_positive_count(1);
  EXPECT_THROW(QuantileSketch::from_proto(state), Error);  // beyond the double range
  state = good;
  state.set_zero_count(-1);
  EXPECT_THROW(QuantileSketch::from_proto(state), Error);
}

}  // namespace
}  // namespace kiln::transform
