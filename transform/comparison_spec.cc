#include "transform/comparison_spec.h"

#include "core/error.h"

namespace kiln::transform {

FeatureSpec comparison_spec(const TransformState& baseline) {
  FeatureSpec spec = baseline.spec();
  if (baseline.features_size() != spec.features_size())
    fail("transform state has ", baseline.features_size(), " features but its spec has ", spec.features_size());
  for (int i = 0; i < spec.features_size(); ++i) {
    FeatureColumn& f = *spec.mutable_features(i);
    if (f.has_categorical()) {
      VocabularySpec* v = f.mutable_categorical()->mutable_vocabulary();  // replaces a hash {}
      v->set_top_k(0);
      v->set_frequency_threshold(1);
    }
    if (f.has_bucketized() && f.bucketized().boundaries().empty()) {
      const FeatureState& fs = baseline.features(i);
      if (fs.boundaries().empty()) fail("feature '", f.name(), "': the transform state has no bucket boundaries");
      f.mutable_bucketized()->clear_num_quantile_buckets();
      f.mutable_bucketized()->mutable_boundaries()->CopyFrom(fs.boundaries());
    }
    if (f.missing().kind() == MissingPolicy::MEAN || f.missing().kind() == MissingPolicy::MEDIAN)
      f.mutable_missing()->set_kind(MissingPolicy::DEFAULT);
  }
  return spec;
}

}  // namespace kiln::transform
