#pragma once
// Drift of live raw inputs against the training statistics recorded in the TransformState, per
// feature and with the measures of `kiln analyze --compare`: Jensen-Shannon divergence between the
// numeric histograms (live values go into a quantile sketch of the training sketch's alpha), and
// L-infinity between category frequencies (the training vocabulary plus one "other" bucket).
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "proto/transform_state.pb.h"
#include "runtime/input_schema.h"
#include "transform/quantile_sketch.h"
#include "transform/raw_rows.h"

namespace kiln::runtime {

class DriftMonitor {
 public:
  DriftMonitor(const TransformState& state, const InputSchema& schema);
  ~DriftMonitor();
  // Adds a request's raw values (columns in schema order). Thread-safe.
  void observe(const transform::RawRows& rows);

  struct Drift {
    std::string feature;
    std::string measure;  // "js" or "linf"
    double value = 0;
    int64_t live_count = 0;
    int64_t oov_count = -1;  // vocabulary features: live values outside the training vocabulary
  };
  std::vector<Drift> drift() const;
  // kiln_feature_drift{LABELS,feature,measure} lines to `drift`,
  // kiln_feature_live_values_total{LABELS,feature} lines to `counts`, and
  // kiln_feature_oov_values_total{LABELS,feature} lines to `oov` (families stay grouped).
  void render(std::string& drift, std::string& counts, std::string& oov, const std::string& labels) const;

 private:
  struct Feature;
  mutable std::mutex mutex_;
  std::vector<std::unique_ptr<Feature>> features_;
};

}  // namespace kiln::runtime
