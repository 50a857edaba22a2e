#pragma once
// Human-readable views of a TransformState: the per-feature summary `kiln analyze` prints, and the
// per-feature distances between two states (`kiln analyze --compare`): L-infinity over category
// shares, Jensen-Shannon divergence over numeric histograms, as TFDV reports them.
#include <optional>
#include <string>
#include <vector>

#include "proto/transform_state.pb.h"

namespace kiln::transform {

// "numeric", "bucketized", "vocabulary", "hashed" or "crossed".
const char* feature_kind(const FeatureColumn& f);

std::string summarize_state(const TransformState& state);

struct FeatureDistance {
  std::string feature;
  std::string measure;  // "L-inf" or "JS"
  double value = 0;
};
// The distance of one feature's statistics from a baseline's: Jensen-Shannon divergence between
// numeric sketches, L-infinity over the baseline's category shares (category_shares() in
// transform/distances.h); none for a feature without statistics (crossed). A feature whose kinds
// or sketch accuracies differ is an error naming it.
std::optional<FeatureDistance> feature_distance(const FeatureState& baseline, const FeatureState& other);
// `a`'s features in order, each with `b`'s feature of the same name (one in a single state only is
// an error naming it), then the labels when both states have one.
struct FeaturePair {
  const FeatureState* a;
  const FeatureState* b;
  bool label = false;
};
std::vector<FeaturePair> match_features(const TransformState& a, const TransformState& b);
// feature_distance() of each matched pair, `a` the baseline; the label's is named "NAME (label)".
std::vector<FeatureDistance> compare_states(const TransformState& a, const TransformState& b);
// One line per feature; those whose distance is above `threshold` end in "over THRESHOLD".
std::string format_distances(const std::vector<FeatureDistance>& d, double threshold);

}  // namespace kiln::transform
