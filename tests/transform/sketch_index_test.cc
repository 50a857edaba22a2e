// SketchIndex must give exactly the index of its logarithm-based definition: the sketch state,
// and everything merged with it, depends on every single index.
#include "transform/sketch_index.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

namespace kiln::transform {
namespace {

const double kAlphas[] = {1e-4, 1e-3, 0.005, 0.05, 0.5};

SketchIndex index_for(double alpha) {
  const double gamma = (1 + alpha) / (1 - alpha);
  return SketchIndex(1 / deterministic_log(gamma));
}

TEST(SketchIndex, EqualsTheDefinitionOnRandomValues) {
  std::mt19937_64 rng(5);
  std::uniform_real_distribution<double> exponent(-1070, 1023), uniform(0, 1000);
  std::uniform_int_distribution<uint64_t> bits(1, std::bit_cast<uint64_t>(std::numeric_limits<double>::max()));
  for (double alpha : kAlphas) {
    const SketchIndex index = index_for(alpha);
    for (int i = 0; i < 300000; ++i) {
      const double values[] = {std::exp2(exponent(rng)), uniform(rng), std::round(uniform(rng) * 1000) / 1000,
                               std::round(uniform(rng)), std::bit_cast<double>(bits(rng))};
      for (double x : values) {
        if (x <= 0) continue;
        ASSERT_EQ(index(x), index.exact(x)) << "alpha " << alpha << " x " << x;
      }
    }
  }
}

// Values on and next to the bucket boundaries gamma^i, where only the exact path can decide.
TEST(SketchIndex, EqualsTheDefinitionAtBucketBoundaries) {
  for (double alpha : kAlphas) {
    const SketchIndex index = index_for(alpha);
    const double log_gamma = deterministic_log((1 + alpha) / (1 - alpha));
    for (int i = -7000; i <= 7000; i += (alpha < 1e-3 ? 7 : 1)) {
      const double boundary = std::exp(i * log_gamma);
      if (!(boundary > 0 && std::isfinite(boundary))) continue;
      double x = boundary;
      for (int k = 0; k < 40; ++k) x = std::nextafter(x, 0.0);
      for (int k = 0; k < 80; ++k, x = std::nextafter(x, std::numeric_limits<double>::infinity()))
        ASSERT_EQ(index(x), index.exact(x)) << "alpha " << alpha << " x " << x;
    }
  }
}

TEST(SketchIndex, EqualsTheDefinitionAtEdges) {
  const double edges[] = {std::numeric_limits<double>::denorm_min(),
                          std::numeric_limits<double>::min(),
                          std::nextafter(std::numeric_limits<double>::min(), 0.0),
                          std::numeric_limits<double>::max(),
                          1.0,
                          std::nextafter(1.0, 0.0),
                          std::nextafter(1.0, 2.0),
                          2.0,
                          0.5,
                          1e-300,
                          1e300};
  for (double alpha : kAlphas) {
    const SketchIndex index = index_for(alpha);
    for (double x : edges) EXPECT_EQ(index(x), index.exact(x)) << "alpha " << alpha << " x " << x;
    for (int e = -1074; e <= 1023; ++e) {
      const double x = std::ldexp(1.0, e);
      EXPECT_EQ(index(x), index.exact(x)) << "alpha " << alpha << " 2^" << e;
    }
  }
}

#if defined(__AVX2__) && defined(__FMA__)
// four() must give exact()'s indices whenever it answers: for random values of both signs, values
// next to bucket boundaries, and at the edges, where it must decline (zeros, subnormals, inf, NaN).
TEST(SketchIndex, FourAtOnceEqualsTheDefinition) {
  std::mt19937_64 rng(11);
  std::uniform_real_distribution<double> exponent(-1070, 1023), uniform(-1000, 1000);
  std::uniform_int_distribution<uint64_t> bits(0, ~uint64_t{0});
  for (double alpha : kAlphas) {
    const SketchIndex index = index_for(alpha);
    const double log_gamma = deterministic_log((1 + alpha) / (1 - alpha));
    std::vector<double> values;
    for (int i = 0; i < 100000; ++i) {
      values.push_back(std::exp2(exponent(rng)));
      values.push_back(uniform(rng));
      values.push_back(std::round(uniform(rng) * 1000) / 1000);
      values.push_back(std::bit_cast<double>(bits(rng)));
    }
    for (int i = -3000; i <= 3000; i += 3) {
      double x = std::exp(i * log_gamma);
      for (int k = 0; k < 6; ++k) x = std::nextafter(x, 0.0);
      for (int k = 0; k < 12; ++k, x = std::nextafter(x, 2 * x)) values.push_back(x);
    }
    for (double x : {0.0, -0.0, std::numeric_limits<double>::denorm_min(), std::numeric_limits<double>::min(),
                     std::numeric_limits<double>::max(), std::numeric_limits<double>::infinity(),
                     std::numeric_limits<double>::quiet_NaN()})
      for (int k = 0; k < 4; ++k) values.insert(values.begin() + static_cast<long>(rng() % values.size()), x);
    int64_t answered = 0;
    for (size_t i = 0; i + 4 <= values.size(); i += 4) {
      int32_t out[4];
      const bool normal = std::all_of(values.begin() + static_cast<long>(i), values.begin() + static_cast<long>(i + 4),
                                      [](double x) { return std::isnormal(x); });
      if (!index.four(values.data() + i, out)) continue;
      ASSERT_TRUE(normal) << values[i] << " " << values[i + 1] << " " << values[i + 2] << " " << values[i + 3];
      ++answered;
      for (size_t k = 0; k < 4; ++k)
        ASSERT_EQ(out[k], index.exact(std::fabs(values[i + k]))) << "alpha " << alpha << " x " << values[i + k];
    }
    EXPECT_GT(answered, static_cast<int64_t>(values.size() / 4 * 8 / 10));
  }
}
#endif

}  // namespace
}  // namespace kiln::transform
