#pragma once
// Moments: count, mean, population variance, min and max of a numeric column, mergeable.
//
// Why not Chan's or Welford's update: those merge floating-point partial results, and
// floating-point arithmetic is not associative, so the statistics would depend on the thread
// count, the file chunking, the MPI rank count and the merge order — and a model trained on
// 8 ranks would see a different mean than the same model trained on 1. Here every part keeps
// EXACT sums of x and x^2 (ExactSum), merging is exact integer addition, and mean() and
// variance() round once at the end from the same exact numbers: bit-identical results for any
// sharding and any merge grouping or order.
//
// Each square is added exactly too (ExactSum::add_square: the 106-bit square of the mantissa), so
// the sum of squares is exact, except for squares below 2^-970, which may lose bits below 2^-1074
// (still deterministic per value).
//
// Accuracy (relative to the exact statistics of the input doubles):
// - mean(): the exact sum rounded to 64 bits, divided by n in long double, rounded to double:
//   within 0.5 + 2^-10 ulp (correctly rounded except within 2^-63 of a midpoint); exactly v
//   when every value is v.
// - variance(): computed as M2 / n with M2 = S2 - n m^2 - 2 m r - r^2 / n, r = S1 - n m and
//   m = mean(); the identity holds for any m, and with m the rounded mean r is tiny, so every
//   term but r^2 / n and the last ~2^-106 of r is summed exactly. The error of M2 is below
//   about 2^-150 n m^2, so variance() is within ~1 ulp unless variance / mean^2 < 2^-95 (then it
//   is still accurate to 2^-150 mean^2 absolute). A constant column gives exactly 0.
//   Values so large that x^2 or n m^2 overflows (|x| beyond ~1e153) make the variance +inf.
//
// Non-finite inputs (NaN, +-inf) are counted in non_finite() and kept out of every statistic;
// the caller decides whether that is an error or a missing value. min() and max() report -0 as
// +0 (otherwise which zero wins would depend on the order of the rows).
#include <cmath>
#include <cstdint>
#include <limits>
#include <span>

#include "transform/exact_sum.h"

namespace kiln {
class MomentsState;
}

namespace kiln::transform {

class Moments {
 public:
  void add(double x) {
    if (!std::isfinite(x)) [[unlikely]] {
      ++non_finite_;
      return;
    }
    ++count_;
    sum_.add_finite(x);
    sum_squares_.add_square(x);
    const double y = x + 0.0;  // -0 -> +0
    min_ = y < min_ ? y : min_;
    max_ = y > max_ ? y : max_;
  }

  // add(x) for each x, faster.
  void add_all(std::span<const double> values);

  // Exact and order-independent.
  void merge(const Moments& other);

  int64_t count() const { return count_; }  // finite values
  int64_t non_finite() const { return non_finite_; }
  // NaN when count() == 0.
  double mean() const;
  double variance() const;  // population: divides by n
  double stddev() const { return std::sqrt(variance()); }
  // +inf / -inf when count() == 0.
  double min() const { return min_; }
  double max() const { return max_; }
  const ExactSum& sum() const { return sum_; }
  const ExactSum& sum_squares() const { return sum_squares_; }

  bool operator==(const Moments& other) const;

  void to_proto(MomentsState* state) const;
  // Throws kiln::Error when the state is malformed.
  static Moments from_proto(const MomentsState& state);

 private:
  int64_t count_ = 0;
  int64_t non_finite_ = 0;
  ExactSum sum_;
  ExactSum sum_squares_;
  double min_ = std::numeric_limits<double>::infinity();
  double max_ = -std::numeric_limits<double>::infinity();
};

}  // namespace kiln::transform
