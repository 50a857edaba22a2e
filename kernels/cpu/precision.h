#pragma once
// The GPU's tensor-core input precisions on the CPU (Stream::precision(), docs/cuda.md
// "Precision"): GEMM and convolution operands rounded exactly as the GPU rounds them, products and
// sums in fp32, so CPU and sim runs at TF32 or BF16 show the GPU's numerics (up to summation
// order). Only f32 data is rounded; f64 (gradient checks) stays f64.
#include <cstdint>

#include "core/stream.h"

namespace kiln::kernels::cpu {

// fp32 -> TF32 (10 mantissa bits), round to nearest, ties away from zero (PTX cvt.rna.tf32.f32).
float round_tf32(float x);
// fp32 -> BF16 (7 mantissa bits), round to nearest even (__float2bfloat16); NaN stays NaN.
float round_bf16(float x);

// `n` elements of x rounded to `p`, in a scratch buffer of the calling thread (one per `slot`,
// 0..2, valid until the next call with that slot); x itself for fp32 or f64.
const float* rounded(MathPrecision p, const float* x, int64_t n, int slot);
inline const double* rounded(MathPrecision, const double* x, int64_t, int) { return x; }

// True when T is f32 and p rounds: the entry points then round their operands and call
// themselves on an fp32 stream.
template <typename T>
bool rounds(const Stream& s) {
  return sizeof(T) == 4 && s.precision() != MathPrecision::fp32;
}

}  // namespace kiln::kernels::cpu
