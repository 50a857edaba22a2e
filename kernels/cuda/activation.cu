#include "kernels/cuda/activation.h"

#include "core/cuda/launch.cuh"
#include "core/cuda/stream.h"
#include "core/error.h"
#include "kernels/cuda/act.cuh"
#include "kernels/cuda/elementwise.cuh"
#include "kernels/cuda/gemm.h"

namespace kiln::kernels::cuda {

namespace {

__global__ void activation_forward_kernel(Activation act, float slope, const float* x, float* y, int64_t n) {
  KILN_GRID_STRIDE(i, n) y[i] = activate(act, slope, x[i]);
}

__global__ void activation_backward_kernel(Activation act, float slope, const float* x, const float* y,
                                           const float* dy, float* dx, int64_t n) {
  KILN_GRID_STRIDE(i, n) {
    const float xi = x ? x[i] : 0.0f, yi = y ? y[i] : 0.0f;
    dx[i] = activate_grad(act, slope, xi, yi, dy[i]);
  }
}

__global__ void bias_activation_kernel(int64_t m, int64_t n, float* c, int64_t ldc, const float* bias, Activation act,
                                       float slope) {
  KILN_GRID_STRIDE(i, m * n) {
    const int64_t r = i / n, col = i % n;
    float* p = c + r * ldc + col;
    *p = activate(act, slope, bias ? *p + bias[col] : *p);
  }
}

}  // namespace

void activation_forward(const Stream& s, Activation act, float slope, const float* x, float* y, int64_t n) {
  KILN_CHECK(s.device().is_cuda());
  if (n <= 0) return;
  kiln::cuda::launch("activation_forward_kernel", activation_forward_kernel, dim3(elementwise_blocks(n)),
                     dim3(kElementwiseThreads), 0, kiln::cuda::raw(s), act, slope, x, y, n);
}

void activation_backward(const Stream& s, Activation act, float slope, const float* x, const float* y,
                         const float* dy, float* dx, int64_t n) {
  KILN_CHECK(s.device().is_cuda());
  if (n <= 0) return;
  kiln::cuda::launch("activation_backward_kernel", activation_backward_kernel, dim3(elementwise_blocks(n)),
                     dim3(kElementwiseThreads), 0, kiln::cuda::raw(s), act, slope, x, y, dy, dx, n);
}

void bias_activation(const Stream& s, int64_t m, int64_t n, float* c, int64_t ldc, const float* bias, Activation act,
                     float slope) {
  KILN_CHECK(s.device().is_cuda());
  if (m <= 0 || n <= 0 || (!bias && act == Activation::none)) return;
  kiln::cuda::launch("bias_activation_kernel", bias_activation_kernel, dim3(elementwise_blocks(m * n)),
                     dim3(kElementwiseThreads), 0, kiln::cuda::raw(s), m, n, c, ldc, bias, act, slope);
}

}  // namespace kiln::kernels::cuda
