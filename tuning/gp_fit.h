#pragma once
// Kernel hyper-parameters by maximum a posteriori marginal likelihood: minimize
//   -log p(y | X, theta) - log prior(theta),  theta = (log l_1..D, log s2, log noise)
// with weak priors: lengthscales log-normal around 0.5 (of the unit cube), signal variance
// log-normal around 1 (outputs are standardized), noise log-normal around 1e-4 but wide enough
// to reach 1e-8 on noise-free objectives or 1 on noisy ones.
// Multi-start L-BFGS on the analytic gradient.
#include <Eigen/Core>
#include <cstdint>
#include <optional>

#include "tuning/gaussian_process.h"

namespace kiln::tuning {

// The objective and its gradient (theta as above). `grad` may be null.
double gp_negative_log_posterior(const Eigen::MatrixXd& X, const Eigen::VectorXd& y, const Eigen::VectorXd& theta,
                                 Eigen::VectorXd* grad);

// Box on theta the fit searches within.
void gp_theta_bounds(Eigen::Index dims, Eigen::VectorXd& lower, Eigen::VectorXd& upper);

Eigen::VectorXd to_theta(const GpHyperparameters& h);
GpHyperparameters from_theta(const Eigen::VectorXd& theta);

struct GpFitOptions {
  int starts = 4;            // L-BFGS runs: the warm start (if any), the prior median, random draws
  int max_iterations = 80;  // per run
  uint64_t seed = 0;
};

GpHyperparameters fit_gp_hyperparameters(const Eigen::MatrixXd& X, const Eigen::VectorXd& y,
                                         const std::optional<GpHyperparameters>& warm_start,
                                         const GpFitOptions& options = {});

}  // namespace kiln::tuning
