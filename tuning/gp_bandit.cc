#include "tuning/gp_bandit.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "tuning/acquisition_optimizer.h"
#include "tuning/gp_fit.h"
#include "tuning/halton.h"

namespace kiln::tuning {

using Eigen::MatrixXd;
using Eigen::VectorXd;

namespace {

constexpr size_t kIncumbents = 5;

VectorXd encode(const SearchSpace& space, const Assignment& a) {
  std::vector<double> x = space.encode(a);
  return Eigen::Map<VectorXd>(x.data(), static_cast<Eigen::Index>(x.size()));
}

}  // namespace

GpBandit::GpBandit(const StudySpec& spec)
    : space_(spec),
      maximize_(spec.goal() == StudySpec::MAXIMIZE),
      seed_(spec.seed()),
      initial_trials_(spec.gp_bandit().initial_trials() > 0
                          ? spec.gp_bandit().initial_trials()
                          : std::max(4, std::min(10, static_cast<int>(space_.dimensions()) + 2))),
      candidates_(spec.gp_bandit().candidates()) {}

std::optional<Assignment> GpBandit::suggest(const TrialHistory& h) {
  std::set<std::string> used = used_keys(h);
  uint64_t seed = mix_seed(seed_, h.trial_number);
  if (h.trial_number < initial_trials_ || h.observed.size() < 2) {
    Halton halton(space_.dimensions(), seed_);
    Assignment a = space_.decode(halton.point(static_cast<uint64_t>(h.trial_number)));
    if (!used.count(key_of(a))) return a;
    return random_unused(space_, used, seed);
  }
  // Observations, as minimization.
  const Eigen::Index D = static_cast<Eigen::Index>(space_.dimensions());
  const Eigen::Index n_obs = static_cast<Eigen::Index>(h.observed.size());
  const Eigen::Index n_real = n_obs + static_cast<Eigen::Index>(h.failed.size());
  const Eigen::Index n_all = n_real + static_cast<Eigen::Index>(h.pending.size());
  MatrixXd X(n_all, D);
  VectorXd y(n_real);
  for (Eigen::Index i = 0; i < n_obs; ++i) {
    X.row(i) = encode(space_, h.observed[i].params).transpose();
    y[i] = maximize_ ? -h.observed[i].value : h.observed[i].value;
  }
  double worst = y.head(n_obs).maxCoeff();
  for (size_t i = 0; i < h.failed.size(); ++i) {
    X.row(n_obs + static_cast<Eigen::Index>(i)) = encode(space_, h.failed[i]).transpose();
    y[n_obs + static_cast<Eigen::Index>(i)] = worst;
  }
  double mean = y.mean();
  double sd = std::sqrt((y.array() - mean).square().mean());
  if (!(sd > 1e-12 * std::max(1.0, std::fabs(mean)))) sd = 1;
  VectorXd ys = (y.array() - mean) / sd;

  GpFitOptions fit;
  fit.seed = seed;
  fit.starts = n_real > 100 ? 3 : 4;
  last_fit_ = fit_gp_hyperparameters(X.topRows(n_real), ys, last_fit_, fit);

  // Pending trials as constant liars at the incumbent's value.
  double best = ys.head(n_obs).minCoeff();
  VectorXd y_all(n_all);
  y_all << ys, VectorXd::Constant(n_all - n_real, best);
  for (size_t i = 0; i < h.pending.size(); ++i) X.row(n_real + static_cast<Eigen::Index>(i)) = encode(space_, h.pending[i]).transpose();
  GaussianProcess gp(X, y_all, *last_fit_);

  std::vector<Eigen::Index> order(static_cast<size_t>(n_obs));
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](Eigen::Index a, Eigen::Index b) { return ys[a] < ys[b]; });
  std::vector<VectorXd> incumbents;
  for (size_t i = 0; i < std::min(kIncumbents, order.size()); ++i) incumbents.push_back(X.row(order[i]).transpose());

  AcquisitionOptions acq;
  acq.candidates = candidates_;
  acq.seed = seed;
  for (const ScoredPoint& p : maximize_log_ei(gp, best, space_, incumbents, acq)) {
    Assignment a = space_.decode(std::span<const double>(p.x.data(), static_cast<size_t>(p.x.size())));
    if (!used.count(key_of(a))) return a;
  }
  return random_unused(space_, used, seed);
}

}  // namespace kiln::tuning
