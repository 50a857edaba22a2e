#include "transform/distances.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"

namespace kiln::transform {
namespace {

VocabularyCounter counter_of(const std::vector<std::pair<std::string, int64_t>>& counts) {
  VocabularyCounter counter;
  for (const auto& [value, n] : counts) counter.add(value, n);
  return counter;
}

QuantileSketch sketch_of(const std::vector<double>& values) {
  QuantileSketch sketch;
  for (double x : values) sketch.add(x);
  return sketch;
}

TEST(LInfinityDistance, HandComputedCases) {
  const VocabularyCounter a = counter_of({{"x", 1}, {"y", 1}});
  EXPECT_EQ(l_infinity_distance(a, a), 0.0);
  EXPECT_EQ(l_infinity_distance(a, counter_of({{"y", 10}, {"x", 10}})), 0.0);  // same frequencies
  EXPECT_EQ(l_infinity_distance(a, counter_of({{"x", 1}, {"y", 3}})), 0.25);
  EXPECT_EQ(l_infinity_distance(counter_of({{"x", 2}}), counter_of({{"x", 1}, {"z", 1}})), 0.5);
  EXPECT_EQ(l_infinity_distance(counter_of({{"x", 3}, {"y", 1}}), counter_of({{"z", 1}})), 1.0);
  EXPECT_EQ(l_infinity_distance(a, counter_of({{"p", 1}, {"q", 1}})), 0.5);  // disjoint, spread out
  // Only b's extra value differs.
  EXPECT_EQ(l_infinity_distance(counter_of({{"x", 3}, {"y", 1}}), counter_of({{"x", 6}, {"y", 2}, {"w", 8}})), 0.5);
  EXPECT_EQ(l_infinity_distance(VocabularyCounter(), VocabularyCounter()), 0.0);
  EXPECT_EQ(l_infinity_distance(a, VocabularyCounter()), 1.0);
  // Symmetric.
  const VocabularyCounter b = counter_of({{"x", 5}, {"w", 2}});
  EXPECT_EQ(l_infinity_distance(a, b), l_infinity_distance(b, a));
}

TEST(JensenShannonDivergence, HandComputedCases) {
  const QuantileSketch a = sketch_of({1.0, 10.0});
  EXPECT_EQ(jensen_shannon_divergence(a, a), 0.0);
  EXPECT_EQ(jensen_shannon_divergence(a, sketch_of({10.0, 1.0, 1.0, 10.0})), 0.0);
  // P = (1/2, 1/2), Q = (1, 0), M = (3/4, 1/4):
  // JS = 1/2 (1/2 log2(2/3) + 1/2 log2(2)) + 1/2 log2(4/3) = 0.311278...
  const double expected = 0.5 * (0.5 * std::log2(2.0 / 3) + 0.5) + 0.5 * std::log2(4.0 / 3);
  EXPECT_NEAR(jensen_shannon_divergence(a, sketch_of({1.0, 1.0}), 0), expected, 1e-15);
  EXPECT_NEAR(jensen_shannon_divergence(sketch_of({1.0, 1.0}), a, 0), expected, 1e-15);
  // Disjoint supports: 1, with or without coarsening, across signs and zero.
  EXPECT_EQ(jensen_shannon_divergence(sketch_of({1, 2, 3}), sketch_of({100, 200})), 1.0);
  EXPECT_EQ(jensen_shannon_divergence(sketch_of({1, 2, 3}), sketch_of({100, 200}), 0), 1.0);
  EXPECT_EQ(jensen_shannon_divergence(sketch_of({-1}), sketch_of({1})), 1.0);
  EXPECT_EQ(jensen_shannon_divergence(sketch_of({0}), sketch_of({-1, 1})), 1.0);
  EXPECT_EQ(jensen_shannon_divergence(sketch_of({-1, 0, 1}), sketch_of({1, 0, -1})), 0.0);
  EXPECT_EQ(jensen_shannon_divergence(QuantileSketch(), QuantileSketch()), 0.0);
  EXPECT_EQ(jensen_shannon_divergence(a, QuantileSketch()), 1.0);
  EXPECT_THROW(jensen_shannon_divergence(a, QuantileSketch(0.01)), Error);
  EXPECT_THROW(jensen_shannon_divergence(a, a, -1), Error);
}

TEST(JensenShannonDivergence, CoarseningMeasuresDriftNotSamplingNoise) {
  std::mt19937_64 rng(1);
  std::lognormal_distribution<double> training(0, 2), same(0, 2), shifted(0.5, 2);
  std::vector<double> train, serve_same, serve_shifted;
  for (int i = 0; i < 10000; ++i) {
    train.push_back(training(rng));
    serve_same.push_back(same(rng));
    serve_shifted.push_back(shifted(rng));
  }
  const QuantileSketch t = sketch_of(train), s = sketch_of(serve_same), d = sketch_of(serve_shifted);
  const double fine_same = jensen_shannon_divergence(t, s, 0);
  const double coarse_same = jensen_shannon_divergence(t, s);
  const double coarse_shifted = jensen_shannon_divergence(t, d);
  EXPECT_LT(coarse_same, fine_same);          // merging bins never raises the divergence
  EXPECT_LT(coarse_same, 0.01);               // same distribution: near 0
  EXPECT_GT(coarse_shifted, 3 * coarse_same);  // real drift stands out
  EXPECT_LE(jensen_shannon_divergence(t, d), jensen_shannon_divergence(t, d, 0));
  std::printf("JS same distribution: fine %.4f coarse %.4f; shifted: fine %.4f coarse %.4f\n", fine_same,
              coarse_same, jensen_shannon_divergence(t, d, 0), coarse_shifted);
}

CategoricalStats stats_of(const std::vector<std::pair<std::string, int64_t>>& kept, int64_t oov) {
  CategoricalStats s;
  int64_t total = oov;
  for (const auto& [value, n] : kept) {
    s.add_vocabulary(value);
    s.add_frequencies(n);
    total += n;
  }
  s.set_oov_count(oov);
  s.set_count(total);
  s.set_distinct(static_cast<int64_t>(kept.size()) + (oov > 0 ? 1 : 0));
  return s;
}

TEST(CategoryShares, OnTheBaselinesVocabularyAndOov) {
  // Baseline kept x, y (z went to OOV); the other data kept everything.
  const CategoricalStats base = stats_of({{"x", 5}, {"y", 3}}, 2);
  const CategoricalStats other = stats_of({{"y", 4}, {"x", 2}, {"z", 1}, {"w", 1}}, 0);
  const CategoryShares s = category_shares(base, other);
  EXPECT_EQ(s.baseline, (std::vector<double>{0.5, 0.3, 0.2}));
  EXPECT_EQ(s.other, (std::vector<double>{0.25, 0.5, 0.25}));  // z and w outside base's vocabulary
  EXPECT_DOUBLE_EQ(l_infinity_distance(s), 0.25);
  EXPECT_EQ(l_infinity_distance(category_shares(base, base)), 0.0);
  // Sides without values: 0 when both, 1 when one.
  const CategoricalStats none = stats_of({}, 0);
  EXPECT_EQ(l_infinity_distance(category_shares(none, none)), 0.0);
  EXPECT_EQ(l_infinity_distance(category_shares(base, none)), 1.0);
  EXPECT_EQ(l_infinity_distance(category_shares(none, base)), 1.0);
}

TEST(CategoryShares, ATruncatedVocabularyOnBothSidesIsNotComparedWithZero) {
  // The same distribution cut by a frequency threshold on samples of different sizes: the rare
  // values are kept on the big side only. Over the baseline's buckets the distance stays that of
  // the shares, not the mass of the values the small side did not keep.
  const CategoricalStats big = stats_of({{"a", 500}, {"b", 300}, {"c", 150}, {"d", 50}}, 0);
  const CategoricalStats small = stats_of({{"a", 50}, {"b", 30}}, 20);
  EXPECT_DOUBLE_EQ(l_infinity_distance(category_shares(small, big)), 0.0);
}

}  // namespace
}  // namespace kiln::transform
