#include "tuning/gaussian_process.h"

#include <cmath>

#include "core/error.h"

namespace kiln::tuning {

using Eigen::MatrixXd;
using Eigen::VectorXd;

namespace {
const double kSqrt5 = std::sqrt(5.0);
}

double matern52(double r) { return (1 + kSqrt5 * r + 5.0 / 3.0 * r * r) * std::exp(-kSqrt5 * r); }

double matern52_grad_factor(double r) { return 5.0 / 3.0 * (1 + kSqrt5 * r) * std::exp(-kSqrt5 * r); }

MatrixXd scaled_sq_distances(const MatrixXd& A, const MatrixXd& B, const VectorXd& inv_l2) {
  VectorXd scale = inv_l2.cwiseSqrt();
  MatrixXd As = A * scale.asDiagonal(), Bs = B * scale.asDiagonal();
  MatrixXd d = (-2.0 * As * Bs.transpose()).colwise() + As.rowwise().squaredNorm();
  d.rowwise() += Bs.rowwise().squaredNorm().transpose();
  return d.cwiseMax(0.0);
}

double cholesky_with_jitter(MatrixXd K, double noise, Eigen::LLT<MatrixXd>& llt) {
  double base = K.diagonal().mean();
  K.diagonal().array() += noise;
  llt.compute(K);
  if (llt.info() == Eigen::Success) return 0;
  for (double jitter = 1e-10 * base; jitter <= 1e-1 * base; jitter *= 10) {
    MatrixXd Kj = K;
    Kj.diagonal().array() += jitter;
    llt.compute(Kj);
    if (llt.info() == Eigen::Success) return jitter;
  }
  throw InternalError("Gaussian process: the kernel matrix is not positive definite even with jitter");
}

GaussianProcess::GaussianProcess(MatrixXd X, VectorXd y, GpHyperparameters h)
    : X_(std::move(X)), s2_(std::exp(h.log_signal_variance)), h_(std::move(h)) {
  KILN_CHECK(X_.rows() == y.size() && X_.cols() == h_.log_lengthscales.size());
  inv_l2_ = (-2.0 * h_.log_lengthscales).array().exp();
  MatrixXd K = scaled_sq_distances(X_, X_, inv_l2_).unaryExpr([&](double d2) { return s2_ * matern52(std::sqrt(d2)); });
  jitter_ = cholesky_with_jitter(std::move(K), std::exp(h_.log_noise_variance), llt_);
  alpha_ = llt_.solve(y);
}

double GaussianProcess::kernel(const VectorXd& a, const VectorXd& b) const {
  return s2_ * matern52(std::sqrt((a - b).cwiseAbs2().dot(inv_l2_)));
}

void GaussianProcess::predict(const MatrixXd& Xs, VectorXd& mean, VectorXd& variance) const {
  MatrixXd Ks = scaled_sq_distances(X_, Xs, inv_l2_).unaryExpr([&](double d2) { return s2_ * matern52(std::sqrt(d2)); });
  mean = Ks.transpose() * alpha_;
  llt_.matrixL().solveInPlace(Ks);  // V = L^-1 K*
  variance = (s2_ - Ks.colwise().squaredNorm().transpose().array()).cwiseMax(0.0).matrix();
}

void GaussianProcess::predict(const VectorXd& x, double& mean, double& variance, VectorXd& dmean, VectorXd& dvariance) const {
  const Eigen::Index n = X_.rows(), D = X_.cols();
  VectorXd k(n);
  MatrixXd dk(n, D);  // dk_j / dx
  for (Eigen::Index j = 0; j < n; ++j) {
    VectorXd diff = x - X_.row(j).transpose();
    double r = std::sqrt(diff.cwiseAbs2().dot(inv_l2_));
    k[j] = s2_ * matern52(r);
    dk.row(j) = (-s2_ * matern52_grad_factor(r)) * diff.cwiseProduct(inv_l2_).transpose();
  }
  mean = k.dot(alpha_);
  dmean = dk.transpose() * alpha_;
  VectorXd w = llt_.solve(k);  // K^-1 k*
  variance = std::max(s2_ - k.dot(w), 0.0);
  dvariance = -2.0 * dk.transpose() * w;
}

}  // namespace kiln::tuning
