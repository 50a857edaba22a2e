#pragma once
// Pooling on the GPU over NHWC activations (the CPU set: kernels/pooling.h), fp32. Forward
// passes scan each window in the CPU path's order (argmax identical, first maximum wins);
// backward passes gather instead of scattering, each input summing the outputs that cover it in
// output order: deterministic, no atomics, the CPU path's bits.
#include <cstdint>

#include "core/stream.h"
#include "kernels/pooling.h"

namespace kiln::kernels::cuda {

void max_pool2d_forward(const Stream& s, const Pool2dShape& shape, const float* x, float* y, int32_t* argmax);
void max_pool2d_backward(const Stream& s, const Pool2dShape& shape, const float* dy, const int32_t* argmax, float* dx);
void avg_pool2d_forward(const Stream& s, const Pool2dShape& shape, const float* x, float* y);
void avg_pool2d_backward(const Stream& s, const Pool2dShape& shape, const float* dy, float* dx);
void global_avg_pool_forward(const Stream& s, int64_t n, int64_t hw, int64_t c, const float* x, float* y);
void global_avg_pool_backward(const Stream& s, int64_t n, int64_t hw, int64_t c, const float* dy, float* dx);

}  // namespace kiln::kernels::cuda
