#pragma once
// Box-constrained L-BFGS: the kernel hyper-parameter fit and the acquisition refinement both
// minimize smooth functions over boxes. Variables at a bound whose gradient pushes outward are
// held fixed; the quasi-Newton direction moves the others, and a backtracking (Armijo) search
// runs along the projected path. Simpler than L-BFGS-B and enough for tens of variables.
#include <Eigen/Core>
#include <functional>

namespace kiln::tuning {

struct LbfgsOptions {
  int max_iterations = 100;
  int memory = 8;
  double gradient_tolerance = 1e-6;  // on the projected gradient's largest component
  double value_tolerance = 1e-10;    // relative decrease per iteration that counts as converged
};

struct LbfgsResult {
  double value = 0;
  int iterations = 0;
  int evaluations = 0;
};

// f(x, grad) returns f(x) and writes its gradient. x starts inside (or is clipped into) the box
// [lower, upper] and ends at the best point found.
using LbfgsObjective = std::function<double(const Eigen::VectorXd& x, Eigen::VectorXd& grad)>;
LbfgsResult minimize_lbfgs(const LbfgsObjective& f, Eigen::VectorXd& x, const Eigen::VectorXd& lower,
                           const Eigen::VectorXd& upper, const LbfgsOptions& options = {});

}  // namespace kiln::tuning
