#include "transform/exact_sum.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <span>
#include <vector>

#include "core/error.h"
#include "proto/analyzer_state.pb.h"
#include "tests/transform/partition.h"

namespace kiln::transform {
namespace {

constexpr double kMax = std::numeric_limits<double>::max();
constexpr double kTiny = std::numeric_limits<double>::denorm_min();

uint64_t bits(double x) { return std::bit_cast<uint64_t>(x); }

// An independent exact reference: a two's-complement integer in units of 2^-1074, 2560 bits wide,
// that propagates every carry at once. Doubles are decomposed with frexp, not bit fiddling.
class BigInt {
 public:
  static constexpr int kWords = 80;

  void add(double x) {
    if (x == 0) return;
    int exponent;
    const double fraction = std::frexp(std::fabs(x), &exponent);  // |x| = fraction * 2^exponent
    auto mantissa = static_cast<uint64_t>(std::ldexp(fraction, 53));
    int position = exponent - 53 + 1074;
    for (; position < 0; ++position) mantissa >>= 1;  // subnormals: the dropped bits are zero
    uint32_t shifted[kWords] = {};
    const unsigned __int128 wide = static_cast<unsigned __int128>(mantissa) << (position % 32);
    for (int k = 0; k < 3; ++k) shifted[position / 32 + k] = static_cast<uint32_t>(wide >> (32 * k));
    if (x < 0) negate(shifted);
    uint64_t carry = 0;
    for (int i = 0; i < kWords; ++i) {
      const uint64_t sum = uint64_t{words_[i]} + shifted[i] + carry;
      words_[i] = static_cast<uint32_t>(sum);
      carry = sum >> 32;
    }
  }
  bool negative() const { return words_[kWords - 1] >> 31; }
  // |this| compared with |other|: -1, 0 or 1.
  int compare_magnitude(const BigInt& other) const {
    BigInt a = *this, b = other;
    if (a.negative()) negate(a.words_);
    if (b.negative()) negate(b.words_);
    for (int i = kWords - 1; i >= 0; --i)
      if (a.words_[i] != b.words_[i]) return a.words_[i] < b.words_[i] ? -1 : 1;
    return 0;
  }

