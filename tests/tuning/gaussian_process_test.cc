// The Gaussian process against closed forms and finite differences, the hyper-parameter fit on
// data with a known answer, and the box-constrained L-BFGS it runs on.
#include "tuning/gaussian_process.h"

#include <gtest/gtest.h>

#include <Eigen/Dense>
#include <cmath>
#include <random>

#include "tuning/gp_fit.h"
#include "tuning/lbfgs.h"

namespace kiln::tuning {
namespace {

using Eigen::MatrixXd;
using Eigen::VectorXd;

GpHyperparameters hyper(std::vector<double> lengthscales, double signal, double noise) {
  GpHyperparameters h;
  h.log_lengthscales = Eigen::Map<VectorXd>(lengthscales.data(), static_cast<Eigen::Index>(lengthscales.size())).array().log();
  h.log_signal_variance = std::log(signal);
  h.log_noise_variance = std::log(noise);
  return h;
}

// The Matérn-5/2 kernel written out independently of the implementation.
double reference_kernel(const VectorXd& a, const VectorXd& b, const std::vector<double>& l, double s2) {
  double r2 = 0;
  for (Eigen::Index i = 0; i < a.size(); ++i) r2 += (a[i] - b[i]) * (a[i] - b[i]) / (l[i] * l[i]);
  double r = std::sqrt(r2);
  return s2 * (1 + std::sqrt(5.0) * r + 5.0 * r2 / 3.0) * std::exp(-std::sqrt(5.0) * r);
}

// n uniform points of [0,1]^D and f at each.
template <typename F>
void sample(int n, int D, uint64_t seed, F f, MatrixXd& X, VectorXd& y) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0, 1);
  X.resize(n, D);
  y.resize(n);
  for (int i = 0; i < n; ++i) {
    for (int d = 0; d < D; ++d) X(i, d) = u(rng);
    y[i] = f(X.row(i));
  }
}

// Central differences of a scalar function.
template <typename F>
VectorXd numeric_gradient(F f, const VectorXd& x, double h = 1e-6) {
  VectorXd g(x.size());
  for (Eigen::Index j = 0; j < x.size(); ++j) {
    VectorXd xp = x, xm = x;
    xp[j] += h;
    xm[j] -= h;
    g[j] = (f(xp) - f(xm)) / (2 * h);
  }
  return g;
}

TEST(GaussianProcess, OnePointPosteriorIsTheClosedForm) {
  // With one observation y at x1: mean = k(x, x1) y / (s2 + noise), var = s2 - k^2 / (s2 + noise).
  MatrixXd X(1, 2);
  X << 0.2, 0.7;
  VectorXd y(1);
  y << 1.5;
  const double s2 = 1.7, noise = 0.05;
  const std::vector<double> l = {0.3, 0.8};
  GaussianProcess gp(X, y, hyper(l, s2, noise));
  MatrixXd Xs(3, 2);
  Xs << 0.2, 0.7, 0.5, 0.5, 0.9, 0.1;
  VectorXd mean, var;
  gp.predict(Xs, mean, var);
  for (Eigen::Index i = 0; i < Xs.rows(); ++i) {
    double k = reference_kernel(Xs.row(i).transpose(), X.row(0).transpose(), l, s2);
    EXPECT_NEAR(mean[i], k * 1.5 / (s2 + noise), 1e-12);
    EXPECT_NEAR(var[i], s2 - k * k / (s2 + noise), 1e-12);
  }
}

TEST(GaussianProcess, PosteriorMatchesExplicitInverse) {
  const int n = 7, D = 3;
  MatrixXd X;
  VectorXd y;
  sample(n, D, 3, [](const auto& r) { return std::sin(6 * r[0]) + r[1] * r[2]; }, X, y);
  std::mt19937_64 rng(4);
  std::uniform_real_distribution<double> u(0, 1);
  const std::vector<double> l = {0.4, 0.7, 1.3};
  const double s2 = 0.9, noise = 1e-3;
  GaussianProcess gp(X, y, hyper(l, s2, noise));
  MatrixXd K(n, n);
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j) K(i, j) = reference_kernel(X.row(i).transpose(), X.row(j).transpose(), l, s2) + (i == j ? noise : 0);
  MatrixXd Kinv = K.inverse();
  for (int t = 0; t < 5; ++t) {
    VectorXd x(D);
    for (int d = 0; d < D; ++d) x[d] = u(rng);
    VectorXd k(n);
    for (int i = 0; i < n; ++i) k[i] = reference_kernel(x, X.row(i).transpose(), l, s2);
    double mean, var;
    VectorXd dm, dv;
    gp.predict(x, mean, var, dm, dv);
    EXPECT_NEAR(mean, k.dot(Kinv * y), 1e-9);
    EXPECT_NEAR(var, s2 - k.dot(Kinv * k), 1e-9);
  }
}

TEST(GaussianProcess, InterpolatesNoiseFreeData) {
  MatrixXd X(4, 1);
  X << 0.1, 0.4, 0.6, 0.95;
  VectorXd y(4);
  y << 1, -2, 0.5, 3;
  GaussianProcess gp(X, y, hyper({0.3}, 1, 1e-9));
  VectorXd mean, var;
  gp.predict(X, mean, var);
  for (int i = 0; i < 4; ++i) {
    EXPECT_NEAR(mean[i], y[i], 1e-5);
    EXPECT_LT(var[i], 1e-6);
  }
}

