#include "transform/exact_sum.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "core/error.h"
#include "proto/analyzer_state.pb.h"

namespace kiln::transform {
namespace {

constexpr int64_t kWordMask = (int64_t{1} << 32) - 1;
constexpr int kBias = 1074;  // limb 0, bit 0 weighs 2^-1074
constexpr uint64_t kMantissaMask = (uint64_t{1} << 52) - 1;

// The 64 bits of a magnitude starting at bit `position` (bits past the top read as zero).
uint64_t bits_at(const uint32_t* words, int position) {
  const int i = position >> 5;
  unsigned __int128 window = 0;
  for (int k = 2; k >= 0; --k) {
    window <<= 32;
    if (i + k < ExactSum::kLimbs) window |= words[i + k];
  }
  return static_cast<uint64_t>(window >> (position & 31));
}

// Whether any bit below `position` is set.
bool any_below(const uint32_t* words, int position) {
  const int i = position >> 5;
  for (int k = 0; k < i; ++k)
    if (words[k] != 0) return true;
  return (words[i] & ((uint32_t{1} << (position & 31)) - 1)) != 0;
}

// Rounds the magnitude to `precision` (<= 64) significant bits, to nearest with ties to even:
// magnitude ~= significand * 2^(exponent - 1074). Bit 0 of the magnitude is the smallest
// subnormal, so for precision 53 this is exactly IEEE double rounding, subnormals included.
void round_magnitude(const uint32_t* words, int precision, uint64_t* significand, int* exponent) {
  int top = ExactSum::kLimbs - 1;
  while (top >= 0 && words[top] == 0) --top;
  if (top < 0) {
    *significand = 0;
    *exponent = 0;
    return;
  }
  const int length = 32 * top + std::bit_width(words[top]);
  const int drop = length > precision ? length - precision : 0;
  const int kept = length - drop;
  uint64_t s = bits_at(words, drop);
  if (kept < 64) s &= (uint64_t{1} << kept) - 1;
  if (drop > 0) {
    const bool half = (words[(drop - 1) >> 5] >> ((drop - 1) & 31)) & 1;
    if (half && ((s & 1) || any_below(words, drop - 1))) {
      ++s;
      if (s == 0) {  // precision 64 carried out of the word: 2^64 == 2^63 * 2
        s = uint64_t{1} << 63;
        *significand = s;
        *exponent = drop + 1;
        return;
      }
    }
  }
  *significand = s;
  *exponent = drop;
}

}  // namespace

void ExactSum::add_non_finite(double x) {
  if (std::isnan(x))
    ++nan_count_;
  else if (x > 0)
    ++positive_infinity_count_;
  else
    ++negative_infinity_count_;
}

void ExactSum::add_square_slowly(double x) {
  // Here x^2 may overflow, or lies below 2^-970 where its last bits may fall below 2^-1074.
  if (x == 0) return;
  const double square = x * x;
  if (!std::isfinite(square)) {
    add_non_finite(square);
    return;
  }
  add_finite(square);
  add_finite(std::fma(x, x, -square));
}

namespace {

// add_values_and_squares() sums kGroup values at a time per biased exponent e: sum holds the
// signed sum of their 53-bit significands, square_low and square_high the sums of the low 53
// bits and the rest of each significand's 106-bit square. kGroup = 2^9 keeps every bucket below
// 2^62. Consecutive values go to kBanks copies of each exponent's bucket in turn: values of one
// exponent (most of a column's) would otherwise wait on each other's load-add-store of the same
// words. The buckets of a thread stay zero between calls: each flush clears what it used.
constexpr size_t kGroup = 512;
constexpr size_t kBanks = 4;
constexpr uint64_t kLow53 = (uint64_t{1} << 53) - 1;
struct Bucket {
  int64_t sum, square_low, square_high;
};
thread_local Bucket t_buckets[2048][kBanks];

// Out of line: where t_buckets is used directly, GCC recomputes its address at every use in a
// loop (spilling registers around it).
[[gnu::noinline]] Bucket (*thread_buckets())[kBanks] { return t_buckets; }

// A square's position is 2 p - 1074 (see add_square_uncounted); within [0, kMaxSquarePosition]
// exactly when the biased exponent is within these bounds.
constexpr uint64_t kMinSquareBiased = 538, kMaxSquareBiased = 1534;

// The banks of one exponent added up, and cleared.
Bucket take_banks(Bucket (&banks)[kBanks]) {
  Bucket total{0, 0, 0};
  for (Bucket& b : banks) {
    total.sum += b.sum;
    total.square_low += b.square_low;
    total.square_high += b.square_high;
    b = Bucket{0, 0, 0};
  }
  return total;
}

}  // namespace

void ExactSum::add_values_and_squares(std::span<const double> values, ExactSum& sums, ExactSum& squares) {
  static_assert(2 * (kMinSquareBiased - 1) - 1074 == 0 && 2 * (kMaxSquareBiased - 1) - 1074 == kMaxSquarePosition);
  Bucket(*const buckets)[kBanks] = thread_buckets();
  for (size_t begin = 0; begin < values.size(); begin += kGroup) {
    const double* const group = values.data() + begin;
    const size_t n = std::min(kGroup, values.size() - begin);
    // The exponents to flush: low from ((bits << 1) - 1) >> 53, which is the biased exponent
    // (one less for powers of two, harmless) and 2047 for zeros, which touch nothing.
    uint64_t low = 2047, high = 0;
    bool apart = false;
    auto add = [&](double x, size_t bank) {
      const uint64_t bits = std::bit_cast<uint64_t>(x);
      const uint64_t biased = (bits >> 52) & 0x7ff;
      const uint64_t mantissa = (bits & kMantissaMask) | (uint64_t{biased != 0} << 52);
      const int64_t negate = static_cast<int64_t>(bits) >> 63;  // 0 or -1: (m ^ -1) - -1 == -m
      Bucket& bucket = buckets[biased][bank];
      bucket.sum += (static_cast<int64_t>(mantissa) ^ negate) - negate;
      low = std::min(low, ((bits << 1) - 1) >> 53);
      high = std::max(high, biased);
      // An overflowing or tiny square adds nothing here: it takes the per-value rules below.
      const bool square_here = biased - kMinSquareBiased <= kMaxSquareBiased - kMinSquareBiased;
      const uint64_t root = square_here ? mantissa : 0;
      apart |= !square_here && mantissa != 0;
      const unsigned __int128 square = static_cast<unsigned __int128>(root) * root;
      bucket.square_low += static_cast<int64_t>(static_cast<uint64_t>(square) & kLow53);
      bucket.square_high += static_cast<int64_t>(square >> 53);
    };
    size_t i = 0;
    for (; i + kBanks <= n; i += kBanks)
      for (size_t bank = 0; bank < kBanks; ++bank) add(group[i + bank], bank);
    for (; i < n; ++i) add(group[i], 0);
    if (apart) [[unlikely]]
      for (size_t k = 0; k < n; ++k) {
        const uint64_t biased = (std::bit_cast<uint64_t>(group[k]) >> 52) & 0x7ff;
        if (biased - kMinSquareBiased > kMaxSquareBiased - kMinSquareBiased && group[k] != 0)
          squares.add_square_apart(group[k]);
      }
    // At most one add per exponent to sums and two to squares: normalise first if they could
    // pass kMaxPending.
    if (sums.pending_ + 2048 > kMaxPending) sums.normalize();
    if (squares.pending_ + 4096 > kMaxPending) squares.normalize();
    for (uint64_t e = low; e <= high; ++e) {
      const int position = static_cast<int>(e) - (e != 0);
      const Bucket total = take_banks(buckets[e]);
      if (total.sum != 0) {
        sums.add_integer_uncounted(total.sum, position);
        sums.pending_ += 1;
      }
      if ((total.square_low | total.square_high) != 0) {
        squares.add_integer_uncounted(total.square_low, 2 * position - 1074);
        squares.add_integer_uncounted(total.square_high, 2 * position - 1074 + 53);
        squares.pending_ += 2;
      }
    }
  }
}

void ExactSum::add_square_apart(double x) {
  add_square_uncounted(x);
  count_pending(1);
}

void ExactSum::normalize() {
  int64_t carry = 0;
  for (int i = 0; i < kLimbs - 1; ++i) {
    const int64_t word = limbs_[i] + carry;
    carry = word >> 32;  // arithmetic shift: floor(word / 2^32), so the remainder is in [0, 2^32)
    limbs_[i] = word & kWordMask;
  }
  limbs_[kLimbs - 1] += carry;
  pending_ = 1;
}

void ExactSum::merge(const ExactSum& other) {
  if (pending_ + other.pending_ > kMaxPending) normalize();
  const ExactSum* source = &other;
  ExactSum normalized;
  if (pending_ + other.pending_ > kMaxPending) {
    normalized = other;
    normalized.normalize();
    source = &normalized;
  }
  for (int i = 0; i < kLimbs; ++i) limbs_[i] += source->limbs_[i];
  pending_ += source->pending_;
  nan_count_ += other.nan_count_;
  positive_infinity_count_ += other.positive_infinity_count_;
  negative_infinity_count_ += other.negative_infinity_count_;
}

bool ExactSum::magnitude(uint32_t* words) const {
  ExactSum copy = *this;
  copy.normalize();
  const bool negative = copy.limbs_[kLimbs - 1] < 0;
  if (negative) {
    for (int64_t& limb : copy.limbs_) limb = -limb;
    copy.normalize();
  }
  for (int i = 0; i < kLimbs; ++i) words[i] = static_cast<uint32_t>(copy.limbs_[i]);
  return negative;
}

double ExactSum::non_finite_value() const {
  if (nan_count_ > 0 || (positive_infinity_count_ > 0 && negative_infinity_count_ > 0))
    return std::numeric_limits<double>::quiet_NaN();
  return positive_infinity_count_ > 0 ? std::numeric_limits<double>::infinity()
                                      : -std::numeric_limits<double>::infinity();
}

double ExactSum::value() const {
  if (has_non_finite()) return non_finite_value();
  uint32_t words[kLimbs];
  const bool negative = magnitude(words);
  uint64_t significand;
  int exponent;
  round_magnitude(words, 53, &significand, &exponent);
  // significand <= 2^53 converts exactly; ldexp is exact or overflows to infinity.
  const double result = std::ldexp(static_cast<double>(significand), exponent - kBias);
  return negative ? -result : result;
}

long double ExactSum::value_long_double() const {
  if (has_non_finite()) return non_finite_value();
  uint32_t words[kLimbs];
  const bool negative = magnitude(words);
  uint64_t significand;
  int exponent;
  round_magnitude(words, 64, &significand, &exponent);
  const long double result = std::ldexp(static_cast<long double>(significand), exponent - kBias);
  return negative ? -result : result;
}

DoubleDouble ExactSum::value_dd() const {
  const double hi = value();
  if (!std::isfinite(hi)) return {hi, 0};
  ExactSum remainder = *this;
  remainder.add_finite(-hi);
  return {hi, remainder.value()};
}

bool ExactSum::operator==(const ExactSum& other) const {
  if (nan_count_ != other.nan_count_ || positive_infinity_count_ != other.positive_infinity_count_ ||
      negative_infinity_count_ != other.negative_infinity_count_)
    return false;
  // The normalised words are a canonical form: all but the top in [0, 2^32).
  ExactSum a = *this, b = other;
  a.normalize();
  b.normalize();
  return std::memcmp(a.limbs_, b.limbs_, sizeof(a.limbs_)) == 0;
}

void ExactSum::to_proto(ExactSumState* state) const {
  state->Clear();
  uint32_t words[kLimbs];
  const bool negative = magnitude(words);
  int first = 0, last = kLimbs - 1;
  while (first < kLimbs && words[first] == 0) ++first;
  while (last >= first && words[last] == 0) --last;
  if (first <= last) {
    if (negative) state->set_negative(true);
    state->set_first_limb(first);
    for (int i = first; i <= last; ++i) state->add_magnitude(words[i]);
  }
  if (nan_count_ > 0) state->set_nan_count(nan_count_);
  if (positive_infinity_count_ > 0) state->set_positive_infinity_count(positive_infinity_count_);
  if (negative_infinity_count_ > 0) state->set_negative_infinity_count(negative_infinity_count_);
}

ExactSum ExactSum::from_proto(const ExactSumState& state) {
  const int64_t first = state.first_limb();
  const int64_t size = state.magnitude_size();
  if (first < 0 || first + size > kLimbs)
    fail("ExactSumState: limbs [", first, ", ", first + size, ") outside [0, ", kLimbs, ")");
  if (state.nan_count() < 0 || state.positive_infinity_count() < 0 || state.negative_infinity_count() < 0)
    fail("ExactSumState: negative non-finite count");
  ExactSum sum;
  const int64_t sign = state.negative() ? -1 : 1;
  for (int64_t i = 0; i < size; ++i) sum.limbs_[first + i] = sign * static_cast<int64_t>(state.magnitude(i));
  sum.pending_ = 1;
  sum.nan_count_ = state.nan_count();
  sum.positive_infinity_count_ = state.positive_infinity_count();
  sum.negative_infinity_count_ = state.negative_infinity_count();
  return sum;
}

}  // namespace kiln::transform
