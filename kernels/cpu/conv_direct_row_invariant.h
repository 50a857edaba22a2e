#pragma once
// The row-invariant convolution of a shallow kernel (serving's first convolution over one or three
// input channels) without an im2col buffer, on AVX-512.
#include <cstdint>

#include "kernels/conv.h"

namespace kiln::kernels::cpu {

// Whether conv_direct_row_invariant handles this shape on this CPU: AVX-512, a GEMM depth
// kh * kw * c_in of at most 32, and c_out a multiple of 16 up to 64.
bool conv_direct_row_invariant_applies(const Conv2dShape& c);

// Rows [r0, r1) of y (output pixels in NHWC order, c_out wide) = the bare product, without bias or
// activation: every element is the chain fma(x[t], w[t][j], acc) over all kh * kw * c_in taps in
// order from zero, taps in the padding reading zero. That is the chain im2col + gemm_row_invariant
// computes, so the bits are those of that path on any machine, whatever the rows' tiling.
void conv_direct_row_invariant(const Conv2dShape& c, const float* x, const float* w, int64_t r0, int64_t r1, float* y);

}  // namespace kiln::kernels::cpu
