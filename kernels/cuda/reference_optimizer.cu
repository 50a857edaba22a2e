// Reference Adam/AdamW (kernels/cuda/reference.h): one thread per parameter, without the vector
// loads of Kiln's kernel, the formulas of kernels/cpu/optimizer.cc (the bias corrections computed
// once in double on the host, as the CPU does).
#include <cmath>

#include "core/error.h"
#include "kernels/cuda/reference.h"
#include "kernels/cuda/reference_launch.cuh"

namespace kiln::kernels::cuda::reference {

namespace {

__global__ void ref_adam(int64_t n, float* p, const float* g, float* m, float* v, float lr, float b1, float b2,
                         float eps, float wd, bool decoupled, float inv_bc1, float inv_bc2) {
  KILN_GRID_STRIDE(i, n) {
    float grad = g[i];
    if (!decoupled) grad += wd * p[i];
    m[i] = b1 * m[i] + (1.0f - b1) * grad;
    v[i] = b2 * v[i] + (1.0f - b2) * grad * grad;
    const float mhat = m[i] * inv_bc1, vhat = v[i] * inv_bc2;
    if (decoupled) p[i] -= lr * wd * p[i];
    p[i] -= lr * mhat / (sqrtf(vhat) + eps);
  }
}

}  // namespace

void adam_update(const Stream& s, int64_t n, float* params, const float* grads, float* m, float* v,
                 const AdamHyper& h) {
  KILN_CHECK(s.device().is_cuda());
  KILN_CHECK(h.step >= 1, "adam step is 1-based, got ", h.step);
  const double step = static_cast<double>(h.step);
  const float inv_bc1 = static_cast<float>(1.0 / (1.0 - std::pow(static_cast<double>(h.beta1), step)));
  const float inv_bc2 = static_cast<float>(1.0 / (1.0 - std::pow(static_cast<double>(h.beta2), step)));
  launch_per_output(s, "ref_adam", ref_adam, n, n, params, grads, m, v, h.lr, h.beta1, h.beta2, h.eps,
                    h.weight_decay, h.decoupled_weight_decay, inv_bc1, inv_bc2);
}

}  // namespace kiln::kernels::cuda::reference
