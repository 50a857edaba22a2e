#include "tuning/lbfgs.h"

#include <cmath>
#include <deque>

namespace kiln::tuning {

using Eigen::VectorXd;

namespace {

// 1 where the variable may move, 0 where it sits on a bound and the gradient pushes it out.
VectorXd free_mask(const VectorXd& x, const VectorXd& g, const VectorXd& lo, const VectorXd& hi) {
  VectorXd m(x.size());
  for (Eigen::Index i = 0; i < x.size(); ++i)
    m[i] = (x[i] <= lo[i] && g[i] > 0) || (x[i] >= hi[i] && g[i] < 0) ? 0.0 : 1.0;
  return m;
}

}  // namespace

LbfgsResult minimize_lbfgs(const LbfgsObjective& f, VectorXd& x, const VectorXd& lo, const VectorXd& hi,
                           const LbfgsOptions& opt) {
  LbfgsResult r;
  x = x.cwiseMax(lo).cwiseMin(hi);
  VectorXd g(x.size());
  double fx = f(x, g);
  ++r.evaluations;
  std::deque<std::pair<VectorXd, VectorXd>> memory;  // (s, y) pairs, newest last
  VectorXd g_new(x.size());
  for (r.iterations = 0; r.iterations < opt.max_iterations; ++r.iterations) {
    if (!std::isfinite(fx)) break;
    VectorXd mask = free_mask(x, g, lo, hi);
    VectorXd pg = g.cwiseProduct(mask);
    if (pg.lpNorm<Eigen::Infinity>() <= opt.gradient_tolerance) break;
    // Two-loop recursion on the free variables.
    VectorXd q = pg;
    std::vector<double> alpha(memory.size());
    for (size_t k = memory.size(); k-- > 0;) {
      const auto& [s, y] = memory[k];
      double rho = 1.0 / y.dot(s);
      alpha[k] = rho * s.cwiseProduct(mask).dot(q);
      q -= alpha[k] * y.cwiseProduct(mask);
    }
    if (!memory.empty()) {
      const auto& [s, y] = memory.back();
      q *= s.dot(y) / y.dot(y);
    } else {
      q /= std::max(1.0, pg.norm());  // first step: at most unit length
    }
    for (size_t k = 0; k < memory.size(); ++k) {
      const auto& [s, y] = memory[k];
      double rho = 1.0 / y.dot(s);
      double beta = rho * y.cwiseProduct(mask).dot(q);
      q += (alpha[k] - beta) * s.cwiseProduct(mask);
    }
    VectorXd d = -q.cwiseProduct(mask);
    if (d.dot(pg) >= 0) {  // not a descent direction: forget the curvature pairs
      memory.clear();
      d = -pg / std::max(1.0, pg.norm());
    }
    double t = 1.0, f_new = fx;
    VectorXd x_new = x;
    bool accepted = false;
    for (int tries = 0; tries < 40; ++tries, t *= 0.5) {
      x_new = (x + t * d).cwiseMax(lo).cwiseMin(hi);
      f_new = f(x_new, g_new);
      ++r.evaluations;
      if (std::isfinite(f_new) && f_new <= fx + 1e-4 * g.dot(x_new - x)) {
        accepted = true;
        break;
      }
    }
    if (!accepted) {
      if (memory.empty()) break;
      memory.clear();
      continue;
    }
    VectorXd s = x_new - x, y = g_new - g;
    if (s.dot(y) > 1e-12 * s.norm() * y.norm()) {
      memory.emplace_back(s, y);
      if (static_cast<int>(memory.size()) > opt.memory) memory.pop_front();
    }
    double decrease = fx - f_new;
    x = x_new;
    g = g_new;
    fx = f_new;
    if (decrease <= opt.value_tolerance * std::max(1.0, std::fabs(fx))) {
      ++r.iterations;
      break;
    }
  }
  r.value = fx;
  return r;
}

}  // namespace kiln::tuning
