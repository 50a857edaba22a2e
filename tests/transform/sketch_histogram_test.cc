#include "transform/sketch_histogram.h"

#include <gtest/gtest.h>

#include <numeric>
#include <random>
#include <vector>

#include "core/error.h"

namespace kiln::transform {
namespace {

QuantileSketch sketch_of(const std::vector<double>& values) {
  QuantileSketch sketch;
  for (double x : values) sketch.add(x);
  return sketch;
}

double total(const std::vector<double>& counts) { return std::accumulate(counts.begin(), counts.end(), 0.0); }

TEST(SketchBounds, HoldTheBucketsValues) {
  const QuantileSketch sketch = sketch_of({-3.5, 0, 0.001, 7, 12345});
  for (const QuantileSketch::Bucket& b : sketch.buckets()) {
    const auto [low, high] = sketch.bounds(b);
    EXPECT_LE(low, high);
    if (b.sign == 0) {
      EXPECT_EQ(low, 0.0);
    }
    // The representative lies inside, within rounding.
    const double rep = b.sign * sketch.representative(b.index);
    EXPECT_GE(rep, low * (b.sign > 0 ? 1 - 1e-12 : 1 + 1e-12));
    EXPECT_LE(rep, high * (b.sign > 0 ? 1 + 1e-12 : 1 - 1e-12));
  }
}

TEST(SketchHistogram, SmallIntegersLandInTheirBins) {
  // 1..10 with counts 1..10 over [0.5, 10.5] in 10 bins: bin k holds value k + 1 (a sketch bucket
  // is 1% wide, far inside a bin).
  std::vector<double> values;
  for (int v = 1; v <= 10; ++v)
    for (int k = 0; k < v; ++k) values.push_back(v);
  const std::vector<double> h = sketch_histogram(sketch_of(values), 0.5, 10.5, 10);
  for (int v = 1; v <= 10; ++v) EXPECT_NEAR(h[static_cast<size_t>(v - 1)], v, 1e-9) << v;
}

TEST(SketchHistogram, KeepsEveryValueAcrossSignsAndZero) {
  std::mt19937_64 rng(7);
  std::normal_distribution<double> normal(0, 10);
  std::vector<double> values;
  for (int i = 0; i < 20000; ++i) values.push_back(i % 40 == 0 ? 0.0 : normal(rng));
  const QuantileSketch sketch = sketch_of(values);
  const auto [lo, hi] = std::minmax_element(values.begin(), values.end());
  for (int bins : {1, 7, 30, 200}) {
    const std::vector<double> h = sketch_histogram(sketch, *lo, *hi, bins);
    ASSERT_EQ(h.size(), static_cast<size_t>(bins));
    EXPECT_NEAR(total(h), 20000, 1e-6) << bins;
    for (double c : h) EXPECT_GE(c, 0);
  }
  // Roughly symmetric around 0: the two halves of an even histogram over [-M, M] agree within 5%.
  const double m = std::max(-*lo, *hi);
  const std::vector<double> h = sketch_histogram(sketch, -m, m, 2);
  EXPECT_NEAR(h[0] / h[1], 1.0, 0.05);
}

TEST(SketchHistogram, ConstantColumnAndErrors) {
  const QuantileSketch sketch = sketch_of({2013, 2013, 2013});
  EXPECT_EQ(sketch_histogram(sketch, 2013, 2013, 5), (std::vector<double>{3, 0, 0, 0, 0}));
  EXPECT_EQ(total(sketch_histogram(QuantileSketch(), 0, 1, 4)), 0.0);
  EXPECT_THROW(sketch_histogram(sketch, 1, 0, 4), Error);
  EXPECT_THROW(sketch_histogram(sketch, 0, 1, 0), Error);
  EXPECT_THROW(sketch_histogram(sketch, 0, INFINITY, 4), Error);
}

}  // namespace
}  // namespace kiln::transform
