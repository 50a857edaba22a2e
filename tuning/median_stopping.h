#pragma once
// The median stopping rule (Golovin et al., "Google Vizier", KDD 2017): stop a running trial at
// step s when its best value so far is strictly worse than the median, over completed trials,
// of their running averages up to step s. Needs `min_completed_trials` completed trials that
// reported by step s, and never acts before `warmup_steps`.
#include <optional>
#include <string>
#include <vector>

#include "proto/study.pb.h"
#include "tuning/metrics_reader.h"

namespace kiln::tuning {

using Curve = std::vector<MetricPoint>;  // sorted by step

// The reason to stop (for the trial's record) or nullopt to let it run.
std::optional<std::string> median_stopping_decision(const Curve& trial, const std::vector<Curve>& completed,
                                                    const EarlyStoppingSpec& rule, bool minimize);

}  // namespace kiln::tuning
