#pragma once
// Human-readable views of a TransformState: the per-feature summary `kiln analyze` prints, and the
// per-feature distances between two states (`kiln analyze --compare`): L-infinity over category
// frequencies, Jensen-Shannon divergence over numeric histograms, as TFDV reports them.
#include <string>
#include <vector>

#include "proto/transform_state.pb.h"

namespace kiln::transform {

std::string summarize_state(const TransformState& state);

struct FeatureDistance {
  std::string feature;
  std::string measure;  // "L-inf" or "JS"
  double value = 0;
};
// Features are matched by name; a feature present in only one state is an error naming it.
std::vector<FeatureDistance> compare_states(const TransformState& a, const TransformState& b);
std::string format_distances(const std::vector<FeatureDistance>& d);

}  // namespace kiln::transform
