#pragma once
// Scalar activation functors shared by the element-wise kernels and the GEMM/convolution
// epilogues. Dispatching once per call to a lambda keeps the inner loops free of a switch, so the
// compiler can vectorise them.
//
// std::exp/erf/tanh are library calls that GCC only vectorises under -ffast-math, so the f32 path
// uses the branch-free approximations below (a few ulp; errors noted per function) and a loop of
// them compiles to AVX2 code. The f64 path, the gradient-check reference, keeps libm.
#include <bit>
#include <cmath>
#include <cstdint>
#include <numbers>
#include <type_traits>

#include "kernels/activation.h"

namespace kiln::kernels::detail {

// e^x, Cephes-style: x = n ln2 + r with |r| <= ln2/2, a degree-6 polynomial for e^r and 2^n built
// in the exponent bits. Relative error below 2e-7; saturates to ~e^-87 / e^88 instead of 0 / inf;
// NaN stays NaN. Written so GCC vectorises it under its default -ftrapping-math: a float clamp at
// the top would let the optimiser split the loop body into branches, so n is clamped as an integer
// and out-of-range inputs are patched by a final select.
inline float exp_f32(float x) {
  // Adding 1.5 * 2^23 rounds x log2(e) to the nearest integer and leaves it in the low mantissa
  // bits (std::floor or an int cast would not vectorise as well).
  const float shifted = x * 1.44269504088896341f + 12582912.0f;
  int32_t ni = static_cast<int32_t>(std::bit_cast<uint32_t>(shifted) - 0x4B400000u);
  ni = ni < -126 ? -126 : (ni > 127 ? 127 : ni);
  const float n = static_cast<float>(ni);
  float r = x - n * 0.693359375f;  // ln2 split in two for an exact first product
  r = r + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const float y = p * std::bit_cast<float>(static_cast<uint32_t>(ni + 127) << 23);
  // Range tests on the bit pattern (x < -87 or x > 88, infinities included, NaN excluded) and a
  // masked blend: integer work the vectoriser can do without speculating float operations.
  const uint32_t ux = std::bit_cast<uint32_t>(x);
  const uint32_t under = 0u - static_cast<uint32_t>(ux > 0xC2AE0000u && ux <= 0xFF800000u);
  const uint32_t over = 0u - static_cast<uint32_t>(ux > 0x42B00000u && ux <= 0x7F800000u);
  const uint32_t bits = (std::bit_cast<uint32_t>(y) & ~(under | over)) |
                        (std::bit_cast<uint32_t>(1.6458115e-38f) & under) |
                        (std::bit_cast<uint32_t>(1.6516363e+38f) & over);
  return std::bit_cast<float>(bits);
}

// erf by Abramowitz & Stegun 7.1.26: absolute error below 1.5e-7 (plus rounding).
inline float erf_f32(float z) {
  const float a = std::abs(z);
  const float t = 1.0f / (1.0f + 0.3275911f * a);
  const float poly =
      ((((1.061405429f * t - 1.453152027f) * t + 1.421413741f) * t - 0.284496736f) * t + 0.254829592f) * t;
  const float y = 1.0f - poly * exp_f32(-a * a);
  return std::copysign(y, z);
}

// tanh as 1 - 2 / (e^2|x| + 1), with the odd Taylor series below |x| = 0.1 where that form
// cancels. Relative error below 1e-6.
inline float tanh_f32(float x) {
  const float a = std::abs(x);
  const float big = 1.0f - 2.0f / (exp_f32(2.0f * a) + 1.0f);
  const float x2 = x * x;
  const float small = x * (1.0f + x2 * (-1.0f / 3.0f + x2 * (2.0f / 15.0f - x2 * (17.0f / 315.0f))));
  // |x| < 0.1 tested on the bits and blended with a mask, as in exp_f32.
  const uint32_t use_small = 0u - static_cast<uint32_t>((std::bit_cast<uint32_t>(x) & 0x7FFFFFFFu) < 0x3DCCCCCDu);
  const uint32_t bits =
      (std::bit_cast<uint32_t>(small) & use_small) | (std::bit_cast<uint32_t>(std::copysign(big, x)) & ~use_small);
  return std::bit_cast<float>(bits);
}

// The unsigned integer type of T's width.
template <typename T>
using bits_of = std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t>;

// mask ? a : b with an all-ones / all-zeros mask. GCC (under its default -ftrapping-math) will
// not if-convert a select on a float comparison, which leaves the loop scalar; integer tests on
// the bit pattern and this blend keep it vectorisable.
template <typename T>
inline T blend(bits_of<T> mask, T a, T b) {
  return std::bit_cast<T>((std::bit_cast<bits_of<T>>(a) & mask) | (std::bit_cast<bits_of<T>>(b) & ~mask));
}

// All ones when x > 0 (x positive and nonzero; a NaN with the sign bit clear counts as positive).
template <typename T>
inline bits_of<T> positive_mask(T x) {
  using S = std::make_signed_t<bits_of<T>>;
  return bits_of<T>(0) - static_cast<bits_of<T>>(static_cast<S>(std::bit_cast<bits_of<T>>(x)) > 0);
}

template <typename T>
inline T act_exp(T x) {
  if constexpr (std::is_same_v<T, float>) {
    return exp_f32(x);
  } else {
    return std::exp(x);
  }
}
template <typename T>
inline T act_erf(T x) {
  if constexpr (std::is_same_v<T, float>) {
    return erf_f32(x);
  } else {
    return std::erf(x);
  }
}
template <typename T>
inline T act_tanh(T x) {
  if constexpr (std::is_same_v<T, float>) {
    return tanh_f32(x);
  } else {
    return std::tanh(x);
  }
}

// Calls fn(f) with f: T -> T computing act(x).
template <typename T, typename Fn>
void with_activation(Activation act, float slope, Fn&& fn) {
  switch (act) {
    case Activation::none: fn([](T x) { return x; }); return;
    // x < 0 ? 0 : x (not x > 0 ? x : 0) lets NaN through, as PyTorch does.
    case Activation::relu: fn([](T x) { return x < T(0) ? T(0) : x; }); return;
    case Activation::leaky_relu: {
      const T sl = static_cast<T>(slope);
      fn([sl](T x) { return x * blend(positive_mask(x), T(1), sl); });
      return;
    }
    // The exact erf form, PyTorch's default (not the tanh approximation).
    case Activation::gelu:
      fn([](T x) { return T(0.5) * x * (T(1) + act_erf(x * static_cast<T>(1.0 / std::numbers::sqrt2))); });
      return;
    case Activation::sigmoid: fn([](T x) { return T(1) / (T(1) + act_exp(-x)); }); return;
    case Activation::tanh: fn([](T x) { return act_tanh(x); }); return;
  }
}

// The GEMM epilogue on rows [r0, r1): c[i][j] = f(c[i][j] + bias[j]), bias optional.
template <typename T, typename F>
void bias_activation_rows(int64_t r0, int64_t r1, int64_t n, T* c, int64_t ldc, const T* bias, F f) {
  for (int64_t i = r0; i < r1; ++i) {
    T* row = c + i * ldc;
    if (bias) {
      for (int64_t j = 0; j < n; ++j) row[j] = f(row[j] + bias[j]);
    } else {
      for (int64_t j = 0; j < n; ++j) row[j] = f(row[j]);
    }
  }
}

}  // namespace kiln::kernels::detail
