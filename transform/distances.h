#pragma once
// Distances between two analyzed distributions, for `kiln analyze --compare` (training data
// against new data) and the server's drift monitor (training statistics against served rows).
// Both are deterministic: equal inputs give bit-identical outputs. When exactly one side is empty
// the distributions cannot be compared and the distance is the maximum, 1; two empty sides are 0.
#include <vector>

#include "proto/transform_state.pb.h"
#include "transform/quantile_sketch.h"
#include "transform/vocabulary_counter.h"

namespace kiln::transform {

// max over values v of |count_a(v) / total_a - count_b(v) / total_b|, in [0, 1].
double l_infinity_distance(const VocabularyCounter& a, const VocabularyCounter& b);

// The shares of two analyzed datasets over a baseline's categories: one per value the baseline
// kept in its vocabulary (in its order), then one for every other value (the baseline's
// out-of-vocabulary bucket), as the server's drift monitor counts live values. Why not the union
// of both vocabularies: each side's kept vocabulary is cut by its own top_k and
// frequency_threshold, so a value kept on one side only would be compared with 0 while its mass
// sits in the other side's OOV count. `other`'s values are looked up in its own kept vocabulary:
// the shares are exact when it kept every value (oov_count 0, as `kiln analyze --compare DATA`
// analyzes the other data); a baseline value it did not keep counts 0 there.
struct CategoryShares {
  std::vector<double> baseline, other;  // each sums to 1, or is all 0 for a side without values
  int64_t baseline_total = 0, other_total = 0;
};
CategoryShares category_shares(const CategoricalStats& baseline, const CategoricalStats& other);

// max_k |baseline[k] - other[k]|, in [0, 1]; 1 when exactly one side has no values.
double l_infinity_distance(const CategoryShares& shares);

// Jensen-Shannon divergence, log base 2 (so in [0, 1]), between the bucket frequencies of two
// sketches of equal alpha (kiln::Error otherwise): 0 for identical distributions, 1 for disjoint
// ones.
//
// With max_bins > 0 the union of the sketches' buckets is first coarsened: adjacent buckets (in
// value order) are joined until each bin holds at least 1 / max_bins of the mixture (a + b) / 2,
// so there are at most about max_bins bins. Why: with alpha = 0.005 a column can spread over
// thousands of buckets, and JS over fine buckets measures sampling noise rather than drift: two
// samples of 10^4 rows from one lognormal (sigma 2) score 0.044 on the fine buckets and 0.003 on
// 100 bins, while a shift of the log-mean by 0.5 scores 0.058 and 0.016. Equal-mass bins also keep
// the statistic comparable across columns. Coarsening never raises the divergence; disjoint supports
// stay at 1 unless a bin straddles the gap between them. max_bins = 0 uses the sketch buckets.
double jensen_shannon_divergence(const QuantileSketch& a, const QuantileSketch& b, int max_bins = 100);

}  // namespace kiln::transform