TEST(GaussianProcess, PredictionGradientsMatchFiniteDifferences) {
  MatrixXd X;
  VectorXd y;
  sample(10, 2, 5, [](const auto& r) { return std::cos(4 * r[0]) - r[1]; }, X, y);
  GaussianProcess gp(X, y, hyper({0.35, 0.6}, 1.2, 1e-4));
  VectorXd x(2);
  x << 0.37, 0.61;
  double m, v;
  VectorXd dm, dv;
  gp.predict(x, m, v, dm, dv);
  auto at = [&](const VectorXd& p, bool want_mean) {
    double pm, pv;
    VectorXd g1, g2;
    gp.predict(p, pm, pv, g1, g2);
    return want_mean ? pm : pv;
  };
  EXPECT_LT((dm - numeric_gradient([&](const VectorXd& p) { return at(p, true); }, x)).lpNorm<Eigen::Infinity>(), 1e-6);
  EXPECT_LT((dv - numeric_gradient([&](const VectorXd& p) { return at(p, false); }, x)).lpNorm<Eigen::Infinity>(), 1e-6);
}

TEST(GaussianProcess, JitterRescuesDuplicatePoints) {
  MatrixXd X(3, 1);
  X << 0.5, 0.5, 0.2;  // a repeated point makes K singular without noise
  VectorXd y(3);
  y << 1, 1, 0;
  GaussianProcess gp(X, y, hyper({0.5}, 1, 0));
  EXPECT_GT(gp.jitter(), 0);
  VectorXd mean, var;
  gp.predict(X, mean, var);
  EXPECT_NEAR(mean[0], 1, 1e-3);
}

TEST(GpFit, MarginalLikelihoodGradientMatchesFiniteDifferences) {
  MatrixXd X;
  VectorXd y;
  sample(12, 3, 11, [](const auto& r) { return std::sin(5 * r[0]) + 0.3 * r[2]; }, X, y);
  VectorXd theta(5);
  theta << std::log(0.3), std::log(0.9), std::log(2.0), std::log(1.1), std::log(1e-2);
  VectorXd grad;
  double f = gp_negative_log_posterior(X, y, theta, &grad);
  EXPECT_TRUE(std::isfinite(f));
  VectorXd fd = numeric_gradient([&](const VectorXd& t) { return gp_negative_log_posterior(X, y, t, nullptr); }, theta);
  for (Eigen::Index j = 0; j < theta.size(); ++j)
    EXPECT_NEAR(grad[j], fd[j], 1e-5 * std::max(1.0, std::fabs(fd[j]))) << "theta[" << j << "]";
}

TEST(GpFit, LearnsThatAnIrrelevantDimensionIsIrrelevant) {
  // y depends on x0 only: the fitted lengthscale of x1 must be much longer than that of x0,
  // and the model must predict held-out points well.
  auto f = [](const auto& r) { return std::sin(7 * r[0]); };
  MatrixXd X, T;
  VectorXd y, truth;
  sample(30, 2, 2, f, X, y);
  sample(50, 2, 3, f, T, truth);
  GpHyperparameters h = fit_gp_hyperparameters(X, y, std::nullopt);
  EXPECT_GT(h.log_lengthscales[1], h.log_lengthscales[0] + 1.0);
  GaussianProcess gp(X, y, h);
  VectorXd mean, var;
  gp.predict(T, mean, var);
  double rmse = std::sqrt((mean - truth).squaredNorm() / 50);
  EXPECT_LT(rmse, 0.05);
}

TEST(Lbfgs, MinimizesRosenbrock) {
  auto rosen = [](const VectorXd& x, VectorXd& g) {
    double a = 1 - x[0], b = x[1] - x[0] * x[0];
    g.resize(2);
    g[0] = -2 * a - 400 * x[0] * b;
    g[1] = 200 * b;
    return a * a + 100 * b * b;
  };
  VectorXd x(2);
  x << -1.2, 1.0;
  LbfgsOptions opt;
  opt.max_iterations = 500;
  opt.gradient_tolerance = 1e-10;
  opt.value_tolerance = 0;
  LbfgsResult r = minimize_lbfgs(rosen, x, VectorXd::Constant(2, -5), VectorXd::Constant(2, 5), opt);
  EXPECT_NEAR(x[0], 1, 1e-5);
  EXPECT_NEAR(x[1], 1, 1e-5);
  EXPECT_LT(r.value, 1e-10);
}

TEST(Lbfgs, StopsOnTheBoundWhenTheMinimumIsOutside) {
  // (x - 3)^2 + (y + 1)^2 on [0,1]^2: the constrained minimum is (1, 0).
  auto f = [](const VectorXd& x, VectorXd& g) {
    g.resize(2);
    g[0] = 2 * (x[0] - 3);
    g[1] = 2 * (x[1] + 1);
    return (x[0] - 3) * (x[0] - 3) + (x[1] + 1) * (x[1] + 1);
  };
  VectorXd x(2);
  x << 0.3, 0.6;
  minimize_lbfgs(f, x, VectorXd::Zero(2), VectorXd::Ones(2));
  EXPECT_DOUBLE_EQ(x[0], 1);
  EXPECT_DOUBLE_EQ(x[1], 0);
}

}  // namespace
}  // namespace kiln::tuning
