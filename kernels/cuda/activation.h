#pragma once
// Element-wise activations on the GPU (the CPU set: kernels/activation.h), fp32.
#include <cstdint>

#include "core/stream.h"
#include "kernels/activation.h"

namespace kiln::kernels::cuda {

// y = act(x); y may alias x.
void activation_forward(const Stream& s, Activation act, float slope, const float* x, float* y, int64_t n);
// dx = dy * act'(x) (sigmoid and tanh use y); dx may alias dy.
void activation_backward(const Stream& s, Activation act, float slope, const float* x, const float* y,
                         const float* dy, float* dx, int64_t n);

}  // namespace kiln::kernels::cuda
