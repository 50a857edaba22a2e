#pragma once
// Maximizes LogEI over the search space's encoding. Quasi-random candidates over the whole cube
// plus perturbations of the best observed points are scored in one batch; the best few are then
// refined: L-BFGS on the continuous dimensions of their active parameters, and exhaustive search
// over the enumerated (categorical, discrete, small integer) ones — every combination when there
// are few, one parameter at a time otherwise — alternating until neither improves.
#include <Eigen/Core>
#include <cstdint>
#include <vector>

#include "tuning/gaussian_process.h"
#include "tuning/search_space.h"

namespace kiln::tuning {

struct AcquisitionOptions {
  int candidates = 2048;  // quasi-random points scored
  int refine = 8;         // best candidates refined locally
  uint64_t seed = 0;
};

struct ScoredPoint {
  Eigen::VectorXd x;  // canonical encoding
  double log_ei = 0;
};

// LogEI of `best` (the incumbent, minimizing) under the posterior of `gp` at each row of X.
Eigen::VectorXd log_ei_batch(const GaussianProcess& gp, double best, const Eigen::MatrixXd& X);

// Distinct canonical points ranked by LogEI, best first. `incumbents` are encodings of the best
// observed points, around which extra candidates are drawn.
std::vector<ScoredPoint> maximize_log_ei(const GaussianProcess& gp, double best, const SearchSpace& space,
                                         const std::vector<Eigen::VectorXd>& incumbents,
                                         const AcquisitionOptions& options);

}  // namespace kiln::tuning
