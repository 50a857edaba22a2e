#pragma once
// deterministic_log: the natural logarithm from IEEE-754 operations and explicit fma only.
//
// Why not std::log: the quantile sketch's bucket of a value is ceil(log(x) / log(gamma)), and
// sketches built on different machines are merged (MPI ranks, the server's drift monitor against
// the training sketch). libm's log is not correctly rounded and differs between libm versions in
// the last bit, which can move a value lying on a bucket boundary to the neighbouring bucket. This
// function gives the same bits on every platform that evaluates doubles as doubles
// (FLT_EVAL_METHOD 0: x86-64, AArch64): every step is a basic operation or an explicit std::fma
// (so -ffp-contract cannot fuse anything differently), and no table is computed at run time. It
// is also cheaper than glibc's log (~30 instructions, no call), which matters on the hot path.
//
// Accuracy: |deterministic_log(x) - ln(x)| < 2e-13 for every finite x > 0 (absolute error in the
// logarithm, i.e. a relative error of 2e-13 in the bucket boundaries it implies).
//
// Method: x = 2^k z with z in [sqrt(1/2), sqrt(2)); ln(z) = 2 atanh(s), s = (z - 1) / (z + 1),
// |s| < 0.1716, and 2 atanh(s) = 2 s (1 + s^2/3 + s^4/5 + ... + s^14/15) truncated after the
// eighth term (the rest is below 1.2e-14).
#include <bit>
#include <cmath>
#include <cstdint>

namespace kiln::transform {

// x must be finite and > 0.
inline double deterministic_log(double x) {
  uint64_t bits = std::bit_cast<uint64_t>(x);
  int64_t k = 0;
  if (bits < (uint64_t{1} << 52)) [[unlikely]] {  // subnormal: scale into the normal range exactly
    bits = std::bit_cast<uint64_t>(x * 0x1p54);
    k = -54;
  }
  // Subtracting the bits of sqrt(1/2) makes the exponent field count from z = sqrt(1/2) upwards.
  constexpr uint64_t kSqrtHalfBits = 0x3fe6a09e667f3bcd;
  const uint64_t shifted = bits - kSqrtHalfBits;
  k += static_cast<int64_t>(shifted) >> 52;
  const double z = std::bit_cast<double>(bits - (shifted & 0xfff0000000000000));
  const double s = (z - 1) / (z + 1);  // z - 1 is exact (Sterbenz)
  // 1 + w/3 + ... + w^7/15 by Estrin's scheme: 4 dependent steps instead of Horner's 7 (the
  // latency of this chain bounds the sketch's add()).
  const double w = s * s;
  const double w2 = w * w;
  const double w4 = w2 * w2;
  const double p01 = std::fma(w, 1.0 / 3, 1.0);
  const double p23 = std::fma(w, 1.0 / 7, 1.0 / 5);
  const double p45 = std::fma(w, 1.0 / 11, 1.0 / 9);
  const double p67 = std::fma(w, 1.0 / 15, 1.0 / 13);
  const double p = std::fma(w4, std::fma(w2, p67, p45), std::fma(w2, p23, p01));
  constexpr double kLn2 = 0x1.62e42fefa39efp-1;
  return std::fma(static_cast<double>(k), kLn2, (2 * s) * p);
}

}  // namespace kiln::transform
