#pragma once
// The FeatureSpec that other data (eval data, rows logged from serving) is analyzed with to compare
// it with a baseline's TransformState: `kiln analyze --compare DATA`.
#include "proto/transform_state.pb.h"

namespace kiln::transform {

// The baseline's spec — the same columns, CSV format, label and row screening (DROP_ROW kept), so
// the other data's rows are the ones training or serving would use — except that:
// - every categorical feature, hashed ones too, keeps every value it sees (a vocabulary with no
//   top_k and threshold 1): the other side's category shares are exact (category_shares());
// - bucketized features take the baseline's boundaries and MEAN or MEDIAN imputation becomes
//   DEFAULT: no quantile passes, and a feature without values in the other data is drift to
//   report, not an error.
FeatureSpec comparison_spec(const TransformState& baseline);

}  // namespace kiln::transform
