#pragma once
// The CPU implementations of kernels/optimizer.h: the host path and what the sim device runs, called by
// the dispatch in kernels/optimizer.cc with a cpu stream (kernels/dispatch.h).
#include <cstdint>

#include "core/stream.h"
#include "kernels/optimizer.h"

namespace kiln::kernels::cpu {

template <typename T>
void sgd_update(const Stream& s, int64_t n, T* params, const T* grads, T* velocity, const SgdHyper& h);
template <typename T>
void adam_update(const Stream& s, int64_t n, T* params, const T* grads, T* m, T* v, const AdamHyper& h);
template <typename T>
void sparse_adagrad_update(const Stream& s, int64_t dim, T* table, T* accum, const int64_t* ids, int64_t count,
                           const T* grad_rows, float lr, float eps);
template <typename T>
void sparse_adam_update(const Stream& s, int64_t dim, T* table, T* m, T* v, const int64_t* ids, int64_t count,
                        const T* grad_rows, const AdamHyper& h);

}  // namespace kiln::kernels::cpu

// Explicit instantiations of the family for T in the enclosing namespace: the CPU code
// (kernels::cpu) and the dispatch (kernels) are built for the same element types.
#define KILN_OPTIMIZER_INSTANTIATE(T)                                                                              \
  template void sgd_update<T>(const Stream&, int64_t, T*, const T*, T*, const SgdHyper&);                          \
  template void adam_update<T>(const Stream&, int64_t, T*, const T*, T*, T*, const AdamHyper&);                    \
  template void sparse_adagrad_update<T>(const Stream&, int64_t, T*, T*, const int64_t*, int64_t, const T*, float, \
                                         float);                                                                   \
  template void sparse_adam_update<T>(const Stream&, int64_t, T*, T*, T*, const int64_t*, int64_t, const T*,       \
                                      const AdamHyper&);
