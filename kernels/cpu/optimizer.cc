#include "kernels/cpu/optimizer.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/thread_pool.h"

namespace kiln::kernels::cpu {

namespace {

constexpr int64_t kGrain = 4096;

// Bias-correction factors 1 / (1 - beta^step), computed once per call in double.
struct AdamConsts {
  double inv_bc1, inv_bc2;
};
AdamConsts adam_consts(const AdamHyper& h) {
  KILN_CHECK(h.step >= 1, "adam step is 1-based, got ", h.step);
  const double step = static_cast<double>(h.step);
  return {1.0 / (1.0 - std::pow(static_cast<double>(h.beta1), step)),
          1.0 / (1.0 - std::pow(static_cast<double>(h.beta2), step))};
}

// One Adam element update; shared by the dense and the row-sparse paths so they agree exactly.
template <typename T>
inline void adam_element(T& p, T g, T& m, T& v, T lr, T b1, T b2, T eps, T wd, bool decoupled, T inv_bc1, T inv_bc2) {
  if (!decoupled) g += wd * p;
  m = b1 * m + (T(1) - b1) * g;
  v = b2 * v + (T(1) - b2) * g * g;
  const T mhat = m * inv_bc1, vhat = v * inv_bc2;
  if (decoupled) p -= lr * wd * p;
  p -= lr * mhat / (std::sqrt(vhat) + eps);
}

// Adam over a contiguous range. The weight-decay mode is a template parameter and the pointers
// are unaliased so the loop vectorises: this pass touches every dense parameter every step.
template <typename T, bool kDecoupled>
void adam_range(T* __restrict p, const T* __restrict g, T* __restrict m, T* __restrict v, int64_t n, T lr, T b1, T b2,
                T eps, T wd, T inv_bc1, T inv_bc2) {
  for (int64_t i = 0; i < n; ++i) adam_element(p[i], g[i], m[i], v[i], lr, b1, b2, eps, wd, kDecoupled, inv_bc1, inv_bc2);
}

}  // namespace

template <typename T>
void sgd_update(const Stream& s, int64_t n, T* params, const T* grads, T* velocity, const SgdHyper& h) {
  KILN_CHECK(s.device().is_cpu());
  const T lr = static_cast<T>(h.lr), mom = static_cast<T>(h.momentum), wd = static_cast<T>(h.weight_decay);
  if (!velocity) {
    // Without a velocity buffer only plain SGD is expressible.
    KILN_CHECK(h.momentum == 0.0f && !h.nesterov, "sgd with momentum needs a velocity buffer");
    parallel_for(n, kGrain, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) params[i] -= lr * (grads[i] + wd * params[i]);
    });
    return;
  }
  parallel_for(n, kGrain, [&](int64_t b, int64_t e) {
    if (h.nesterov) {
      for (int64_t i = b; i < e; ++i) {
        const T g = grads[i] + wd * params[i];
        velocity[i] = mom * velocity[i] + g;
        params[i] -= lr * (g + mom * velocity[i]);
      }
    } else {
      for (int64_t i = b; i < e; ++i) {
        const T g = grads[i] + wd * params[i];
        velocity[i] = mom * velocity[i] + g;
        params[i] -= lr * velocity[i];
      }
    }
  });
}

template <typename T>
void adam_update(const Stream& s, int64_t n, T* params, const T* grads, T* m, T* v, const AdamHyper& h) {
  KILN_CHECK(s.device().is_cpu());
  const AdamConsts k = adam_consts(h);
  const T lr = static_cast<T>(h.lr), b1 = static_cast<T>(h.beta1), b2 = static_cast<T>(h.beta2),
          eps = static_cast<T>(h.eps), wd = static_cast<T>(h.weight_decay);
  const T inv_bc1 = static_cast<T>(k.inv_bc1), inv_bc2 = static_cast<T>(k.inv_bc2);
  const bool decoupled = h.decoupled_weight_decay;
  parallel_for(n, kGrain, [&](int64_t b, int64_t e) {
    if (decoupled)
      adam_range<T, true>(params + b, grads + b, m + b, v + b, e - b, lr, b1, b2, eps, wd, inv_bc1, inv_bc2);
    else
      adam_range<T, false>(params + b, grads + b, m + b, v + b, e - b, lr, b1, b2, eps, wd, inv_bc1, inv_bc2);
  });
}

template <typename T>
void sparse_adagrad_update(const Stream& s, int64_t dim, T* table, T* accum, const int64_t* ids, int64_t count,
                           const T* grad_rows, float lr, float eps) {
  KILN_CHECK(s.device().is_cpu());
  KILN_CHECK(dim > 0 && count >= 0);
  const T lr_t = static_cast<T>(lr), eps_t = static_cast<T>(eps);
  // Ids are unique (embedding_backward's output), so rows never collide across threads.
  parallel_for(count, std::max<int64_t>(1, kGrain / dim), [&](int64_t ub, int64_t ue) {
    for (int64_t u = ub; u < ue; ++u) {
      T* p = table + ids[u] * dim;
      T* acc = accum + ids[u] * dim;
      const T* g = grad_rows + u * dim;
      for (int64_t d = 0; d < dim; ++d) {
        acc[d] += g[d] * g[d];
        p[d] -= lr_t * g[d] / (std::sqrt(acc[d]) + eps_t);
      }
    }
  });
}

template <typename T>
void sparse_adam_update(const Stream& s, int64_t dim, T* table, T* m, T* v, const int64_t* ids, int64_t count,
                        const T* grad_rows, const AdamHyper& h) {
  KILN_CHECK(s.device().is_cpu());
  KILN_CHECK(dim > 0 && count >= 0);
  const AdamConsts k = adam_consts(h);
  const T lr = static_cast<T>(h.lr), b1 = static_cast<T>(h.beta1), b2 = static_cast<T>(h.beta2),
          eps = static_cast<T>(h.eps), wd = static_cast<T>(h.weight_decay);
  const T inv_bc1 = static_cast<T>(k.inv_bc1), inv_bc2 = static_cast<T>(k.inv_bc2);
  const bool decoupled = h.decoupled_weight_decay;
  parallel_for(count, std::max<int64_t>(1, kGrain / dim), [&](int64_t ub, int64_t ue) {
    for (int64_t u = ub; u < ue; ++u) {
      const int64_t off = ids[u] * dim;
      const T* g = grad_rows + u * dim;
      for (int64_t d = 0; d < dim; ++d)
        adam_element(table[off + d], g[d], m[off + d], v[off + d], lr, b1, b2, eps, wd, decoupled, inv_bc1, inv_bc2);
    }
  });
}

KILN_OPTIMIZER_INSTANTIATE(float)
KILN_OPTIMIZER_INSTANTIATE(double)

}  // namespace kiln::kernels::cpu
