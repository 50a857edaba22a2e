#pragma once
// kiln tune --report: the study as text (spec summary, every trial, the best), a CSV with one
// row per trial, and a PNG plot of the objective per trial with the best so far. Files are
// written atomically.
#include <string>
#include <vector>

#include "proto/study.pb.h"
#include "tuning/study_store.h"

namespace kiln::tuning {

std::string study_report_text(const StudySpec& spec, const std::vector<Trial>& trials);

// number,state,<tag>,best_so_far,duration_seconds,suggestion_seconds,attempts,exit_code,
// <one column per param>,reason (suggestion_seconds empty where unknown)
std::string study_csv(const StudySpec& spec, const std::vector<Trial>& trials);

// The plot's PNG bytes: completed trials as dots, stopped ones hollow, failed ones as crosses on
// the axis, and the best-so-far curve.
std::string study_plot_png(const StudySpec& spec, const std::vector<Trial>& trials);

}  // namespace kiln::tuning
