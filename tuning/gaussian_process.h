#pragma once
// Gaussian process regression with a Matérn-5/2 ARD kernel, zero mean (outputs are
// standardized by the caller) and Gaussian noise:
//   k(x, x') = s2 * (1 + sqrt5 r + 5 r^2 / 3) exp(-sqrt5 r),  r^2 = sum_i ((x_i - x'_i) / l_i)^2
// The posterior is the textbook one (Rasmussen & Williams, Algorithm 2.1) through a Cholesky
// factor; when K + noise I is numerically not positive definite, jitter grows by 10x until it is.
#include <Eigen/Cholesky>
#include <Eigen/Core>

namespace kiln::tuning {

struct GpHyperparameters {
  Eigen::VectorXd log_lengthscales;  // one per input dimension
  double log_signal_variance = 0;
  double log_noise_variance = std::log(1e-4);
};

// Matérn-5/2 of a scaled distance r >= 0, and its derivative factor
// g(r) = -(1/r) dk/dr = (5/3)(1 + sqrt5 r) exp(-sqrt5 r), smooth at r = 0.
double matern52(double r);
double matern52_grad_factor(double r);

class GaussianProcess {
 public:
  // Rows of X are inputs; y the (standardized) outputs.
  GaussianProcess(Eigen::MatrixXd X, Eigen::VectorXd y, GpHyperparameters h);

  // Posterior mean and latent (noise-free) variance at each row of Xs.
  void predict(const Eigen::MatrixXd& Xs, Eigen::VectorXd& mean, Eigen::VectorXd& variance) const;
  // The same at one point, with gradients with respect to x.
  void predict(const Eigen::VectorXd& x, double& mean, double& variance, Eigen::VectorXd& dmean,
               Eigen::VectorXd& dvariance) const;

  double kernel(const Eigen::VectorXd& a, const Eigen::VectorXd& b) const;
  const GpHyperparameters& hyperparameters() const { return h_; }
  double jitter() const { return jitter_; }
  Eigen::Index size() const { return X_.rows(); }

 private:
  Eigen::MatrixXd X_;
  Eigen::VectorXd inv_l2_;  // 1 / l_i^2
  double s2_;
  GpHyperparameters h_;
  Eigen::LLT<Eigen::MatrixXd> llt_;
  Eigen::VectorXd alpha_;  // (K + noise I)^-1 y
  double jitter_ = 0;
};

// Cholesky of K + noise I, adding jitter (x10 from 1e-10 * mean diagonal) until it succeeds.
// Returns the total diagonal added beyond `noise`; throws kiln::InternalError if none works.
double cholesky_with_jitter(Eigen::MatrixXd K, double noise, Eigen::LLT<Eigen::MatrixXd>& llt);

// Squared scaled distances between the rows of A and B.
Eigen::MatrixXd scaled_sq_distances(const Eigen::MatrixXd& A, const Eigen::MatrixXd& B, const Eigen::VectorXd& inv_l2);

}  // namespace kiln::tuning
