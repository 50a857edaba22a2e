#pragma once
// Quantiles within a rank-error bound, for any column, identical for any sharding of the rows.
//
// Why: the quantile sketch (transform/quantile_sketch.h) bounds the *relative value* error, which
// is useless for values far from zero with a narrow spread (years, Unix timestamps, latitudes): a
// sketch bucket of 1% relative width can hold every row. tf.Transform bounds the rank error
// instead; so does Kiln, without giving up exact, order-independent merging:
//
// 1. Pass one (the analysis pass) keeps, per numeric column, exact min/max, the sketch and exact
//    counts of up to DistinctValues::kDefaultLimit distinct values. With few distinct values the
//    quantiles are exact. Otherwise a target rank whose sketch bucket holds at most `allowed`
//    rows is answered from the sketch (the bucket's representative, clamped to [min, max]).
// 2. Each remaining target gets a value interval (its sketch bucket, widened by a neighbour on
//    each side). A refinement pass over the same rows counts, per interval, the values below it
//    and the values in each of kBins equal sub-intervals of the order-preserving 64-bit key space
//    (with each sub-interval's smallest and largest value). The sub-interval holding the target
//    rank either holds at most allowed + 1 values or one distinct value — its smallest value is
//    the answer — or becomes the next interval. Each pass narrows the key range by kBins, so
//    after at most 6 passes a sub-interval holds a single value: the loop always ends.
//
// Every count is an integer and every min/max is exact, so each pass's merged histograms, and so
// every answer, depend only on the rows, not on how they were split across threads, files or
// ranks. The answer v for rank r (0-based, ascending) has a rank error e <= allowed: r lies within
// e of [count(x < v), count(x <= v) - 1], v's own ranks (r's value itself has error 0). Each
// answer reports its bound (rank_error). Answers always lie inside [min, max].
#include <cstdint>
#include <span>
#include <vector>

#include "transform/distinct_values.h"
#include "transform/quantile_sketch.h"

namespace kiln {
class RefinementHistogramState;
}

namespace kiln::transform {

// The order-preserving bijection between finite doubles (-0.0 as 0.0) and unsigned 64-bit keys.
uint64_t order_key(double x);
double from_order_key(uint64_t key);

struct KeyInterval {
  uint64_t low = 0, high = 0;  // inclusive
  bool operator==(const KeyInterval&) const = default;
};

// One refinement pass's counts for one column: for each interval, the values below it and, in
// each of kBins sub-intervals, how many values fell there and the smallest and largest key.
class RefinementHistogram {
 public:
  static constexpr int kBins = 4096;

  explicit RefinementHistogram(std::vector<KeyInterval> intervals);

  void add_all(std::span<const double> values);
  // Exact. Throws kiln::Error when the intervals differ.
  void merge(const RefinementHistogram& other);

  struct Bin {
    int64_t count = 0;
    uint64_t min_key = ~uint64_t{0};
    uint64_t max_key = 0;
  };
  const std::vector<KeyInterval>& intervals() const { return intervals_; }
  int64_t below(size_t interval) const { return below_[interval]; }
  const Bin& bin(size_t interval, int b) const { return bins_[interval * kBins + static_cast<size_t>(b)]; }

  void to_proto(RefinementHistogramState* state) const;
  static RefinementHistogram from_proto(const RefinementHistogramState& state);

 private:
  int bin_of(size_t interval, uint64_t key) const;

  std::vector<KeyInterval> intervals_;
  std::vector<int64_t> below_;
  std::vector<Bin> bins_;  // kBins per interval
};

// The values of one column at a set of ranks, resolved as described above.
class RankQuantiles {
 public:
  struct Target {
    int64_t rank = 0;
    bool required = false;  // refine with passes over the data until within `allowed`
    bool resolved = false;
    double value = 0;
    int64_t rank_error = 0;  // a bound on the answer's rank error, in rows
    KeyInterval interval;    // while unresolved
  };

  // n values (n > 0) between min and max; `allowed`: the rank error accepted. Targets that are
  // not required are answered after pass one whatever their error (reported in rank_error).
  RankQuantiles(int64_t n, double min, double max, int64_t allowed, const DistinctValues& distinct,
                const QuantileSketch& sketch, std::vector<int64_t> ranks, std::vector<bool> required);

  bool done() const;
  // The distinct intervals the next pass must count (empty when done()).
  std::vector<KeyInterval> intervals() const;
  // Narrows or resolves every unresolved target from a pass over all the rows.
  void refine(const RefinementHistogram& histogram);

  const std::vector<Target>& targets() const { return targets_; }
  int passes() const { return passes_; }

  // The rank-error bound in rows for n values: 0.1% of them, rounded down (so exact below 1000).
  static int64_t allowed_error(int64_t n) { return n / 1000; }

 private:
  uint64_t min_key_, max_key_;
  int64_t allowed_;
  int passes_ = 0;
  std::vector<Target> targets_;
};

}  // namespace kiln::transform
