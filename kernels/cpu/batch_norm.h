#pragma once
// The CPU implementations of kernels/batch_norm.h: the host path and what the sim device runs, called by
// the dispatch in kernels/batch_norm.cc with a cpu stream (kernels/dispatch.h).
#include <cstdint>

#include "core/stream.h"
#include "kernels/batch_norm.h"

namespace kiln::kernels::cpu {

template <typename T>
void batch_norm_forward_training(const Stream& s, int64_t rows, int64_t channels, const T* x, const T* gamma,
                                 const T* beta, T eps, T momentum, T* y, T* save_mean, T* save_inv_std, T* running_mean,
                                 T* running_var);
template <typename T>
void batch_norm_forward_inference(const Stream& s, int64_t rows, int64_t channels, const T* x, const T* gamma,
                                  const T* beta, const T* running_mean, const T* running_var, T eps, T* y);
template <typename T>
void batch_norm_backward(const Stream& s, int64_t rows, int64_t channels, const T* x, const T* dy, const T* gamma,
                         const T* save_mean, const T* save_inv_std, T* dx, T* dgamma, T* dbeta);

}  // namespace kiln::kernels::cpu

// Explicit instantiations of the family for T in the enclosing namespace: the CPU code
// (kernels::cpu) and the dispatch (kernels) are built for the same element types.
#define KILN_BATCH_NORM_INSTANTIATE(T)                                                                              \
  template void batch_norm_forward_training<T>(const Stream&, int64_t, int64_t, const T*, const T*, const T*, T, T, \
                                               T*, T*, T*, T*, T*);                                                 \
  template void batch_norm_forward_inference<T>(const Stream&, int64_t, int64_t, const T*, const T*, const T*,      \
                                                const T*, const T*, T, T*);                                         \
  template void batch_norm_backward<T>(const Stream&, int64_t, int64_t, const T*, const T*, const T*, const T*,     \
                                       const T*, T*, T*, T*);
