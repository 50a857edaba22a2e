#include "kernels/cuda/optimizer.h"

#include <cmath>

#include "core/cuda/launch.cuh"
#include "core/cuda/stream.h"
#include "core/error.h"
#include "kernels/cuda/elementwise.cuh"

namespace kiln::kernels::cuda {

namespace {

struct AdamConsts {
  float lr, b1, b2, eps, wd, inv_bc1, inv_bc2;
  bool decoupled;
};

AdamConsts adam_consts(const AdamHyper& h) {
  KILN_CHECK(h.step >= 1, "adam step is 1-based, got ", h.step);
  const double step = static_cast<double>(h.step);
  return {h.lr,
          h.beta1,
          h.beta2,
          h.eps,
          h.weight_decay,
          static_cast<float>(1.0 / (1.0 - std::pow(static_cast<double>(h.beta1), step))),
          static_cast<float>(1.0 / (1.0 - std::pow(static_cast<double>(h.beta2), step))),
          h.decoupled_weight_decay};
}

// The CPU path's adam_element (kernels/cpu/optimizer.cc), operation for operation.
__device__ __forceinline__ void adam_element(float& p, float g, float& m, float& v, const AdamConsts& k) {
  if (!k.decoupled) g += k.wd * p;
  m = k.b1 * m + (1.0f - k.b1) * g;
  v = k.b2 * v + (1.0f - k.b2) * g * g;
  const float mhat = m * k.inv_bc1, vhat = v * k.inv_bc2;
  if (k.decoupled) p -= k.lr * k.wd * p;
  p -= k.lr * mhat / (sqrtf(vhat) + k.eps);
}

__device__ __forceinline__ void sgd_element(float& p, float g, float* vel, const SgdHyper& h) {
  g += h.weight_decay * p;
  if (!vel) {
    p -= h.lr * g;
    return;
  }
  *vel = h.momentum * *vel + g;
  p -= h.lr * (h.nesterov ? g + h.momentum * *vel : *vel);
}

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

// Four elements per thread through float4 when every buffer is 16-byte aligned; the tail (and
// unaligned buffers) element by element.
__global__ void adam_kernel(int64_t n, float* p, const float* g, float* m, float* v, AdamConsts k, bool vec) {
  const int64_t n4 = vec ? n / 4 : 0;
  KILN_GRID_STRIDE(q, n4) {
    float4 pp = reinterpret_cast<float4*>(p)[q], mm = reinterpret_cast<float4*>(m)[q],
           vv = reinterpret_cast<float4*>(v)[q];
    const float4 gg = reinterpret_cast<const float4*>(g)[q];
    adam_element(pp.x, gg.x, mm.x, vv.x, k);
    adam_element(pp.y, gg.y, mm.y, vv.y, k);
    adam_element(pp.z, gg.z, mm.z, vv.z, k);
    adam_element(pp.w, gg.w, mm.w, vv.w, k);
    reinterpret_cast<float4*>(p)[q] = pp;
    reinterpret_cast<float4*>(m)[q] = mm;
    reinterpret_cast<float4*>(v)[q] = vv;
  }
  KILN_GRID_STRIDE(j, n - 4 * n4) {
    const int64_t i = 4 * n4 + j;
    adam_element(p[i], g[i], m[i], v[i], k);
  }
}

__global__ void sgd_kernel(int64_t n, float* p, const float* g, float* vel, SgdHyper h) {
  KILN_GRID_STRIDE(i, n) sgd_element(p[i], g[i], vel ? vel + i : nullptr, h);
}

// The rows to update: `count`, or *device_count (at most the capacity `count`) when given.
__device__ int64_t sparse_rows(int64_t count, const int64_t* device_count) {
  if (!device_count) return count;
  const int64_t n = *device_count;
  return n < count ? n : count;
}

__global__ void sparse_adagrad_kernel(int64_t dim, float* table, float* accum, const int64_t* ids, int64_t count,
                                      const int64_t* device_count, const float* grad_rows, float lr, float eps) {
  const int64_t n = sparse_rows(count, device_count) * dim;
  KILN_GRID_STRIDE(i, n) {
    const int64_t u = i / dim, d = i % dim;
    const int64_t off = ids[u] * dim + d;
    const float gd = grad_rows[i];
    accum[off] += gd * gd;
    table[off] -= lr * gd / (sqrtf(accum[off]) + eps);
  }
}

__global__ void sparse_adam_kernel(int64_t dim, float* table, float* m, float* v, const int64_t* ids, int64_t count,
                                   const int64_t* device_count, const float* grad_rows, AdamConsts k) {
  const int64_t n = sparse_rows(count, device_count) * dim;
  KILN_GRID_STRIDE(i, n) {
    const int64_t u = i / dim, d = i % dim;
    const int64_t off = ids[u] * dim + d;
    adam_element(table[off], grad_rows[i], m[off], v[off], k);
  }
}

}  // namespace

void sgd_update(const Stream& s, int64_t n, float* params, const float* grads, float* velocity, const SgdHyper& h) {
  KILN_CHECK(s.device().is_cuda());
  if (!velocity) KILN_CHECK(h.momentum == 0.0f && !h.nesterov, "sgd with momentum needs a velocity buffer");
  if (n <= 0) return;
  kiln::cuda::launch("sgd_kernel", sgd_kernel, dim3(elementwise_blocks(n)), dim3(kElementwiseThreads), 0,
                     kiln::cuda::raw(s), n, params, grads, velocity, h);
}

void adam_update(const Stream& s, int64_t n, float* params, const float* grads, float* m, float* v,
                 const AdamHyper& h) {
  KILN_CHECK(s.device().is_cuda());
  const AdamConsts k = adam_consts(h);
  if (n <= 0) return;
  const bool vec = aligned16(params) && aligned16(grads) && aligned16(m) && aligned16(v);
  kiln::cuda::launch("adam_kernel", adam_kernel, dim3(elementwise_blocks(vec ? n / 4 + 1 : n)),
                     dim3(kElementwiseThreads), 0, kiln::cuda::raw(s), n, params, grads, m, v, k, vec);
}

void sparse_adagrad_update(const Stream& s, int64_t dim, float* table, float* accum, const int64_t* ids, int64_t count,
                           const float* grad_rows, float lr, float eps, const int64_t* device_count) {
  KILN_CHECK(s.device().is_cuda() && dim > 0 && count >= 0);
  if (count == 0) return;
  kiln::cuda::launch("sparse_adagrad_kernel", sparse_adagrad_kernel, dim3(elementwise_blocks(count * dim)),
                     dim3(kElementwiseThreads), 0, kiln::cuda::raw(s), dim, table, accum, ids, count, device_count,
                     grad_rows, lr, eps);
}

void sparse_adam_update(const Stream& s, int64_t dim, float* table, float* m, float* v, const int64_t* ids,
                        int64_t count, const float* grad_rows, const AdamHyper& h, const int64_t* device_count) {
  KILN_CHECK(s.device().is_cuda() && dim > 0 && count >= 0);
  const AdamConsts k = adam_consts(h);
  if (count == 0) return;
  kiln::cuda::launch("sparse_adam_kernel", sparse_adam_kernel, dim3(elementwise_blocks(count * dim)),
                     dim3(kElementwiseThreads), 0, kiln::cuda::raw(s), dim, table, m, v, ids, count, device_count,
                     grad_rows, k);
}

}  // namespace kiln::kernels::cuda
