#pragma once
// A convolution and the max pool after it as one inference op: the convolution's output never
// leaves the core's cache (on the Fashion-MNIST CNN the first one would write 6.4 MB at batch 64
// for the pool to read again).
#include <cstdint>

#include "core/stream.h"
#include "kernels/activation.h"
#include "kernels/conv.h"
#include "kernels/pooling.h"

namespace kiln::kernels {

// Whether conv2d_max_pool_forward runs this pair on the stream's device: the CPU (and sim, which
// runs it) with AVX-512, fp32, and pool windows that tile the convolution's output (stride =
// window, no padding). Elsewhere the model runs conv2d_forward and then max_pool2d_forward.
template <typename T>
bool conv2d_max_pool_fuses(const Stream& s, const Conv2dShape& conv, const Pool2dShape& pool);

// Inference only (row-invariant): y = max_pool(act(conv(x, w) + bias)), pool.n = conv.n; the bits
// of conv2d_forward(..., row_invariant = true) then max_pool2d_forward. Only where
// conv2d_max_pool_fuses says so.
template <typename T>
void conv2d_max_pool_forward(const Stream& s, const Conv2dShape& conv, const Pool2dShape& pool, const T* x, const T* w,
                             const T* bias, T* y, Activation act, float slope);

}  // namespace kiln::kernels
