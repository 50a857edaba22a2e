#include "tuning/acquisition_optimizer.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <set>

#include "tuning/halton.h"
#include "tuning/lbfgs.h"
#include "tuning/log_ei.h"

namespace kiln::tuning {

using Eigen::MatrixXd;
using Eigen::VectorXd;

namespace {

constexpr size_t kMaxEnumeratedCombinations = 128;

VectorXd canonical(const SearchSpace& space, VectorXd x) {
  space.canonicalize(std::span<double>(x.data(), static_cast<size_t>(x.size())));
  return x;
}

double log_ei_at(const GaussianProcess& gp, double best, const VectorXd& x) {
  MatrixXd X = x.transpose();
  return log_ei_batch(gp, best, X)[0];
}

// Indices of the parameters active at x, split by how the optimizer moves them.
void active_params(const SearchSpace& space, const VectorXd& x, std::vector<size_t>& continuous,
                   std::vector<size_t>& enumerated) {
  Assignment a = space.decode(std::span<const double>(x.data(), static_cast<size_t>(x.size())));
  continuous.clear();
  enumerated.clear();
  for (size_t i = 0; i < space.params().size(); ++i) {
    const auto& p = space.params()[i];
    if (!a.count(p.name)) continue;
    (p.enumerated ? enumerated : continuous).push_back(i);
  }
}

// L-BFGS on the continuous dimensions in `params`, the others held; returns the canonical result.
VectorXd refine_continuous(const GaussianProcess& gp, double best, const SearchSpace& space, const VectorXd& x0,
                           const std::vector<size_t>& params) {
  std::vector<Eigen::Index> dims;
  for (size_t i : params) dims.push_back(static_cast<Eigen::Index>(space.params()[i].offset));
  const Eigen::Index k = static_cast<Eigen::Index>(dims.size());
  VectorXd z(k);
  for (Eigen::Index j = 0; j < k; ++j) z[j] = x0[dims[j]];
  VectorXd full = x0, dmean, dvar;
  auto objective = [&](const VectorXd& v, VectorXd& g) {
    for (Eigen::Index j = 0; j < k; ++j) full[dims[j]] = v[j];
    double mean, var;
    gp.predict(full, mean, var, dmean, dvar);
    double sigma = std::sqrt(std::max(var, 1e-24));
    LogEi e = log_expected_improvement(mean, sigma, best);
    g.resize(k);
    for (Eigen::Index j = 0; j < k; ++j)
      g[j] = -(e.d_mean * dmean[dims[j]] + e.d_sigma * dvar[dims[j]] / (2 * sigma));
    return -e.value;
  };
  LbfgsOptions opt;
  opt.max_iterations = 60;
  opt.gradient_tolerance = 1e-9;
  opt.value_tolerance = 1e-12;
  minimize_lbfgs(objective, z, VectorXd::Zero(k), VectorXd::Ones(k), opt);
  for (Eigen::Index j = 0; j < k; ++j) full[dims[j]] = z[j];
  return canonical(space, full);
}

// Best point over the enumerated parameters in `params` with the rest of x held: every
// combination when there are few, else one parameter at a time.
VectorXd refine_enumerated(const GaussianProcess& gp, double best, const SearchSpace& space, const VectorXd& x0,
                           const std::vector<size_t>& params) {
  size_t combos = 1;
  for (size_t i : params) combos = std::min(combos * space.choice_count(i), kMaxEnumeratedCombinations + 1);
  std::vector<VectorXd> trials;
  if (combos <= kMaxEnumeratedCombinations) {
    for (size_t c = 0; c < combos; ++c) {
      VectorXd x = x0;
      size_t rest = c;
      for (size_t i : params) {
        size_t n = space.choice_count(i);
        space.set_choice(std::span<double>(x.data(), static_cast<size_t>(x.size())), i, rest % n);
        rest /= n;
      }
      trials.push_back(canonical(space, x));
    }
  } else {
    VectorXd x = x0;
    double fx = log_ei_at(gp, best, x);
    for (size_t i : params) {
      for (size_t k = 0; k < space.choice_count(i); ++k) {
        VectorXd y = x;
        space.set_choice(std::span<double>(y.data(), static_cast<size_t>(y.size())), i, k);
        y = canonical(space, y);
        double fy = log_ei_at(gp, best, y);
        if (fy > fx) {
          x = y;
          fx = fy;
        }
      }
    }
    return x;
  }
  MatrixXd X(static_cast<Eigen::Index>(trials.size()), x0.size());
  for (size_t r = 0; r < trials.size(); ++r) X.row(static_cast<Eigen::Index>(r)) = trials[r].transpose();
  VectorXd scores = log_ei_batch(gp, best, X);
  Eigen::Index argmax;
  scores.maxCoeff(&argmax);
  return trials[static_cast<size_t>(argmax)];
}

ScoredPoint refine(const GaussianProcess& gp, double best, const SearchSpace& space, ScoredPoint start) {
  std::vector<size_t> continuous, enumerated;
  // Keeps x if it beats the current point.
  auto take_if_better = [&](const VectorXd& x) {
    double f = log_ei_at(gp, best, x);
    if (f <= start.log_ei) return false;
    start = {x, f};
    return true;
  };
  for (int round = 0; round < 3; ++round) {
    bool improved = false;
    active_params(space, start.x, continuous, enumerated);
    if (!continuous.empty()) improved |= take_if_better(refine_continuous(gp, best, space, start.x, continuous));
    active_params(space, start.x, continuous, enumerated);
    if (!enumerated.empty()) improved |= take_if_better(refine_enumerated(gp, best, space, start.x, enumerated));
    if (!improved || continuous.empty() || enumerated.empty()) break;
  }
  return start;
}

}  // namespace

VectorXd log_ei_batch(const GaussianProcess& gp, double best, const MatrixXd& X) {
  VectorXd mean, var;
  gp.predict(X, mean, var);
  VectorXd out(X.rows());
  for (Eigen::Index i = 0; i < X.rows(); ++i)
    out[i] = log_expected_improvement(mean[i], std::sqrt(std::max(var[i], 1e-24)), best).value;
  return out;
}

std::vector<ScoredPoint> maximize_log_ei(const GaussianProcess& gp, double best, const SearchSpace& space,
                                         const std::vector<VectorXd>& incumbents, const AcquisitionOptions& options) {
  const Eigen::Index D = static_cast<Eigen::Index>(space.dimensions());
  std::mt19937_64 rng(options.seed);
  Halton halton(space.dimensions(), options.seed);
  const int local = incumbents.empty() ? 0 : options.candidates / 4;
  MatrixXd X(options.candidates + local, D);
  for (int i = 0; i < options.candidates; ++i) {
    VectorXd x = Eigen::Map<VectorXd>(halton.point(static_cast<uint64_t>(i)).data(), D);
    X.row(i) = canonical(space, x).transpose();
  }
  // Perturbations of the incumbents at two scales: the optimum is usually near the best points.
  std::normal_distribution<double> normal;
  for (int i = 0; i < local; ++i) {
    VectorXd x = incumbents[static_cast<size_t>(i) % incumbents.size()];
    double scale = i % 2 ? 0.1 : 0.02;
    for (Eigen::Index d = 0; d < D; ++d) x[d] = std::clamp(x[d] + scale * normal(rng), 0.0, 1.0);
    X.row(options.candidates + i) = canonical(space, x).transpose();
  }
  VectorXd scores = log_ei_batch(gp, best, X);
  std::vector<Eigen::Index> order(static_cast<size_t>(X.rows()));
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](Eigen::Index a, Eigen::Index b) { return scores[a] > scores[b]; });

  std::vector<ScoredPoint> ranked;
  std::set<std::vector<double>> seen;
  auto add = [&](const ScoredPoint& p) {
    if (seen.insert(std::vector<double>(p.x.data(), p.x.data() + p.x.size())).second) ranked.push_back(p);
  };
  int refined = 0;
  for (Eigen::Index i : order) {
    if (refined >= options.refine) break;
    VectorXd x = X.row(i).transpose();
    if (seen.count(std::vector<double>(x.data(), x.data() + D))) continue;
    add(refine(gp, best, space, {x, scores[i]}));
    ++refined;
  }
  // The unrefined candidates follow, as fall-backs when the best are duplicates of past trials.
  for (Eigen::Index i : order) add({X.row(i).transpose(), scores[i]});
  std::stable_sort(ranked.begin(), ranked.end(), [](const ScoredPoint& a, const ScoredPoint& b) { return a.log_ei > b.log_ei; });
  return ranked;
}

}  // namespace kiln::tuning
