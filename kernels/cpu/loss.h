#pragma once
// The CPU implementations of kernels/loss.h: the host path and what the sim device runs, called by
// the dispatch in kernels/loss.cc with a cpu stream (kernels/dispatch.h).
#include <cstdint>

#include "core/stream.h"
#include "kernels/loss.h"

namespace kiln::kernels::cpu {

template <typename T>
void softmax_cross_entropy_forward(const Stream& s, const T* logits, const int32_t* labels, int64_t batch,
                                   int64_t classes, T* probs, T* losses);
template <typename T>
void softmax_cross_entropy_backward(const Stream& s, const T* probs, const int32_t* labels, int64_t batch,
                                    int64_t classes, T grad_scale, T* dlogits);
template <typename T>
void mse_forward(const Stream& s, const T* pred, const T* target, int64_t n, T* losses);
template <typename T>
void mse_backward(const Stream& s, const T* pred, const T* target, int64_t n, T grad_scale, T* dpred);
template <typename T>
void huber_forward(const Stream& s, const T* pred, const T* target, int64_t n, T delta, T* losses);
template <typename T>
void huber_backward(const Stream& s, const T* pred, const T* target, int64_t n, T delta, T grad_scale, T* dpred);
template <typename T>
void logistic_forward(const Stream& s, const T* logits, const T* target, int64_t n, T* losses);
template <typename T>
void logistic_backward(const Stream& s, const T* logits, const T* target, int64_t n, T grad_scale, T* dlogits);

}  // namespace kiln::kernels::cpu

// Explicit instantiations of the family for T in the enclosing namespace: the CPU code
// (kernels::cpu) and the dispatch (kernels) are built for the same element types.
#define KILN_LOSS_INSTANTIATE(T)                                                                                     \
  template void softmax_cross_entropy_forward<T>(const Stream&, const T*, const int32_t*, int64_t, int64_t, T*, T*); \
  template void softmax_cross_entropy_backward<T>(const Stream&, const T*, const int32_t*, int64_t, int64_t, T, T*); \
  template void mse_forward<T>(const Stream&, const T*, const T*, int64_t, T*);                                      \
  template void mse_backward<T>(const Stream&, const T*, const T*, int64_t, T, T*);                                  \
  template void huber_forward<T>(const Stream&, const T*, const T*, int64_t, T, T*);                                 \
  template void huber_backward<T>(const Stream&, const T*, const T*, int64_t, T, T, T*);                             \
  template void logistic_forward<T>(const Stream&, const T*, const T*, int64_t, T*);                                 \
  template void logistic_backward<T>(const Stream&, const T*, const T*, int64_t, T, T*);
