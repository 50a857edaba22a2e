#pragma once
// ExactSum: the exact sum of any number of doubles (a "superaccumulator").
//
// Why: Kiln's analyzers must give bit-identical statistics for any thread count, any split of the
// data into file chunks or MPI ranks, and any order of merging the parts. Floating-point addition
// is not associative, so a double accumulator (Kahan, Chan or Welford included) depends on how the
// rows were split. An exact sum does not: add() and merge() are exact integer arithmetic and the
// only rounding happens once, at the end, in value().
//
// Representation: every finite double is an integer multiple of 2^-1074 (the smallest subnormal).
// The accumulator holds that integer in kLimbs limbs of 32 bits, each stored in a signed 64-bit
// word: limb i weighs 2^(32 i - 1074). A double's bits reach bit 2097; the limbs above are headroom
// for carries. add() splits the 53-bit mantissa over three limbs and adds or subtracts without
// propagating carries, so a word can take 2^30 adds before it could overflow; carries are
// normalised once per 2^30 adds (deferred carry propagation, the idea of Neal's xsum and of
// Kulisch's long accumulator).
//
// Non-finite inputs are never summed: they are counted (NaN, +inf, -inf). value() then follows
// IEEE semantics (any NaN, or both infinities -> NaN; otherwise the infinity seen). Kiln's
// analyzers treat a non-finite input as an error or a missing value; the counts let them say so.
#include <bit>
#include <cstdint>
#include <span>

namespace kiln {
class ExactSumState;
}

namespace kiln::transform {

// An unevaluated sum hi + lo with |lo| <= ulp(hi) / 2: about 106 significant bits.
struct DoubleDouble {
  double hi = 0;
  double lo = 0;
};

class ExactSum {
 public:
  static constexpr int kLimbBits = 32;
  static constexpr int kLimbs = 68;  // bits 0..2175: the largest double's top bit is 2097

  void add(double x) {
    const uint64_t bits = std::bit_cast<uint64_t>(x);
    if (((bits >> 52) & 0x7ff) == 0x7ff) [[unlikely]] {
      add_non_finite(x);
      return;
    }
    add_bits_uncounted(bits);
    count_pending(1);
  }

  // add() for a value the caller knows to be finite (a non-finite one corrupts the sum).
  void add_finite(double x) {
    add_bits_uncounted(std::bit_cast<uint64_t>(x));
    count_pending(1);
  }

  // Adds x * x exactly, for a finite x (the 106-bit square of the mantissa goes straight into the
  // limbs). Exceptions, deterministic per value: a square that overflows double counts as +inf, and
  // one below 2^-970 (|x| < 2^-485) is x*x rounded plus fma(x, x, -x*x), whose tail may underflow.
  void add_square(double x) {
    add_square_uncounted(x);
    count_pending(1);
  }

  // sums.add_finite(x) and squares.add_square(x) for each (finite) x: the same exact sums, several
  // times faster. Each group of values is first summed per binary exponent in 64-bit integers
  // (one add per value instead of three to five limb updates), then every exponent's total goes
  // into the limbs once.
  static void add_values_and_squares(std::span<const double> values, ExactSum& sums, ExactSum& squares);

  // Exact: afterwards this holds the sum of both input sets, whatever the grouping or order.
  void merge(const ExactSum& other);

  // The exact sum rounded once to nearest (ties to even); +0 when the sum is zero. Overflow gives
  // the infinity of the sum's sign, as IEEE rounding does.
  double value() const;
  // The exact sum rounded once to the x87 extended format (64-bit significand, never overflows).
  long double value_long_double() const;
  // hi = value(), lo = the remainder rounded to double: about 106 bits of the sum.
  DoubleDouble value_dd() const;

  bool has_non_finite() const { return nan_count_ + positive_infinity_count_ + negative_infinity_count_ > 0; }
  int64_t nan_count() const { return nan_count_; }
  int64_t positive_infinity_count() const { return positive_infinity_count_; }
  int64_t negative_infinity_count() const { return negative_infinity_count_; }

  // Equal exact sums and equal non-finite counts (the internal carry state is irrelevant).
  bool operator==(const ExactSum& other) const;

  void to_proto(ExactSumState* state) const;
  // Throws kiln::Error when the state is malformed.
  static ExactSum from_proto(const ExactSumState& state);

 private:
  // 2^30 - 1 adds of < 2^32 each keep a normalised word (< 2^32) below 2^62.
  static constexpr int64_t kMaxPending = (int64_t{1} << 30) - 1;
  // Every square at a higher position would overflow double: 2^(1992 + 106 - 1074) = 2^1024.
  static constexpr int kMaxSquarePosition = 1992;

