#pragma once
// The mergeable analyzers of `kiln analyze`. Each thread, file chunk or MPI rank accumulates its
// part of the rows into its own instances, and the parts are merged in any grouping and order:
// every analyzer's result is bit-identical for any such split, because each one keeps exact
// integer state (exact sums, bucket counts, value counts) and rounds only when asked for a
// statistic. Each has to_proto/from_proto (proto/analyzer_state.proto, and QuantileSketchState in
// proto/transform_state.proto) that carry the full state, for MPI exchange.
#include "transform/distances.h"           // L-infinity and Jensen-Shannon between two analyses
#include "transform/distinct_values.h"     // exact counts of up to 4,096 distinct numbers
#include "transform/exact_sum.h"           // exact sum of doubles
#include "transform/moments.h"             // count, mean, variance, min, max
#include "transform/quantile_refinement.h" // quantiles with rank error <= 0.1% (refinement passes)
#include "transform/quantile_sketch.h"     // quantiles with relative error alpha
#include "transform/stable_hash.h"         // the one frozen 64-bit hash
#include "transform/vocabulary_counter.h"  // string counts, top_k / frequency threshold
