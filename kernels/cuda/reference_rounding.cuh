#pragma once
// An operand as the stream's precision multiplies it, for the reference GEMM and convolution
// (kernels/cuda/reference.h): fp32 as it is, tf32 rounded as Kiln's kernels and cuBLAS round
// (cvt.rna: 10 mantissa bits, ties away from zero), bf16 rounded to nearest even as the bf16
// copies of kernels/cuda/precision.cu are.
#include <cuda_bf16.h>

#include <cstdint>

#include "core/stream.h"

namespace kiln::kernels::cuda::reference {

__device__ __forceinline__ float round_operand(float x, MathPrecision p) {
  if (p == MathPrecision::tf32) {
    uint32_t r;
    asm("cvt.rna.tf32.f32 %0, %1;\n" : "=r"(r) : "f"(x));
    return __uint_as_float(r);
  }
  if (p == MathPrecision::bf16) return __bfloat162float(__float2bfloat16(x));
  return x;
}

}  // namespace kiln::kernels::cuda::reference
