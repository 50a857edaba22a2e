#pragma once
// Activations on the device, forward and derivative, the same functions as the CPU path
// (kernels/cpu/act_impl.h): relu lets NaN through, gelu is the exact erf form. The CPU f32 path
// uses polynomial approximations of exp/erf/tanh (errors below 2e-7 relative); these use CUDA's
// libdevice functions, so the two agree to a few ulp, not bit for bit.
#include <cmath>

#include "kernels/activation.h"

namespace kiln::kernels::cuda {

__device__ __forceinline__ float activate(Activation act, float slope, float x) {
  switch (act) {
    case Activation::none: return x;
    case Activation::relu: return x < 0.0f ? 0.0f : x;
    case Activation::leaky_relu: return x > 0.0f ? x : x * slope;
    case Activation::gelu: return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f));
    case Activation::sigmoid: return 1.0f / (1.0f + expf(-x));
    case Activation::tanh: return tanhf(x);
  }
  return x;
}

// dx for one element: x is the activation's input, y its output (see kernels/activation.h).
__device__ __forceinline__ float activate_grad(Activation act, float slope, float x, float y, float dy) {
  switch (act) {
    case Activation::none: return dy;
    case Activation::relu: return x > 0.0f ? dy : 0.0f;
    case Activation::leaky_relu: return x > 0.0f ? dy : dy * slope;
    case Activation::gelu: {
      const float cdf = 0.5f * (1.0f + erff(x * 0.70710678118654752f));
      const float pdf = 0.39894228040143268f * expf(-0.5f * x * x);
      return dy * (cdf + x * pdf);
    }
    case Activation::sigmoid: return dy * y * (1.0f - y);
    case Activation::tanh: return dy * (1.0f - y * y);
  }
  return dy;
}

}  // namespace kiln::kernels::cuda
