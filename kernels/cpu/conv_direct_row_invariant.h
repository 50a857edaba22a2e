#pragma once
// The row-invariant (inference) convolution without an im2col buffer, on AVX-512: output pixels
// read their taps straight from a zero-padded copy of the image.
#include <cstdint>

#include "kernels/activation.h"
#include "kernels/conv.h"
#include "kernels/pooling.h"

namespace kiln::kernels::cpu {

// Whether conv_direct_row_invariant handles this shape on this CPU: AVX-512, c_out a multiple of
// 16, and a padded image of at most 4M floats (the per-thread copy).
bool conv_direct_row_invariant_applies(const Conv2dShape& c);

// Rows [r0, r1) of y (output pixels in NHWC order, c_out wide) = act(product + bias), bias
// optional: every product element is the chain fma(x[t], w[t][j], acc) over the kh * kw * c_in
// taps in order from zero, then the GEMM epilogue's f(acc + bias[j]). Taps whose kernel row (or,
// for kernel rows of 16 taps or more, column) lies in the padding are skipped; im2col +
// gemm_row_invariant adds fma(0, w, acc) for them, which leaves acc
// as it is for finite weights unless acc is -0 (a sum underflowed below 1e-45). So the bits are
// those of that path on any machine, whatever the rows' tiling, but for that case.
void conv_direct_row_invariant(const Conv2dShape& c, const float* x, const float* w, const float* bias, Activation act,
                               float slope, int64_t r0, int64_t r1, float* y);

// Whether conv_max_pool_direct_row_invariant handles this pair: the convolution as above, then a
// max pool over its whole output with windows that tile it (stride = window, no padding).
bool conv_max_pool_direct_applies(const Conv2dShape& c, const Pool2dShape& p);

// Pooled pixels [q0, q1) (NHWC order: image n's pooled pixel (py, px) is
// (n * p.out_h() + py) * p.out_w() + px) of y = max_pool(act(conv + bias)): the bits of
// conv_direct_row_invariant then max_pool2d_forward (its window order: the first cell seeds the
// max, a later one wins only if greater), without the convolution's output leaving the cache.
void conv_max_pool_direct_row_invariant(const Conv2dShape& c, const Pool2dShape& p, const float* x, const float* w,
                                        const float* bias, Activation act, float slope, int64_t q0, int64_t q1,
                                        float* y);

}  // namespace kiln::kernels::cpu
