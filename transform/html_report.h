#pragma once
// The data report of `kiln analyze --report FILE`: one self-contained HTML page describing each
// feature of a TransformState — its kind, count, missing values, min/max/mean/std and a histogram
// (numeric, from the quantile sketch) or its top values with the out-of-vocabulary share
// (categorical) — and, given the statistics of other data, both distributions side by side with
// each feature's distance from the data's (feature_distance(): L-infinity for categories,
// Jensen-Shannon divergence for numbers) and the features above a threshold marked.
//
// Self-contained: inline CSS and SVG, no script, no fonts or images to fetch; a
// Content-Security-Policy of default-src 'none' makes the browser refuse any load the page might
// attempt, so it reads the same offline, from a mail attachment or a CI artifact.
#include <string>

#include "proto/transform_state.pb.h"

namespace kiln::transform {

struct ReportOptions {
  std::string data_name = "data";        // the legend's names of the two data sets
  std::string compare_name = "compare";
  double drift_threshold = 0.01;         // a distance above it marks the feature
  int top_values = 20;                   // category bars per feature
  int histogram_bins = 30;
};

// The page for `data`, compared with `compare` when it is not null (features matched by name: a
// feature in one state only is an error naming it).
std::string html_report(const TransformState& data, const TransformState* compare, const ReportOptions& options);

}  // namespace kiln::transform