 private:
  static void negate(uint32_t* words) {
    uint64_t carry = 1;
    for (int i = 0; i < kWords; ++i) {
      const uint64_t sum = uint64_t{static_cast<uint32_t>(~words[i])} + carry;
      words[i] = static_cast<uint32_t>(sum);
      carry = sum >> 32;
    }
  }
  uint32_t words_[kWords] = {};
};

BigInt reference_sum(const std::vector<double>& values) {
  BigInt sum;
  for (double x : values) sum.add(x);
  return sum;
}

// v is the exact sum rounded to nearest, ties to even: no double lies closer to the exact sum.
void expect_correctly_rounded(const BigInt& exact, double v) {
  if (std::isinf(v)) {  // IEEE overflow: |sum| >= DBL_MAX + ulp(DBL_MAX) / 2 (a tie goes up: odd)
    BigInt threshold;
    threshold.add(kMax);
    threshold.add(0x1p970);
    EXPECT_GE(exact.compare_magnitude(threshold), 0);
    EXPECT_EQ(exact.negative(), v < 0);
    return;
  }
  BigInt error = exact;
  error.add(-v);
  for (double neighbour : {std::nextafter(v, -kMax * 2), std::nextafter(v, kMax * 2)}) {
    if (!std::isfinite(neighbour)) continue;
    BigInt other = exact;
    other.add(-neighbour);
    const int c = error.compare_magnitude(other);
    EXPECT_LE(c, 0) << "a neighbour of " << v << " is closer to the exact sum";
    if (c == 0) {
      EXPECT_EQ(bits(v) & 1, 0u) << "tie not broken to even at " << v;
    }
  }
}

ExactSum sum_of(const std::vector<double>& values) {
  ExactSum sum;
  for (double x : values) sum.add(x);
  return sum;
}

std::string serialized(const ExactSum& sum) {
  ExactSumState state;
  sum.to_proto(&state);
  return state.SerializeAsString();
}

TEST(ExactSum, AdversarialKnownAnswers) {
  EXPECT_EQ(sum_of({1e308, 1, -1e308}).value(), 1.0);
  EXPECT_EQ(sum_of({1, 1e100, 1, -1e100}).value(), 2.0);
  EXPECT_EQ(sum_of(std::vector<double>(10, 0.1)).value(), 1.0);  // exactly 1 + 5.55e-17
  EXPECT_EQ(sum_of({1, 0x1p-53}).value(), 1.0);                     // tie -> even
  EXPECT_EQ(sum_of({1 + 0x1p-52, 0x1p-53}).value(), 1 + 0x1p-51);   // tie -> even, upwards
  EXPECT_EQ(sum_of({1, 0x1p-53, 0x1p-1000}).value(), 1 + 0x1p-52);  // just above the tie
  EXPECT_EQ(sum_of({1, -0x1p-54, -0x1p-1074}).value(), 1 - 0x1p-53);  // below 1 the spacing halves
  EXPECT_EQ(sum_of({3 * kTiny, -kTiny}).value(), 2 * kTiny);
  EXPECT_EQ(sum_of({std::numeric_limits<double>::min(), -kTiny}).value(),
            std::nextafter(std::numeric_limits<double>::min(), 0.0));
  EXPECT_EQ(sum_of({kMax, kMax}).value(), std::numeric_limits<double>::infinity());
  EXPECT_EQ(sum_of({-kMax, -kMax}).value(), -std::numeric_limits<double>::infinity());
  EXPECT_EQ(sum_of({kMax, kMax, -kMax}).value(), kMax);
  EXPECT_EQ(sum_of({kMax, 0x1p970}).value(), std::numeric_limits<double>::infinity());  // tie, odd
  EXPECT_EQ(sum_of({kMax, 0x1p970, -kTiny}).value(), kMax);
  EXPECT_EQ(bits(sum_of({}).value()), bits(0.0));
  EXPECT_EQ(bits(sum_of({-0.0}).value()), bits(0.0));
  EXPECT_EQ(bits(sum_of({2.5, -2.5}).value()), bits(0.0));
  EXPECT_EQ(sum_of({-1e308, 1, 1e308 / 2, 1e308 / 2}).value(), 1.0);
}

TEST(ExactSum, ExtendedAndDoubleDoubleValues) {
  const ExactSum sum = sum_of({1, 0x1p-60, 0x1p-200});
  EXPECT_EQ(sum.value_long_double(), 1 + 0x1p-60L);
  const DoubleDouble dd = sum.value_dd();
  EXPECT_EQ(dd.hi, 1.0);
  EXPECT_EQ(dd.lo, 0x1p-60);
  const ExactSum negative = sum_of({-1, -0x1p-60, 0x1p-120});
  EXPECT_EQ(negative.value_dd().hi, -1.0);
  EXPECT_EQ(negative.value_dd().lo, -0x1p-60 + 0x1p-120);
  // Beyond the double range, long double still holds the sum.
  EXPECT_EQ(sum_of({kMax, kMax}).value_long_double(), 2.0L * kMax);
}

TEST(ExactSum, NonFiniteInputsAreCountedNotSummed) {
  const double inf = std::numeric_limits<double>::infinity();
  const double nan = std::numeric_limits<double>::quiet_NaN();
  ExactSum sum = sum_of({1, inf, 2});
  EXPECT_EQ(sum.value(), inf);
  EXPECT_EQ(sum.positive_infinity_count(), 1);
  sum.add(-inf);
  EXPECT_TRUE(std::isnan(sum.value()));
  EXPECT_EQ(sum.negative_infinity_count(), 1);
  ExactSum with_nan = sum_of({1, nan, nan});
  EXPECT_TRUE(std::isnan(with_nan.value()));
  EXPECT_EQ(with_nan.nan_count(), 2);
  EXPECT_TRUE(with_nan.has_non_finite());
  EXPECT_FALSE(sum_of({1, 2}).has_non_finite());
}

// Random doubles: fully random bit patterns (every exponent), subnormals, near-overflow values
// with alternating signs, and massive cancellation that leaves a tiny exact remainder.
std::vector<std::vector<double>> random_data_sets(std::mt19937_64& rng) {
  std::vector<std::vector<double>> sets;
  std::uniform_int_distribution<uint64_t> any_bits;
  std::uniform_real_distribution<double> unit(-1, 1);
  std::vector<double> wide, subnormal, huge, cancelling, mixed;
  while (wide.size() < 2000) {
    const double x = std::bit_cast<double>(any_bits(rng));
    if (std::isfinite(x)) wide.push_back(x);
  }
  for (int i = 0; i < 2000; ++i) subnormal.push_back(std::bit_cast<double>(any_bits(rng) >> 12) * (i % 2 ? 1 : -1));
  for (int i = 0; i < 1000; ++i) {  // pairs near the top: every partial sum may overflow, the total not
    const double a = kMax * (0.5 + 0.5 * std::fabs(unit(rng)));
    huge.push_back(a);
    huge.push_back(-a * (1 - 1e-6 * std::fabs(unit(rng))));
  }
  for (int i = 0; i < 1000; ++i) {
    const double x = std::ldexp(unit(rng), static_cast<int>(any_bits(rng) % 200) - 100);
    cancelling.push_back(x);
    cancelling.push_back(-x);
  }
  cancelling.push_back(0x1p-1070);
  cancelling.push_back(3e-300);
  for (int i = 0; i < 4000; ++i) mixed.push_back(std::ldexp(unit(rng), static_cast<int>(any_bits(rng) % 120) - 60));
  sets = {wide, subnormal, huge, cancelling, mixed};
  return sets;
}

TEST(ExactSum, RandomSumsAreCorrectlyRounded) {
  std::mt19937_64 rng(17);
  for (int round = 0; round < 5; ++round) {
    for (const std::vector<double>& values : random_data_sets(rng)) {
      const ExactSum sum = sum_of(values);
      const BigInt exact = reference_sum(values);
      const double v = sum.value();
      expect_correctly_rounded(exact, v);
      EXPECT_EQ(std::signbit(v), exact.negative() && v != 0);
      // hi + lo carries the next 53 bits: hi + lo rounded again is hi.
      if (!std::isfinite(v)) continue;
      const DoubleDouble dd = sum.value_dd();
      EXPECT_EQ(dd.hi, v);
      EXPECT_EQ(dd.hi + dd.lo, dd.hi);
    }
  }
}

TEST(ExactSum, AnyGroupingAndOrderGivesTheSameBits) {
  std::mt19937_64 rng(5);
  for (const std::vector<double>& values : random_data_sets(rng)) {
    const ExactSum whole = sum_of(values);
    auto make = [] { return ExactSum(); };
    auto add = [](ExactSum& s, double x) { s.add(x); };
    for (size_t parts : {2, 7, 64}) {
      const ExactSum merged = testing::accumulate_in_parts(values, parts, rng, make, add);
      EXPECT_TRUE(merged == whole) << parts << " parts";
      EXPECT_EQ(bits(merged.value()), bits(whole.value()));
      EXPECT_EQ(serialized(merged), serialized(whole));
    }
    const ExactSum apart = testing::accumulate_each_apart(values, rng, make, add);
    EXPECT_TRUE(apart == whole);
    EXPECT_EQ(bits(apart.value()), bits(whole.value()));
    EXPECT_EQ(bits(static_cast<double>(apart.value_long_double())),
              bits(static_cast<double>(whole.value_long_double())));
  }
}

TEST(ExactSum, AddSquareIsExact) {
  std::mt19937_64 rng(23);
  std::uniform_real_distribution<double> unit(-1, 1);
  ExactSum fast, reference;
  // Wherever the fma tail is exact, x*x + fma(x, x, -x*x) == x^2: the two must agree exactly.
  for (int i = 0; i < 20000; ++i) {
    const double x = std::ldexp(unit(rng), static_cast<int>(rng() % 990) - 480);
    fast.add_square(x);
    const double square = x * x;
    reference.add(square);
    reference.add(std::fma(x, x, -square));
  }
  EXPECT_TRUE(fast == reference);
  fast.add_square(0x1.fffffffffffffp+511);  // just below the overflow threshold
  fast.add_square(-0x1.fffffffffffffp+511);
  EXPECT_FALSE(fast.has_non_finite());
  ExactSum squares;
  squares.add_square(3);
  squares.add_square(-0.5);
  squares.add_square(0);
  EXPECT_EQ(squares.value(), 9.25);
  squares.add_square(0x1p-500);  // a tiny square, via the fallback
  EXPECT_EQ(squares.value_dd().lo, 0x1p-1000);
  EXPECT_TRUE(squares == sum_of({9.25, 0x1p-1000}));
  squares.add_square(0x1p512);
  EXPECT_EQ(squares.positive_infinity_count(), 1);
}

// The batch adds sum groups per exponent first: they must leave exactly the per-value sums,
// whatever the spread of exponents (zeros, subnormals, overflowing and underflowing squares, all
// 2046 exponents in one group) and whatever the batch boundaries.
TEST(ExactSum, BatchAddsEqualOneByOne) {
  std::mt19937_64 rng(31);
  std::uniform_real_distribution<double> unit(-1, 1);
  std::vector<std::vector<double>> sets = random_data_sets(rng);
  std::vector<double> columns, spread, zeros;
  for (int i = 0; i < 5000; ++i) {
    columns.push_back(std::round(unit(rng) * 1e6) / 1e3 + 100);  // a typical CSV column
    // Mostly within the window, some 70..1000 binades below the group's largest value.
    spread.push_back(std::ldexp(unit(rng), i % 97 == 0 ? -70 - static_cast<int>(rng() % 930) : static_cast<int>(rng() % 40)));
    zeros.push_back(i % 3 == 0 ? unit(rng) : (i % 3 == 1 ? 0.0 : -0.0));
  }
  sets.insert(sets.end(), {columns, spread, zeros, {0x1p600, 0x1p-600, -0x1p-1074, 0x1.fffffffffffffp+1023}});
  for (const std::vector<double>& values : sets) {
    ExactSum sums, squares;
    for (double x : values) {
      sums.add_finite(x);
      squares.add_square(x);
    }
    for (size_t batch : {size_t{1}, size_t{7}, size_t{1000}, size_t{1024}, size_t{5000}, values.size()}) {
      ExactSum batch_sums, batch_squares;
      for (size_t begin = 0; begin < values.size(); begin += batch) {
        const std::span<const double> part(values.data() + begin, std::min(batch, values.size() - begin));
        ExactSum::add_values_and_squares(part, batch_sums, batch_squares);
      }
      EXPECT_TRUE(batch_sums == sums) << "batch " << batch;
      EXPECT_TRUE(batch_squares == squares) << "batch " << batch;
      EXPECT_EQ(serialized(batch_sums), serialized(sums));
      EXPECT_EQ(serialized(batch_squares), serialized(squares));
    }
  }
}

TEST(ExactSum, SelfMergeDoubles) {
  ExactSum sum = sum_of({1.5, -0x1p-1000});
  sum.merge(sum);
  EXPECT_TRUE(sum == sum_of({3, -0x1p-999}));
}

TEST(ExactSum, ProtoRoundTripMergesIdentically) {
  std::mt19937_64 rng(9);
  for (const std::vector<double>& values : random_data_sets(rng)) {
    const size_t half = values.size() / 2;
    ExactSum a = sum_of({values.begin(), values.begin() + static_cast<std::ptrdiff_t>(half)});
    const ExactSum b = sum_of({values.begin() + static_cast<std::ptrdiff_t>(half), values.end()});
    ExactSumState state;
    a.to_proto(&state);
    ExactSum restored = ExactSum::from_proto(state);
    EXPECT_TRUE(restored == a);
    restored.merge(b);
    a.merge(b);
    EXPECT_TRUE(restored == a);
    EXPECT_EQ(serialized(restored), serialized(a));
  }
  ExactSumState zero;
  ExactSum().to_proto(&zero);
  EXPECT_EQ(zero.magnitude_size(), 0);
  EXPECT_FALSE(zero.negative());
  ExactSumState special;
  sum_of({std::numeric_limits<double>::quiet_NaN(), -std::numeric_limits<double>::infinity()}).to_proto(&special);
  EXPECT_EQ(special.nan_count(), 1);
  EXPECT_EQ(special.negative_infinity_count(), 1);
  EXPECT_EQ(ExactSum::from_proto(special).nan_count(), 1);
}

TEST(ExactSum, MalformedStatesAreErrors) {
  ExactSumState state;
  state.set_first_limb(ExactSum::kLimbs);
  state.add_magnitude(1);
  EXPECT_THROW(ExactSum::from_proto(state), Error);
  state.set_first_limb(-1);
  EXPECT_THROW(ExactSum::from_proto(state), Error);
  state.set_first_limb(0);
  state.set_nan_count(-1);
  EXPECT_THROW(ExactSum::from_proto(state), Error);
}

// More than 2^30 adds force the deferred carry normalisation inside add().
TEST(ExactSum, CarriesSurviveBillionsOfAdds) {
  const double x = 0x1.fffffffffffffp+700;  // every mantissa bit set: the largest limb words
  const int64_t n = (int64_t{1} << 30) + 12345;
  ExactSum sum;
  for (int64_t i = 0; i < n; ++i) sum.add(x);
  EXPECT_EQ(sum.value(), static_cast<double>(n) * x);  // one rounding of the exact product
  EXPECT_EQ(sum.value_long_double(), static_cast<long double>(n) * x);
  ExactSum negative;
  negative.add(-x);
  negative.merge(sum);
  EXPECT_EQ(negative.value(), static_cast<double>(n - 1) * x);
}

}  // namespace
}  // namespace kiln::transform
