#pragma once
// SketchIndex: the quantile sketch's bucket index ceil(deterministic_log(x) / ln(gamma)), the same
// integer bit for bit, without evaluating that logarithm for almost every x.
//
// Why: the logarithm (a division and a chain of fmas) was most of the sketch's cost per value,
// and the sketch runs on every numeric value `kiln analyze` reads. The index defines the sketch's
// state, so a faster way must give exactly the same index, never a neighbouring one.
//
// Method: x = 2^e m with m in [1, 2). A table over the top 8 bits of m holds c (the middle of m's
// 1/256-wide interval), ln(c) and 1/c; with u = (m - c) / c, |u| <= 2^-9, so
//   ln(x) ~= e ln(2) + ln(c) + u - u^2/2 + u^3/3,
// off by the series' tail (< u^4/4 <= 2^-38) plus roundings (< 1e-12 for |ln x| <= 745). Call
// y this estimate times 1/ln(gamma), and Y the exact path's deterministic_log(x) * (1/ln gamma).
// Both are within 1/ln(gamma) * (5e-12 + 2e-13) + 1e-9 of ln(x)/ln(gamma) (deterministic_log is
// within 2e-13; the +1e-9 covers rounding |Y| <= 3.8e6): for alpha >= 1e-4 (1/ln gamma <= 5000)
// that is under 3e-8, so |y - Y| < kMargin = 1e-6 with a wide safety factor. When no integer
// lies within kMargin of y, ceil(y) == ceil(Y): the estimate is the answer. Otherwise (about 2
// values in a million) the exact path runs. Subnormals take the exact path too.
#include <array>
#include <bit>
#include <cmath>
#include <cstdint>

#include "transform/deterministic_log.h"

#if defined(__AVX2__)
#include <immintrin.h>
#endif

namespace kiln::transform {

class SketchIndex {
 public:
  // inverse_log_gamma = 1 / deterministic_log(gamma), at most 5000 (alpha >= 1e-4).
  explicit SketchIndex(double inverse_log_gamma) : table_(table().data()), inverse_log_gamma_(inverse_log_gamma) {}

  // The definition: what every sketch state is built from.
  int32_t exact(double magnitude) const {
    return static_cast<int32_t>(std::ceil(deterministic_log(magnitude) * inverse_log_gamma_));
  }

