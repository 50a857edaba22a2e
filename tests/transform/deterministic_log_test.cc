#include "transform/deterministic_log.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <limits>
#include <random>

namespace kiln::transform {
namespace {

TEST(DeterministicLog, WithinTwoE13OfLibm) {
  std::mt19937_64 rng(7);
  std::uniform_int_distribution<uint64_t> positive_bits(1, 0x7fefffffffffffff);  // every finite x > 0
  std::uniform_real_distribution<double> near_one(0.5, 2);
  double worst = 0;
  for (int i = 0; i < 2000000; ++i) {
    const double x = i % 2 ? std::bit_cast<double>(positive_bits(rng)) : near_one(rng);
    worst = std::max(worst, std::fabs(deterministic_log(x) - std::log(x)));
  }
  EXPECT_LT(worst, 2e-13);
  std::printf("worst |deterministic_log - std::log| = %.3g\n", worst);
}

TEST(DeterministicLog, EdgeValues) {
  EXPECT_EQ(deterministic_log(1.0), 0.0);
  for (double x : {std::numeric_limits<double>::denorm_min(), std::numeric_limits<double>::min(),
                   std::numeric_limits<double>::max(), 0x1.6a09e667f3bccp-1, 0x1.6a09e667f3bcdp-1, 2.0, 0.5,
                   1 + 0x1p-52, 1 - 0x1p-53, 3e-310, 1e300}) {
    EXPECT_NEAR(deterministic_log(x), std::log(x), 2e-13) << x;
  }
  EXPECT_NEAR(deterministic_log(2.0), 0x1.62e42fefa39efp-1, 1e-16);
  // Near 1 the absolute error scales with ln(x) itself.
  const double near = 1 + 1e-10;
  EXPECT_NEAR(deterministic_log(near), std::log(near), 1e-24);
}

}  // namespace
}  // namespace kiln::transform
