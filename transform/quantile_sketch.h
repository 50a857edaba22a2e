#pragma once
// QuantileSketch: a mergeable quantile sketch with relative accuracy alpha (DDSketch, Masson et
// al., VLDB 2019), deterministic for any sharding of the rows.
//
// A value x > 0 goes to bucket i = ceil(log_gamma(x)), gamma = (1 + alpha) / (1 - alpha), i.e.
// gamma^(i-1) < x <= gamma^i; a negative value goes to the bucket of |x| in a mirrored store;
// zeros are counted apart. The counts are integers, so merging is exact and order-independent:
// any split of the rows, merged in any grouping and order, gives the very same sketch.
//
// quantile(q) answers with the representative 2 gamma^i / (gamma + 1) of the bucket holding the
// sorted value of 0-based rank floor(q (n - 1)) (the "lower" rank convention of DDSketch and of
// numpy's method="lower"); it is within relative error alpha of that value (0 is exact).
//
// The bucket index uses deterministic_log, not libm's log, so a value lands in the same bucket on
// every platform and sketches built anywhere merge exactly. Its error (< 2e-13 in the logarithm)
// moves the bucket boundaries by a relative 2e-13 at most: the accuracy bound is alpha + 2e-13.
// quantile() computes representatives with std::exp; only query results, never the state, depend
// on libm. add() computes the same index without the logarithm for almost every value
// (transform/sketch_index.h).
//
// Memory: a store is a dense array over the index range seen, 8 bytes per bucket; with the
// default alpha one decade of values spans about 230 buckets (the whole double range ~145k).
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <span>
#include <utility>
#include <vector>

#include "transform/deterministic_log.h"
#include "transform/sketch_index.h"

namespace kiln {
class QuantileSketchState;
}

namespace kiln::transform {

class QuantileSketch {
 public:
  static constexpr double kDefaultAlpha = 0.005;

  // alpha in [1e-4, 0.5]: the relative error bound. Throws kiln::Error otherwise.
  explicit QuantileSketch(double alpha = kDefaultAlpha);

  // x must be finite (the caller treats NaN and infinities as errors or missing values).
  void add(double x) {
    const double magnitude = std::fabs(x);
    if (magnitude > 0 && magnitude <= std::numeric_limits<double>::max()) [[likely]] {
      // Indexing by the sign bit, not branching on it: columns of mixed signs would mispredict.
      stores_[std::signbit(x)].increment(index_(magnitude), 1);
    } else if (magnitude == 0) {
      ++zero_count_;
    } else {
      reject_non_finite(x);
    }
    ++count_;
  }

  // add(x) for each x, faster: the indices of a group of values first, then the counts.
  void add_all(std::span<const double> values);

  // Exact. Throws kiln::Error when the alphas differ.
  void merge(const QuantileSketch& other);

  double alpha() const { return alpha_; }
  int64_t count() const { return count_; }
  int64_t zero_count() const { return zero_count_; }

  // q in [0, 1]; NaN when the sketch is empty.
  double quantile(double q) const;

  // The bucket of a positive finite value and the representative value of a bucket.
  int32_t index(double magnitude) const { return index_.exact(magnitude); }
  double representative(int32_t index) const;

  // One non-empty bucket: sign -1 (the mirrored store: values -gamma^index .. -gamma^(index-1)),
  // 0 (zeros; index 0) or +1.
  struct Bucket {
    int sign;
    int32_t index;
    int64_t count;
  };
  // Every non-empty bucket in ascending order of value.
  std::vector<Bucket> buckets() const;
  // The values a bucket holds, lowest and highest (up to rounding; the zero bucket: 0 and 0).
  std::pair<double, double> bounds(const Bucket& bucket) const;

  bool operator==(const QuantileSketch& other) const;

  // Buckets sorted by index, zero-count buckets left out: equal sketches give equal states.
  void to_proto(QuantileSketchState* state) const;
  // Throws kiln::Error when the state is malformed.
  static QuantileSketch from_proto(const QuantileSketchState& state);

 private:
  // Counts over a contiguous index range that grows (with slack) to hold any index added.
  class Store {
   public:
    void increment(int32_t index, int64_t n) {
      // offset_ is 32-bit so that, by type, the int64 count stores cannot alias it: the compiler
      // keeps it in a register instead of reloading it behind every store.
      const auto slot = static_cast<uint32_t>(index - offset_);
      if (slot < counts_.size()) [[likely]]
        counts_[slot] += n;
      else
        grow_and_add(index, n);
    }
    // increment(indices[k], 1) for k < n.
    void increment_each(const int32_t* indices, size_t n);
    void merge(const Store& other);
    // Calls f(index, count) for every non-zero count, ascending (or descending) index.
    template <typename F>
    void for_each(F&& f, bool descending = false) const {
      const auto size = static_cast<int64_t>(counts_.size());
      for (int64_t k = 0; k < size; ++k) {
        const int64_t slot = descending ? size - 1 - k : k;
        if (counts_[slot] != 0) f(static_cast<int32_t>(offset_ + slot), counts_[slot]);
      }
    }
    bool operator==(const Store& other) const;

   private:
    void grow_and_add(int32_t index, int64_t n);
    std::vector<int64_t> counts_;
    int32_t offset_ = 0;  // the index of counts_[0]
  };

  static constexpr int kPositive = 0, kNegative = 1;  // std::signbit

  [[noreturn]] static void reject_non_finite(double x);

  double alpha_;
  double gamma_;
  double log_gamma_;
  double inverse_log_gamma_;
  SketchIndex index_{1.0};  // index() without the logarithm, for add()
  Store stores_[2];         // [kPositive], [kNegative] (by magnitude)
  int64_t zero_count_ = 0;
  int64_t count_ = 0;
};

}  // namespace kiln::transform
