#include "transform/moments.h"

#include <algorithm>
#include <bit>

#include "core/error.h"
#include "proto/analyzer_state.pb.h"

namespace kiln::transform {
namespace {

// sum += a * b exactly (when a * b neither overflows nor underflows): the rounded product and its
// rounding error, which fma computes exactly.
void add_product(ExactSum& sum, double a, double b) {
  const double product = a * b;
  sum.add(product);
  sum.add(std::fma(a, b, -product));
}

bool same_bits(double a, double b) { return std::bit_cast<uint64_t>(a) == std::bit_cast<uint64_t>(b); }

}  // namespace

void Moments::add_all(std::span<const double> values) {
  // Analysis passes finite values only: min and max over kLanes independent lanes (one chain
  // of compares waits a cycle or two per value), and the exact sums in one batch call.
  constexpr size_t kLanes = 4;
  constexpr uint64_t kExponent = 0x7ff0000000000000;
  double low[kLanes], high[kLanes];
  std::fill_n(low, kLanes, min_);
  std::fill_n(high, kLanes, max_);
  bool non_finite = false;
  size_t i = 0;
  auto step = [&](size_t lane, double x) {
    const double y = x + 0.0;  // -0 -> +0
    low[lane] = y < low[lane] ? y : low[lane];
    high[lane] = y > high[lane] ? y : high[lane];
    non_finite |= (std::bit_cast<uint64_t>(x) & kExponent) == kExponent;
  };
  for (; i + kLanes <= values.size(); i += kLanes)
    for (size_t lane = 0; lane < kLanes; ++lane) step(lane, values[i + lane]);
  for (; i < values.size(); ++i) step(0, values[i]);
  if (!non_finite) [[likely]] {
    min_ = *std::min_element(low, low + kLanes);
    max_ = *std::max_element(high, high + kLanes);
    count_ += static_cast<int64_t>(values.size());
    ExactSum::add_values_and_squares(values, sum_, sum_squares_);
    return;
  }
  // Some non-finite values: count them, then sum the finite ones in batch calls.
  for (size_t begin = 0; begin < values.size();) {
    size_t end = begin;
    double lowest = min_, highest = max_;
    while (end < values.size() && std::isfinite(values[end])) {
      const double y = values[end++] + 0.0;  // -0 -> +0
      lowest = y < lowest ? y : lowest;
      highest = y > highest ? y : highest;
    }
    min_ = lowest;
    max_ = highest;
    const std::span<const double> finite = values.subspan(begin, end - begin);
    count_ += static_cast<int64_t>(finite.size());
    ExactSum::add_values_and_squares(finite, sum_, sum_squares_);
    if (end < values.size()) ++non_finite_;
    begin = end + 1;
  }
}

void Moments::merge(const Moments& other) {
  count_ += other.count_;
  non_finite_ += other.non_finite_;
  sum_.merge(other.sum_);
  sum_squares_.merge(other.sum_squares_);
  min_ = std::min(min_, other.min_);
  max_ = std::max(max_, other.max_);
}

double Moments::mean() const {
  if (count_ == 0) return std::numeric_limits<double>::quiet_NaN();
  // The exact sum in long double never overflows, so neither does the mean of finite values.
  return static_cast<double>(sum_.value_long_double() / static_cast<long double>(count_));
}

double Moments::variance() const {
  if (count_ == 0) return std::numeric_limits<double>::quiet_NaN();
  if (sum_squares_.has_non_finite()) return std::numeric_limits<double>::infinity();
  const double m = mean();
  // n as the exact sum of two doubles (n < 2^63: both parts have at most 32 significant bits).
  const auto n = static_cast<uint64_t>(count_);
  const double n_high = static_cast<double>(n >> 32 << 32);
  const double n_low = static_cast<double>(n & 0xffffffffu);
  // r = S1 - n m, exactly.
  ExactSum r = sum_;
  add_product(r, -n_high, m);
  add_product(r, -n_low, m);
  const DoubleDouble r_dd = r.value_dd();
  // M2 = S2 - n m^2 - 2 m r - r^2 / n, with n m^2 = (n_high + n_low)(square + square_error).
  ExactSum m2 = sum_squares_;
  const double square = m * m;
  const double square_error = std::fma(m, m, -square);
  add_product(m2, -n_high, square);
  add_product(m2, -n_high, square_error);
  add_product(m2, -n_low, square);
  add_product(m2, -n_low, square_error);
  add_product(m2, -2 * m, r_dd.hi);
  add_product(m2, -2 * m, r_dd.lo);
  m2.add(-(r_dd.hi * r_dd.hi / static_cast<double>(count_)));
  if (m2.has_non_finite()) return std::numeric_limits<double>::infinity();  // |x| near 1e154
  const double variance = static_cast<double>(m2.value_long_double() / static_cast<long double>(count_));
  // Tiny negative results can only come from the r^2 / n rounding: the true M2 is >= 0.
  return variance > 0 ? variance : 0.0;
}

bool Moments::operator==(const Moments& other) const {
  return count_ == other.count_ && non_finite_ == other.non_finite_ && sum_ == other.sum_ &&
         sum_squares_ == other.sum_squares_ && same_bits(min_, other.min_) && same_bits(max_, other.max_);
}

void Moments::to_proto(MomentsState* state) const {
  state->Clear();
  state->set_count(count_);
  if (non_finite_ > 0) state->set_non_finite(non_finite_);
  sum_.to_proto(state->mutable_sum());
  sum_squares_.to_proto(state->mutable_sum_squares());
  if (count_ > 0) {
    state->set_min(min_);
    state->set_max(max_);
  }
}

Moments Moments::from_proto(const MomentsState& state) {
  if (state.count() < 0 || state.non_finite() < 0) fail("MomentsState: negative count");
  Moments moments;
  moments.count_ = state.count();
  moments.non_finite_ = state.non_finite();
  moments.sum_ = ExactSum::from_proto(state.sum());
  moments.sum_squares_ = ExactSum::from_proto(state.sum_squares());
  if (moments.sum_.has_non_finite()) fail("MomentsState: the sum holds non-finite values");
  if (moments.sum_squares_.nan_count() > 0 || moments.sum_squares_.negative_infinity_count() > 0)
    fail("MomentsState: the sum of squares holds NaN or -inf");
  if (moments.count_ > 0) {
    if (!state.has_min() || !state.has_max() || !(state.min() <= state.max()))
      fail("MomentsState: ", moments.count_, " values but no valid min and max");
    moments.min_ = state.min();
    moments.max_ = state.max();
  }
  return moments;
}

}  // namespace kiln::transform
