#pragma once
// Element-wise activations, forward and backward. Also used as GEMM/convolution epilogues.
#include <cstdint>

#include "core/stream.h"

namespace kiln::kernels {

enum class Activation : uint8_t { none, relu, leaky_relu, gelu, sigmoid, tanh };

// y = act(x). `slope` is the negative slope of leaky_relu, ignored otherwise. y may alias x.
template <typename T>
void activation_forward(const Stream& s, Activation act, float slope, const T* x, T* y, int64_t n);

// dx = dy * act'(x). Both the input x and the output y are passed so each activation uses the
// cheaper one (sigmoid/tanh use y, gelu uses x). dx may alias dy.
template <typename T>
void activation_backward(const Stream& s, Activation act, float slope, const T* x, const T* y, const T* dy, T* dx,
                         int64_t n);

}  // namespace kiln::kernels
