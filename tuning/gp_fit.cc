#include "tuning/gp_fit.h"

#include <cmath>
#include <random>
#include <vector>

#include "core/error.h"
#include "tuning/lbfgs.h"

namespace kiln::tuning {

using Eigen::MatrixXd;
using Eigen::VectorXd;

namespace {

const double kLog2Pi = std::log(2 * M_PI);

// Log-normal priors (on the log parameters: normal with these means and deviations).
struct Prior {
  double mean, sd;
  double neg_log(double v) const { return 0.5 * (v - mean) * (v - mean) / (sd * sd); }
  double grad(double v) const { return (v - mean) / (sd * sd); }
};

// Median lengthscale 0.5 of the unit cube, one e-fold either way within a standard deviation.
// (The dimension-scaled prior of Hvarfner et al., median ~10 at 6 dimensions, left Hartmann-6
// 25x further from its optimum at 50 trials: too smooth for the budgets studies run on.)
const Prior kLengthscalePrior{std::log(0.5), 1.0};
const Prior kSignalPrior{0.0, 1.5};
const Prior kNoisePrior{std::log(1e-4), 3.0};

// Per-dimension squared differences, computed once per fit: each evaluation of the objective
// only rescales and sums them.
class FitProblem {
 public:
  FitProblem(const MatrixXd& X, const VectorXd& y) : y_(y), dims_(X.cols()) {
    const Eigen::Index n = X.rows();
    for (Eigen::Index i = 0; i < dims_; ++i) {
      VectorXd c = X.col(i);
      sq_diff_.push_back((c.replicate(1, n) - c.transpose().replicate(n, 1)).cwiseAbs2());
    }
  }

  double operator()(const VectorXd& theta, VectorXd* grad) const {
    const Eigen::Index n = y_.size();
    VectorXd inv_l2 = (-2.0 * theta.head(dims_)).array().exp();
    double s2 = std::exp(theta[dims_]), noise = std::exp(theta[dims_ + 1]);
    MatrixXd d2 = MatrixXd::Zero(n, n);
    for (Eigen::Index i = 0; i < dims_; ++i) d2 += inv_l2[i] * sq_diff_[i];
    MatrixXd r = d2.cwiseSqrt();
    MatrixXd Kf = r.unaryExpr([&](double v) { return s2 * matern52(v); });
    Eigen::LLT<MatrixXd> llt;
    try {
      cholesky_with_jitter(Kf, noise, llt);
    } catch (const InternalError&) {
      return std::numeric_limits<double>::infinity();
    }
    VectorXd alpha = llt.solve(y_);
    double nll = 0.5 * y_.dot(alpha) + llt.matrixLLT().diagonal().array().log().sum() + 0.5 * n * kLog2Pi;
    const Prior& lp = kLengthscalePrior;
    for (Eigen::Index i = 0; i < dims_; ++i) nll += lp.neg_log(theta[i]);
    nll += kSignalPrior.neg_log(theta[dims_]) + kNoisePrior.neg_log(theta[dims_ + 1]);
    if (grad) {
      grad->resize(theta.size());
      MatrixXd W = alpha * alpha.transpose() - llt.solve(MatrixXd::Identity(n, n));
      MatrixXd WG = W.cwiseProduct(r.unaryExpr([&](double v) { return s2 * matern52_grad_factor(v); }));
      for (Eigen::Index i = 0; i < dims_; ++i)
        (*grad)[i] = -0.5 * inv_l2[i] * WG.cwiseProduct(sq_diff_[i]).sum() + lp.grad(theta[i]);
      (*grad)[dims_] = -0.5 * W.cwiseProduct(Kf).sum() + kSignalPrior.grad(theta[dims_]);
      (*grad)[dims_ + 1] = -0.5 * noise * W.trace() + kNoisePrior.grad(theta[dims_ + 1]);
    }
    return nll;
  }

 private:
  VectorXd y_;
  Eigen::Index dims_;
  std::vector<MatrixXd> sq_diff_;
};

}  // namespace

void gp_theta_bounds(Eigen::Index dims, VectorXd& lower, VectorXd& upper) {
  lower.resize(dims + 2);
  upper.resize(dims + 2);
  lower.head(dims).setConstant(std::log(5e-3));
  upper.head(dims).setConstant(std::log(2e2));
  lower[dims] = std::log(1e-2);
  upper[dims] = std::log(1e2);
  lower[dims + 1] = std::log(1e-9);
  upper[dims + 1] = std::log(2.0);
}

VectorXd to_theta(const GpHyperparameters& h) {
  Eigen::Index d = h.log_lengthscales.size();
  VectorXd theta(d + 2);
  theta << h.log_lengthscales, h.log_signal_variance, h.log_noise_variance;
  return theta;
}

GpHyperparameters from_theta(const VectorXd& theta) {
  Eigen::Index d = theta.size() - 2;
  return {theta.head(d), theta[d], theta[d + 1]};
}

double gp_negative_log_posterior(const MatrixXd& X, const VectorXd& y, const VectorXd& theta, VectorXd* grad) {
  return FitProblem(X, y)(theta, grad);
}

GpHyperparameters fit_gp_hyperparameters(const MatrixXd& X, const VectorXd& y,
                                         const std::optional<GpHyperparameters>& warm_start,
                                         const GpFitOptions& options) {
  const Eigen::Index dims = X.cols();
  FitProblem problem(X, y);
  VectorXd lower, upper;
  gp_theta_bounds(dims, lower, upper);
  std::vector<VectorXd> starts;
  if (warm_start && warm_start->log_lengthscales.size() == dims) starts.push_back(to_theta(*warm_start));
  const Prior& lp = kLengthscalePrior;
  VectorXd median(dims + 2);
  median.head(dims).setConstant(lp.mean);
  median[dims] = kSignalPrior.mean;
  median[dims + 1] = kNoisePrior.mean;
  starts.push_back(median);
  std::mt19937_64 rng(options.seed);
  std::normal_distribution<double> normal;
  while (static_cast<int>(starts.size()) < options.starts) {
    // Random starts from the prior, narrowed so they stay in plausible territory.
    VectorXd t(dims + 2);
    for (Eigen::Index i = 0; i < dims; ++i) t[i] = lp.mean + 0.5 * lp.sd * normal(rng);
    t[dims] = kSignalPrior.mean + 0.5 * kSignalPrior.sd * normal(rng);
    t[dims + 1] = kNoisePrior.mean + 0.5 * kNoisePrior.sd * normal(rng);
    starts.push_back(t.cwiseMax(lower).cwiseMin(upper));
  }
  LbfgsOptions lo;
  lo.max_iterations = options.max_iterations;
  lo.gradient_tolerance = 1e-5;
  lo.value_tolerance = 1e-9;
  double best_value = std::numeric_limits<double>::infinity();
  VectorXd best = median;
  for (VectorXd theta : starts) {
    LbfgsResult r = minimize_lbfgs([&](const VectorXd& t, VectorXd& g) { return problem(t, &g); }, theta, lower, upper, lo);
    if (r.value < best_value) {
      best_value = r.value;
      best = theta;
    }
  }
  return from_theta(best);
}

}  // namespace kiln::tuning