  // The limb updates of add_finite() and add_square(); the caller counts them (count_pending).
  void add_bits_uncounted(uint64_t bits) {
    const int biased = static_cast<int>(bits >> 52) & 0x7ff;
    // Subnormals (biased 0) have no hidden bit and the scale of biased exponent 1.
    const uint64_t mantissa = (bits & ((uint64_t{1} << 52) - 1)) | (uint64_t{biased != 0} << 52);
    const int position = biased - (biased != 0);  // the mantissa's lowest bit, in units of 2^-1074
    // The three 32-bit words of mantissa * 2^shift; every shift count stays in [0, 63].
    const int shift = position & 31;
    const auto word0 = static_cast<int64_t>(static_cast<uint32_t>(mantissa << shift));
    const auto word1 = static_cast<int64_t>(static_cast<uint32_t>(mantissa >> (32 - shift)));
    const auto word2 = static_cast<int64_t>((mantissa >> 32) >> (32 - shift));
    const int64_t negate = static_cast<int64_t>(bits) >> 63;  // 0 or -1: (w ^ -1) - -1 == -w
    int64_t* limb = limbs_ + (position >> 5);
    limb[0] += (word0 ^ negate) - negate;
    limb[1] += (word1 ^ negate) - negate;
    limb[2] += (word2 ^ negate) - negate;
  }

  // Adds value * 2^(position - 1074), |value| < 2^63, position >= 0.
  void add_integer_uncounted(int64_t value, int position) {
    const uint64_t magnitude = value < 0 ? uint64_t{0} - static_cast<uint64_t>(value) : static_cast<uint64_t>(value);
    const unsigned __int128 wide = static_cast<unsigned __int128>(magnitude) << (position & 31);  // < 2^94
    const int64_t negate = value >> 63;
    int64_t* limb = limbs_ + (position >> 5);
    limb[0] += (static_cast<int64_t>(static_cast<uint32_t>(wide)) ^ negate) - negate;
    limb[1] += (static_cast<int64_t>(static_cast<uint32_t>(wide >> 32)) ^ negate) - negate;
    limb[2] += (static_cast<int64_t>(wide >> 64) ^ negate) - negate;
  }

  void add_square_uncounted(double x) {
    const uint64_t bits = std::bit_cast<uint64_t>(x);
    const int biased = static_cast<int>(bits >> 52) & 0x7ff;
    const uint64_t mantissa = (bits & ((uint64_t{1} << 52) - 1)) | (uint64_t{biased != 0} << 52);
    // x = mantissa * 2^(p - 1074), so x^2 = mantissa^2 * 2^(q - 1074) with q = 2 p - 1074.
    const int position = 2 * (biased - (biased != 0)) - 1074;
    if (position < 0 || position > kMaxSquarePosition) [[unlikely]] {
      add_square_slowly(x);
      return;
    }
    const unsigned __int128 square = static_cast<unsigned __int128>(mantissa) * mantissa;  // < 2^106
    const auto low = static_cast<uint64_t>(square);
    const auto high = static_cast<uint64_t>(square >> 64);  // < 2^42
    // The five 32-bit words of square * 2^shift; every shift count stays in [0, 63].
    const int shift = position & 31;
    int64_t* limb = limbs_ + (position >> 5);
    limb[0] += static_cast<uint32_t>(low << shift);
    limb[1] += static_cast<uint32_t>(low >> (32 - shift));
    limb[2] += static_cast<uint32_t>(((low >> 32) >> (32 - shift)) | (high << shift));
    limb[3] += static_cast<uint32_t>(high >> (32 - shift));
    limb[4] += static_cast<int64_t>((high >> 32) >> (32 - shift));
  }
  // Records n more adds (each word grows by < 2^32 per add), normalising before they could
  // overflow a word.
  void count_pending(int64_t n) {
    pending_ += n;
    if (pending_ >= kMaxPending) [[unlikely]]
      normalize();
  }
  // add_square(), out of line: the rare case of add_values_and_squares() stays out of its loop.
  [[gnu::noinline]] void add_square_apart(double x);
  void add_non_finite(double x);
  void add_square_slowly(double x);
  // NaN or an infinity, from the non-finite counts (at least one of which is positive).
  double non_finite_value() const;
  // Propagates carries: words 0..kLimbs-2 in [0, 2^32), the top word signed.
  void normalize();
  // The sign and the magnitude in words below 2^32; true when the sum is negative.
  bool magnitude(uint32_t* words) const;

  int64_t limbs_[kLimbs] = {};
  int64_t pending_ = 0;  // adds since the last normalisation (a normalised word counts as one)
  int64_t nan_count_ = 0;
  int64_t positive_infinity_count_ = 0;
  int64_t negative_infinity_count_ = 0;
};

}  // namespace kiln::transform
