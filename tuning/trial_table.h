#pragma once
// The trial table the driver prints as trials start and end, and --report prints in full:
//   trial  state      rmse        duration  params
//       3  COMPLETED  1.0712         41.2s  batch_size=64 learning_rate=0.0031
#include <string>
#include <vector>

#include "proto/study.pb.h"
#include "tuning/study_store.h"

namespace kiln::tuning {

std::string trial_table_header(const std::string& metric_tag);
// Parameters in the spec's declaration order; now: for the duration of a running trial.
std::string trial_table_row(const StudySpec& spec, const Trial& t, double now_seconds = 0);

// The best trial by value in the goal's direction (completed trials only); nullptr if none.
const Trial* best_trial(const std::vector<Trial>& trials, bool minimize);

// "best trial 7: rmse 1.07123  batch_size=64 ..." ("" when no trial completed).
std::string best_trial_line(const StudySpec& spec, const std::vector<Trial>& trials);
// "20 trials: 17 completed, 2 failed, 1 stopped, 0 running or queued"
std::string trial_counts_text(const std::vector<Trial>& trials);

// "suggestions: 12 by this driver, 3.1 ms each on average, 9.8 ms at most" for the suggestion
// times `seconds`, `whose` after the count ("" when there are none).
std::string suggestion_times_line(const std::vector<double>& seconds, const std::string& whose);

// "12.3s", "4m05s", "2h03m"
std::string format_duration(double seconds);
// A metric for reading: 6 significant digits.
std::string format_metric(double v);

}  // namespace kiln::tuning
