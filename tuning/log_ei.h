#pragma once
// Log expected improvement (Ament et al., "Unexpected improvements to expected improvement",
// NeurIPS 2023). For a normal posterior N(mu, sigma^2) and incumbent f* (minimizing),
//   EI = sigma h(z),  z = (f* - mu) / sigma,  h(z) = phi(z) + z Phi(z).
// h underflows to 0 for z below about -38, and phi + z Phi cancels long before, so optimizers see
// flat zeros far from the data. log h is computed without either problem: directly for z > -1,
// through the scaled complementary error function (Mills ratio) for -30 < z <= -1, and by its
// asymptotic series below -30. Finite and increasing for every finite z.
namespace kiln::tuning {

double normal_pdf(double z);
double normal_cdf(double z);

// log h(z) and d/dz log h(z) = Phi(z) / h(z).
double log_h(double z);
double log_h_derivative(double z);

// log EI and its gradient through the posterior: dlogei/dmu and dlogei/dsigma.
struct LogEi {
  double value;
  double d_mean;
  double d_sigma;
};
LogEi log_expected_improvement(double mean, double sigma, double best);

}  // namespace kiln::tuning
