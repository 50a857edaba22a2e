#pragma once
// An equal-width histogram of the values a quantile sketch holds, for the data report's charts.
//
// The sketch keeps counts per log-spaced bucket (relative width 2 alpha, 1% by default), not the
// values; each bucket's count is spread over the bins its value range covers, in proportion to the
// overlap, after clipping the range to [lo, hi] (the column's exact min and max). Bins much wider
// than the buckets are exact up to the bins the boundary buckets straddle; for a narrow column far
// from zero (latitudes, years) a bucket can span several bins and the histogram is the smoothed
// one the sketch allows.
#include <vector>

#include "transform/quantile_sketch.h"

namespace kiln::transform {

// `bins` counts (summing to sketch.count(), up to rounding) over [lo, hi] cut into equal widths; with lo == hi
// every value lands in the first bin. Throws kiln::Error unless bins >= 1 and lo <= hi, finite.
std::vector<double> sketch_histogram(const QuantileSketch& sketch, double lo, double hi, int bins);

}  // namespace kiln::transform
