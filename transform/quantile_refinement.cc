#include "transform/quantile_refinement.h"

#include <algorithm>
#include <bit>
#include <cmath>

#include "core/error.h"
#include "proto/analysis_partial.pb.h"

namespace kiln::transform {

uint64_t order_key(double x) {
  const uint64_t bits = std::bit_cast<uint64_t>(x == 0 ? 0.0 : x);
  constexpr uint64_t kSign = uint64_t{1} << 63;
  return (bits & kSign) ? ~bits : bits | kSign;
}

double from_order_key(uint64_t key) {
  constexpr uint64_t kSign = uint64_t{1} << 63;
  return std::bit_cast<double>((key & kSign) ? key & ~kSign : ~key);
}

RefinementHistogram::RefinementHistogram(std::vector<KeyInterval> intervals)
    : intervals_(std::move(intervals)), below_(intervals_.size(), 0), bins_(intervals_.size() * kBins) {
  for (const KeyInterval& i : intervals_) KILN_CHECK(i.low <= i.high, "empty key interval");
}

int RefinementHistogram::bin_of(size_t interval, uint64_t key) const {
  const KeyInterval& i = intervals_[interval];
  // Width up to 2^64: 128-bit arithmetic, bins of equal key width (the last may be shorter).
  const unsigned __int128 width = static_cast<unsigned __int128>(i.high - i.low) + 1;
  return static_cast<int>(static_cast<unsigned __int128>(key - i.low) * kBins / width);
}

void RefinementHistogram::add_all(std::span<const double> values) {
  for (double x : values) {
    const uint64_t key = order_key(x);
    for (size_t k = 0; k < intervals_.size(); ++k) {
      const KeyInterval& i = intervals_[k];
      if (key < i.low) {
        ++below_[k];
      } else if (key <= i.high) {
        Bin& b = bins_[k * kBins + static_cast<size_t>(bin_of(k, key))];
        ++b.count;
        b.min_key = std::min(b.min_key, key);
        b.max_key = std::max(b.max_key, key);
      }
    }
  }
}

void RefinementHistogram::merge(const RefinementHistogram& other) {
  if (intervals_ != other.intervals_) fail("cannot merge refinement histograms of different intervals");
  for (size_t k = 0; k < below_.size(); ++k) below_[k] += other.below_[k];
  for (size_t b = 0; b < bins_.size(); ++b) {
    bins_[b].count += other.bins_[b].count;
    bins_[b].min_key = std::min(bins_[b].min_key, other.bins_[b].min_key);
    bins_[b].max_key = std::max(bins_[b].max_key, other.bins_[b].max_key);
  }
}

void RefinementHistogram::to_proto(RefinementHistogramState* state) const {
  state->Clear();
  for (size_t k = 0; k < intervals_.size(); ++k) {
    state->add_low(intervals_[k].low);
    state->add_high(intervals_[k].high);
    state->add_below(below_[k]);
  }
  // Only non-empty bins travel: a pass's intervals are mostly empty far from the target.
  for (size_t b = 0; b < bins_.size(); ++b) {
    if (bins_[b].count == 0) continue;
    state->add_bin(b);
    state->add_count(bins_[b].count);
    state->add_min_key(bins_[b].min_key);
    state->add_max_key(bins_[b].max_key);
  }
}

RefinementHistogram RefinementHistogram::from_proto(const RefinementHistogramState& s) {
  if (s.low_size() != s.high_size() || s.low_size() != s.below_size()) fail("RefinementHistogramState: ragged intervals");
  std::vector<KeyInterval> intervals;
  for (int k = 0; k < s.low_size(); ++k) {
    if (s.low(k) > s.high(k)) fail("RefinementHistogramState: empty interval");
    intervals.push_back({s.low(k), s.high(k)});
  }
  RefinementHistogram h(std::move(intervals));
  for (int k = 0; k < s.below_size(); ++k) h.below_[static_cast<size_t>(k)] = s.below(k);
  if (s.count_size() != s.bin_size() || s.min_key_size() != s.bin_size() || s.max_key_size() != s.bin_size())
    fail("RefinementHistogramState: ragged bins");
  for (int j = 0; j < s.bin_size(); ++j) {
    if (s.bin(j) >= h.bins_.size() || s.count(j) <= 0 || s.min_key(j) > s.max_key(j))
      fail("RefinementHistogramState: bad bin ", s.bin(j));
    h.bins_[s.bin(j)] = {s.count(j), s.min_key(j), s.max_key(j)};
  }
  return h;
}

RankQuantiles::RankQuantiles(int64_t n, double min, double max, int64_t allowed, const DistinctValues& distinct,
                             const QuantileSketch& sketch, std::vector<int64_t> ranks, std::vector<bool> required)
    : min_key_(order_key(min)), max_key_(order_key(max)), allowed_(allowed) {
  KILN_CHECK(n > 0 && ranks.size() == required.size(), "RankQuantiles: n ", n, ", ", ranks.size(), " ranks");
  for (size_t k = 0; k < ranks.size(); ++k) {
    KILN_CHECK(ranks[k] >= 0 && ranks[k] < n, "rank ", ranks[k], " of ", n);
    Target t;
    t.rank = ranks[k];
    t.required = required[k];
    targets_.push_back(t);
  }
  auto answer = [](Target& t, double value, int64_t error) {
    t.resolved = true;
    t.value = value;
    t.rank_error = error;
  };
  if (!distinct.overflowed()) {
    KILN_CHECK(distinct.distinct() > 0, "RankQuantiles: no distinct values for ", n, " values");
    const auto values = distinct.sorted();
    for (Target& t : targets_) {
      int64_t cumulative = 0;
      for (const auto& [value, count] : values) {
        cumulative += count;
        if (t.rank < cumulative) {
          answer(t, value, 0);
          break;
        }
      }
      KILN_CHECK(t.resolved, "distinct counts sum to less than ", n);
    }
    return;
  }
  const std::vector<QuantileSketch::Bucket> buckets = sketch.buckets();
  for (Target& t : targets_) {
    if (t.rank == 0 || min == max) {
      answer(t, min, 0);
      continue;
    }
    if (t.rank == n - 1) {
      answer(t, max, 0);
      continue;
    }
    int64_t cumulative = 0;
    const QuantileSketch::Bucket* bucket = nullptr;
    for (const QuantileSketch::Bucket& b : buckets) {
      cumulative += b.count;
      if (t.rank < cumulative) {
        bucket = &b;
        break;
      }
    }
    KILN_CHECK(bucket, "sketch counts sum to less than ", n);
    if (bucket->sign == 0) {  // zeros are counted exactly
      answer(t, 0.0, 0);
      continue;
    }
    const double representative = bucket->sign * sketch.representative(bucket->index);
    if (bucket->count <= allowed_ || !t.required) {
      answer(t, std::clamp(representative, min, max), bucket->count);
      continue;
    }
    // The bucket's value range widened by a neighbouring bucket on each side, so that the
    // refinement does not depend on where exactly std::exp puts the bucket's edges.
    const double a = bucket->sign * sketch.representative(bucket->index - 1);
    const double b = bucket->sign * sketch.representative(bucket->index + 1);
    t.interval = {std::max(min_key_, order_key(std::min(a, b))), std::min(max_key_, order_key(std::max(a, b)))};
    if (t.interval.low > t.interval.high) t.interval = {min_key_, max_key_};
  }
}

bool RankQuantiles::done() const {
  return std::all_of(targets_.begin(), targets_.end(), [](const Target& t) { return t.resolved; });
}

std::vector<KeyInterval> RankQuantiles::intervals() const {
  std::vector<KeyInterval> result;
  for (const Target& t : targets_)
    if (!t.resolved && std::find(result.begin(), result.end(), t.interval) == result.end()) result.push_back(t.interval);
  return result;
}

void RankQuantiles::refine(const RefinementHistogram& h) {
  ++passes_;
  KILN_CHECK(passes_ <= 8, "quantile refinement did not converge");  // 6 passes suffice (header)
  for (Target& t : targets_) {
    if (t.resolved) continue;
    const auto it = std::find(h.intervals().begin(), h.intervals().end(), t.interval);
    KILN_CHECK(it != h.intervals().end(), "no histogram for a target's interval");
    const auto k = static_cast<size_t>(it - h.intervals().begin());
    int64_t cumulative = h.below(k);
    bool found = false;
    if (t.rank >= cumulative) {
      for (int b = 0; b < RefinementHistogram::kBins; ++b) {
        const RefinementHistogram::Bin& bin = h.bin(k, b);
        if (t.rank >= cumulative + bin.count) {
          cumulative += bin.count;
          continue;
        }
        found = true;
        if (bin.min_key == bin.max_key || bin.count - 1 <= allowed_) {
          t.resolved = true;
          t.value = from_order_key(bin.min_key);
          t.rank_error = bin.min_key == bin.max_key ? 0 : bin.count - 1;
        } else {
          t.interval = {bin.min_key, bin.max_key};
        }
        break;
      }
    }
    // Outside the interval (the sketch's neighbours should always contain it): the whole range.
    if (!found) t.interval = {min_key_, max_key_};
  }
}

}  // namespace kiln::transform