  // exact(magnitude) for a positive finite magnitude, usually without the logarithm.
  int32_t operator()(double magnitude) const {
    const uint64_t bits = std::bit_cast<uint64_t>(magnitude);
    if (bits < (uint64_t{1} << 52)) [[unlikely]]
      return exact(magnitude);  // subnormal
    const Entry& t = table_[(bits >> 44) & 0xff];
    const double m = std::bit_cast<double>((bits & kMantissaMask) | kOneBits);
    const double u = (m - t.c) * t.inverse_c;  // m - c is exact (Sterbenz)
    const double series = u * std::fma(u, std::fma(u, 1.0 / 3, -0.5), 1.0);
    const double e = static_cast<double>(static_cast<int64_t>(bits >> 52) - 1023);
    const double y = std::fma(e, kLn2, t.log_c + series) * inverse_log_gamma_;
    const double index = std::ceil(y);
    const double gap = index - y;  // in [0, 1)
    if (gap > kMargin && gap < 1 - kMargin) [[likely]]
      return static_cast<int32_t>(index);
    return exact(magnitude);
  }

#if defined(__AVX2__) && defined(__FMA__)
  // operator()(|values[k]|) for k < 4 into out[k], the four at once in vector registers, with
  // the same arithmetic per lane. False, with out unspecified, when some |values[k]| is zero,
  // subnormal or not finite, or near a bucket boundary: the caller takes those four one by one.
  bool four(const double* values, int32_t* out) const {
    const __m256i bits = _mm256_and_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(values)),
                                          _mm256_set1_epi64x(static_cast<int64_t>(~kSignBit)));
    // Normal and finite: 2^52 <= bits < the bits of infinity.
    const __m256i normal = _mm256_andnot_si256(_mm256_cmpgt_epi64(_mm256_set1_epi64x(int64_t{1} << 52), bits),
                                               _mm256_cmpgt_epi64(_mm256_set1_epi64x(kInfinityBits), bits));
    // Entry j's fields are doubles 3 j, 3 j + 1 and 3 j + 2 from the table's start. Its c, 1 + (j +
    // 0.5) / 256, is the top 8 bits of the mantissa with the next one set: made, not gathered.
    const __m256i top = _mm256_and_si256(_mm256_srli_epi64(bits, 44), _mm256_set1_epi64x(0xff));
    const __m256i entry = _mm256_add_epi64(top, _mm256_slli_epi64(top, 1));
    const double* base = &table_[0].c;
    const __m256d c = _mm256_castsi256_pd(_mm256_or_si256(
        _mm256_and_si256(bits, _mm256_set1_epi64x(int64_t{0xff} << 44)), _mm256_set1_epi64x(kOneBits | uint64_t{1} << 43)));
    const __m256d log_c = _mm256_i64gather_pd(base + 1, entry, 8);
    const __m256d inverse_c = _mm256_i64gather_pd(base + 2, entry, 8);
    const __m256d m = _mm256_castsi256_pd(
        _mm256_or_si256(_mm256_and_si256(bits, _mm256_set1_epi64x(kMantissaMask)), _mm256_set1_epi64x(kOneBits)));
    const __m256d u = _mm256_mul_pd(_mm256_sub_pd(m, c), inverse_c);
    const __m256d series = _mm256_mul_pd(
        u, _mm256_fmadd_pd(u, _mm256_fmadd_pd(u, _mm256_set1_pd(1.0 / 3), _mm256_set1_pd(-0.5)), _mm256_set1_pd(1.0)));
    // The biased exponent k < 2^11 as a double without an int64 conversion: the bits of 2^52 + k,
    // minus 2^52 + 1023, exactly.
    const __m256d e = _mm256_sub_pd(
        _mm256_castsi256_pd(_mm256_or_si256(_mm256_srli_epi64(bits, 52), _mm256_set1_epi64x(kTwo52Bits))),
        _mm256_set1_pd(0x1p52 + 1023));
    const __m256d y = _mm256_mul_pd(_mm256_fmadd_pd(e, _mm256_set1_pd(kLn2), _mm256_add_pd(log_c, series)),
                                    _mm256_set1_pd(inverse_log_gamma_));
    const __m256d index = _mm256_round_pd(y, _MM_FROUND_TO_POS_INF | _MM_FROUND_NO_EXC);
    const __m256d gap = _mm256_sub_pd(index, y);
    const __m256d clear = _mm256_and_pd(_mm256_cmp_pd(gap, _mm256_set1_pd(kMargin), _CMP_GT_OQ),
                                        _mm256_cmp_pd(gap, _mm256_set1_pd(1 - kMargin), _CMP_LT_OQ));
    if (_mm256_movemask_pd(_mm256_and_pd(clear, _mm256_castsi256_pd(normal))) != 0xf) return false;
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out), _mm256_cvttpd_epi32(index));
    return true;
  }
#endif

 private:
  static constexpr double kMargin = 1e-6;
  static constexpr double kLn2 = 0x1.62e42fefa39efp-1;
  static constexpr uint64_t kMantissaMask = (uint64_t{1} << 52) - 1;
  static constexpr uint64_t kOneBits = 0x3ff0000000000000;  // 1.0
  static constexpr uint64_t kSignBit = uint64_t{1} << 63;
  static constexpr int64_t kInfinityBits = 0x7ff0000000000000;
  static constexpr int64_t kTwo52Bits = 0x4330000000000000;  // 2^52

  struct Entry {
    double c;
    double log_c;
    double inverse_c;
  };
  static const std::array<Entry, 256>& table() {
    static const std::array<Entry, 256> entries = [] {
      std::array<Entry, 256> t{};
      for (int j = 0; j < 256; ++j) {
        const double c = 1 + (j + 0.5) / 256;  // exact
        t[j] = {c, deterministic_log(c), 1 / c};
      }
      return t;
    }();
    return entries;
  }

  const Entry* table_;  // table(), shared by all instances
  double inverse_log_gamma_;
};

}  // namespace kiln::transform
