// Reference activations (kernels/cuda/reference.h): kernels/cpu/act_impl.h and
// kernels/cpu/activation.cc term by term, one thread per element.
#include "core/error.h"
#include "kernels/cuda/reference.h"
#include "kernels/cuda/reference_launch.cuh"

namespace kiln::kernels::cuda::reference {

namespace {

// The CPU's positive_mask: x > 0 read as a signed integer (-0 is not positive; a NaN with the
// sign bit clear is).
__device__ bool positive(float x) { return __float_as_int(x) > 0; }

__device__ float forward(Activation act, float slope, float x) {
  switch (act) {
    case Activation::none: return x;
    case Activation::relu: return x < 0.0f ? 0.0f : x;  // NaN passes, as on the CPU
    case Activation::leaky_relu: return x * (positive(x) ? 1.0f : slope);
    case Activation::gelu: return 0.5f * x * (1.0f + erff(x * static_cast<float>(0.70710678118654752440)));
    case Activation::sigmoid: return 1.0f / (1.0f + expf(-x));
    case Activation::tanh: return tanhf(x);
  }
  return x;
}

// x is the input, y the output; each case reads the one the CPU reads.
__device__ float backward(Activation act, float slope, float x, float y, float d) {
  switch (act) {
    case Activation::none: return d;
    case Activation::relu: return x > 0.0f ? d : 0.0f;
    case Activation::leaky_relu: return d * (positive(x) ? 1.0f : slope);
    case Activation::gelu: {
      const float cdf = 0.5f * (1.0f + erff(x * static_cast<float>(0.70710678118654752440)));
      const float pdf = static_cast<float>(0.39894228040143267794) * expf(-0.5f * x * x);
      return d * (cdf + x * pdf);
    }
    case Activation::sigmoid: return d * y * (1.0f - y);
    case Activation::tanh: return d * (1.0f - y * y);
  }
  return d;
}

__global__ void ref_activation_forward(Activation act, float slope, const float* x, float* y, int64_t n) {
  KILN_GRID_STRIDE(i, n) y[i] = forward(act, slope, x[i]);
}

__global__ void ref_activation_backward(Activation act, float slope, const float* x, const float* y, const float* dy,
                                        float* dx, int64_t n) {
  KILN_GRID_STRIDE(i, n) dx[i] = backward(act, slope, x ? x[i] : 0.0f, y ? y[i] : 0.0f, dy[i]);
}

}  // namespace

void activation_forward(const Stream& s, Activation act, float slope, const float* x, float* y, int64_t n) {
  KILN_CHECK(s.device().is_cuda());
  launch_per_output(s, "ref_activation_forward", ref_activation_forward, n, act, slope, x, y, n);
}

void activation_backward(const Stream& s, Activation act, float slope, const float* x, const float* y,
                         const float* dy, float* dx, int64_t n) {
  KILN_CHECK(s.device().is_cuda());
  launch_per_output(s, "ref_activation_backward", ref_activation_backward, n, act, slope, x, y, dy, dx, n);
}

}  // namespace kiln::kernels::cuda::reference
