#pragma once
// The default suggester (Vizier's GP bandit, BoTorch's LogEI recipe):
//  1. the first `initial_trials` trials are points of a scrambled Halton sequence (trial number =
//     sequence index, so concurrent drivers still spread out);
//  2. afterwards a GP is fit to the observed trials (outputs standardized; failed trials count
//     as the worst value seen, so the search steers away from configurations that crash), and
//     conditioned also on the pending trials with the best value as a constant liar, so that
//     parallel suggestions do not pile onto one spot;
//  3. LogEI is maximized over the encoding, and the best point no trial has yet is returned.
#include <optional>

#include "tuning/gaussian_process.h"
#include "tuning/suggester.h"

namespace kiln::tuning {

class GpBandit final : public Suggester {
 public:
  explicit GpBandit(const StudySpec& spec);
  std::optional<Assignment> suggest(const TrialHistory& history) override;

  int initial_trials() const { return initial_trials_; }
  // The hyper-parameters of the last fit (a warm start for the next).
  const std::optional<GpHyperparameters>& last_fit() const { return last_fit_; }

 private:
  SearchSpace space_;
  bool maximize_;
  uint64_t seed_;
  int initial_trials_;
  int candidates_;
  std::optional<GpHyperparameters> last_fit_;
};

}  // namespace kiln::tuning
