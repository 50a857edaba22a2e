#include "transform/sketch_histogram.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace kiln::transform {

std::vector<double> sketch_histogram(const QuantileSketch& sketch, double lo, double hi, int bins) {
  if (bins < 1) fail("histogram: ", bins, " bins (at least 1)");
  if (!(std::isfinite(lo) && std::isfinite(hi) && lo <= hi)) fail("histogram: bad range [", lo, ", ", hi, "]");
  std::vector<double> counts(static_cast<size_t>(bins), 0.0);
  const double width = (hi - lo) / bins;
  auto bin_of = [&](double x) {
    if (!(width > 0)) return size_t{0};
    return static_cast<size_t>(std::clamp(std::floor((x - lo) / width), 0.0, static_cast<double>(bins - 1)));
  };
  for (const QuantileSketch::Bucket& bucket : sketch.buckets()) {
    auto [low, high] = sketch.bounds(bucket);
    low = std::clamp(low, lo, hi);
    high = std::clamp(high, lo, hi);
    const auto count = static_cast<double>(bucket.count);
    // A bucket clipped to a point (the zero bucket, a range edge, a constant column) is a point.
    if (!(high - low > 0) || !(width > 0)) {
      counts[bin_of(low)] += count;
      continue;
    }
    const size_t first = bin_of(low), last = bin_of(high);
    for (size_t b = first; b <= last; ++b) {
      const double bin_low = lo + width * static_cast<double>(b);
      const double bin_high = b + 1 == counts.size() ? hi : bin_low + width;
      const double overlap = std::min(high, bin_high) - std::max(low, bin_low);
      if (overlap > 0) counts[b] += count * overlap / (high - low);
    }
  }
  return counts;
}

}  // namespace kiln::transform
