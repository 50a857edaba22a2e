#pragma once
// Optimizer updates, each one fused pass over a flat parameter buffer and its twins.
#include <cstdint>

#include "core/stream.h"

namespace kiln::kernels {

struct SgdHyper {
  float lr = 0.01f, momentum = 0.0f, weight_decay = 0.0f;
  bool nesterov = false;
};
// v = momentum v + (g + wd p); p -= lr (nesterov ? g + wd p + momentum v : v).
template <typename T>
void sgd_update(const Stream& s, int64_t n, T* params, const T* grads, T* velocity, const SgdHyper& h);

struct AdamHyper {
  float lr = 1e-3f, beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f, weight_decay = 0.0f;
  bool decoupled_weight_decay = false;  // AdamW
  int64_t step = 1;                     // 1-based, for bias correction
};
// Adam (weight decay added to the gradient) or AdamW (decoupled: p -= lr wd p).
template <typename T>
void adam_update(const Stream& s, int64_t n, T* params, const T* grads, T* m, T* v, const AdamHyper& h);

// Row-sparse updates of an embedding table [rows, dim] for the unique ids of one step.
// `count` rows of ids and grad_rows are updated; with `device_count`, count is only their capacity
// and the rows updated are *device_count (device memory; host memory on the CPU), read when the op
// runs: a captured training step leaves the unique-id count there (embedding_backward_async), and
// the update is launched for the capacity, the rows past the count doing nothing.
// Adagrad: acc += g^2; p -= lr g / (sqrt(acc) + eps). acc has the table's shape.
template <typename T>
void sparse_adagrad_update(const Stream& s, int64_t dim, T* table, T* accum, const int64_t* ids, int64_t count,
                           const T* grad_rows, float lr, float eps, const int64_t* device_count = nullptr);
// Lazy Adam: only the touched rows' moments decay.
template <typename T>
void sparse_adam_update(const Stream& s, int64_t dim, T* table, T* m, T* v, const int64_t* ids, int64_t count,
                        const T* grad_rows, const AdamHyper& h, const int64_t* device_count = nullptr);

}  // namespace kiln::kernels
