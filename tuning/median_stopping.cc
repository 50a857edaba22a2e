#include "tuning/median_stopping.h"

#include <algorithm>

#include "core/error.h"
#include "tuning/assignment.h"

namespace kiln::tuning {

std::optional<std::string> median_stopping_decision(const Curve& trial, const std::vector<Curve>& completed,
                                                    const EarlyStoppingSpec& rule, bool minimize) {
  if (trial.empty()) return std::nullopt;
  int64_t step = trial.back().first;
  if (step < rule.warmup_steps()) return std::nullopt;
  auto better = [minimize](double a, double b) { return minimize ? a < b : a > b; };
  double best = trial.front().second;
  for (const auto& [s, v] : trial)
    if (better(v, best)) best = v;
  std::vector<double> averages;
  for (const Curve& c : completed) {
    double sum = 0;
    int n = 0;
    for (const auto& [s, v] : c) {
      if (s > step) break;
      sum += v;
      ++n;
    }
    if (n) averages.push_back(sum / n);
  }
  if (static_cast<int>(averages.size()) < rule.min_completed_trials()) return std::nullopt;
  std::sort(averages.begin(), averages.end());
  size_t m = averages.size();
  double median = m % 2 ? averages[m / 2] : 0.5 * (averages[m / 2 - 1] + averages[m / 2]);
  if (!better(median, best)) return std::nullopt;
  return str_cat("median stopping rule at step ", step, ": best value ", format_number(best), " is worse than the median ",
                 format_number(median), " of ", m, " completed trials' running averages");
}

}  // namespace kiln::tuning
