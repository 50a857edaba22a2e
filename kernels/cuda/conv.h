#pragma once
// 2-D convolution on the GPU as implicit GEMM on the tensor cores (the CPU set: kernels/conv.h):
// NHWC activations, HWIO weights, zero padding. No im2col buffer: the GEMM main loop
// (gemm_kernel.cuh) gathers its A or B tiles straight from the image. E = float runs as TF32,
// E = __nv_bfloat16 as BF16; accumulation and outputs are fp32.
//   forward      y[n*oh*ow, c_out]      = im2col(x) * w[kh*kw*c_in, c_out]
//   data grad    dx[n*h*w, c_in]         = gather(dy) * w^T (per tap)
//   weight grad  dw[kh*kw*c_in, c_out]  (+)= im2col(x)^T * dy
#include <cuda_bf16.h>

#include <cstdint>

#include "core/stream.h"
#include "kernels/activation.h"
#include "kernels/conv.h"

namespace kiln::kernels::cuda {

// y = act(conv(x, w) + bias); bias may be null.
template <typename E>
void conv2d_forward(const Stream& s, const Conv2dShape& shape, const E* x, const E* w, const float* bias, float* y,
                    Activation act = Activation::none, float slope = 0.01f);

// dx = conv-transpose(dy, w); overwrites dx.
template <typename E>
void conv2d_backward_data(const Stream& s, const Conv2dShape& shape, const E* dy, const E* w, float* dx);

// dw (+)= correlation of x and dy; dbias (+)= sum of dy over n, h, w (dbias may be null). dbias
// needs dy in fp32: pass dy_f32 (may be null when dbias is).
template <typename E>
void conv2d_backward_weight(const Stream& s, const Conv2dShape& shape, const E* x, const E* dy, float* dw,
                            const float* dy_f32, float* dbias, bool accumulate);

}  // namespace kiln::kernels::cuda
