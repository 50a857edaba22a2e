#include "tuning/log_ei.h"

#include <algorithm>
#include <cmath>

namespace kiln::tuning {

namespace {

const double kInvSqrt2Pi = 1.0 / std::sqrt(2 * M_PI);
const double kLogSqrt2Pi = 0.5 * std::log(2 * M_PI);
constexpr double kSeriesFrom = 12;  // |z| above which the asymptotic series is exact to ~1e-16

// exp(x^2) erfc(x) for 0 <= x <= ~9, with x^2 split into two doubles so that exp does not
// amplify its rounding error.
double erfcx(double x) {
  double hi = x * x, lo = std::fma(x, x, -hi);
  return std::exp(hi) * (1 + lo) * std::erfc(x);
}

// For t >= kSeriesFrom: t m(t) = 1 + tail, tail = sum_k>=1 (-1)^k (2k-1)!! / t^2k (asymptotic;
// summed while the terms shrink), where m(t) = Phi(-t)/phi(t) is the Mills ratio. Keeping the
// tail apart gives 1 - t m(t) = -tail without cancellation.
void mills_series(double t, double& m, double& one_minus_tm) {
  double inv_t2 = 1 / (t * t), term = 1, tail = 0;
  for (int k = 1; k < 60; ++k) {
    double next = -term * (2 * k - 1) * inv_t2;
    if (std::fabs(next) >= std::fabs(term)) break;
    term = next;
    tail += term;
    if (std::fabs(term) < 1e-17 * std::fabs(tail)) break;
  }
  m = (1 + tail) / t;
  one_minus_tm = -tail;
}

// m(t) and 1 - t m(t) for t >= 1.
void mills(double t, double& m, double& one_minus_tm) {
  if (t >= kSeriesFrom) return mills_series(t, m, one_minus_tm);
  m = std::sqrt(M_PI / 2) * erfcx(t / std::sqrt(2.0));
  one_minus_tm = 1 - t * m;
}

}  // namespace

double normal_pdf(double z) { return kInvSqrt2Pi * std::exp(-0.5 * z * z); }
double normal_cdf(double z) { return 0.5 * std::erfc(-z / std::sqrt(2.0)); }

double log_h(double z) {
  if (z > -1) return std::log(normal_pdf(z) + z * normal_cdf(z));
  double m, one_minus_tm;
  mills(-z, m, one_minus_tm);
  // h(z) = phi(z) (1 - t m(t)), t = -z
  return -0.5 * z * z - kLogSqrt2Pi + std::log(one_minus_tm);
}

double log_h_derivative(double z) {
  if (z > -1) return normal_cdf(z) / (normal_pdf(z) + z * normal_cdf(z));
  double m, one_minus_tm;
  mills(-z, m, one_minus_tm);
  return m / one_minus_tm;  // Phi(z) / h(z) = phi m / (phi (1 - t m))
}

LogEi log_expected_improvement(double mean, double sigma, double best) {
  sigma = std::max(sigma, 1e-12);
  double z = (best - mean) / sigma;
  double dz = log_h_derivative(z);
  return {std::log(sigma) + log_h(z), -dz / sigma, 1 / sigma - dz * z / sigma};
}

}  // namespace kiln::tuning
