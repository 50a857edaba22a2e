// LogEI: equal to log of the direct formula where that is accurate, finite and increasing where
// EI itself underflows, with the right derivative on every branch.
#include "tuning/log_ei.h"

#include <gtest/gtest.h>

#include <cmath>

namespace kiln::tuning {
namespace {

double direct_h(double z) { return normal_pdf(z) + z * normal_cdf(z); }

TEST(LogEi, MatchesDirectExpectedImprovementWhereItIsLarge) {
  for (double z = -3; z <= 6; z += 0.01) {
    double direct = direct_h(z);
    ASSERT_GT(direct, 1e-4);
    EXPECT_NEAR(std::exp(log_h(z)), direct, 1e-11 * direct) << "z=" << z;
  }
}

TEST(LogEi, MatchesDirectFormulaInLongDoubleAcrossTheSeriesBranch) {
  // For -30 < z < -3 the double formula cancels; long double with erfc carries enough digits to
  // check the Mills-ratio and asymptotic-series branches to ~1e-8.
  for (double z = -30; z <= -3; z += 0.37) {
    long double zl = z;
    long double pdf = std::exp(-0.5L * zl * zl) / std::sqrt(2 * 3.14159265358979323846L);
    long double cdf = 0.5L * std::erfc(-zl / std::sqrt(2.0L));
    long double h = pdf + zl * cdf;
    if (!(h > 0)) continue;  // long double ran out of digits too
    EXPECT_NEAR(log_h(z), static_cast<double>(std::log(h)), 1e-6) << "z=" << z;
  }
}

TEST(LogEi, FiniteAndIncreasingWhereExpectedImprovementUnderflows) {
  EXPECT_EQ(direct_h(-40), 0.0);  // the plain formula has nothing left to give an optimizer
  double previous = -INFINITY;
  for (double z = -1e4; z <= 0; z += (z < -100 ? 7.3 : 0.013)) {
    double v = log_h(z);
    ASSERT_TRUE(std::isfinite(v)) << "z=" << z;
    ASSERT_GT(v, previous) << "z=" << z;
    previous = v;
    double d = log_h_derivative(z);
    ASSERT_TRUE(std::isfinite(d) && d > 0) << "z=" << z;
  }
  // Asymptotically log h(z) ~ -z^2/2 - log(z^2) - log sqrt(2 pi).
  double z = -1e3;
  EXPECT_NEAR(log_h(z), -0.5 * z * z - std::log(z * z) - 0.5 * std::log(2 * M_PI), 1e-5);
}

TEST(LogEi, ContinuousAtTheBranchPoints) {
  for (double at : {-1.0, -12.0}) {
    double below = log_h(std::nextafter(at, -INFINITY)), above = log_h(std::nextafter(at, INFINITY));
    EXPECT_NEAR(below, above, 1e-10 * std::fabs(above)) << at;
  }
}

TEST(LogEi, DerivativeMatchesFiniteDifferences) {
  for (double z : {-500.0, -40.0, -12.5, -11.5, -5.0, -1.5, -0.5, 0.0, 0.7, 3.0}) {
    double h = 1e-6 * std::max(1.0, std::fabs(z));
    double fd = (log_h(z + h) - log_h(z - h)) / (2 * h);
    EXPECT_NEAR(log_h_derivative(z), fd, 1e-6 * std::max(1.0, std::fabs(fd))) << "z=" << z;
  }
}

TEST(LogEi, ThroughThePosteriorIsLogSigmaPlusLogH) {
  LogEi e = log_expected_improvement(0.3, 0.5, 0.1);
  double z = (0.1 - 0.3) / 0.5;
  EXPECT_NEAR(e.value, std::log(0.5 * direct_h(z)), 1e-12);
  const double h = 1e-7;
  EXPECT_NEAR(e.d_mean, (log_expected_improvement(0.3 + h, 0.5, 0.1).value - log_expected_improvement(0.3 - h, 0.5, 0.1).value) / (2 * h), 1e-6);
  EXPECT_NEAR(e.d_sigma, (log_expected_improvement(0.3, 0.5 + h, 0.1).value - log_expected_improvement(0.3, 0.5 - h, 0.1).value) / (2 * h), 1e-6);
}

}  // namespace
}  // namespace kiln::tuning
