#pragma once
// The CPU implementations of kernels/activation.h: the host path and what the sim device runs, called by
// the dispatch in kernels/activation.cc with a cpu stream (kernels/dispatch.h).
#include <cstdint>

#include "core/stream.h"
#include "kernels/activation.h"

namespace kiln::kernels::cpu {

template <typename T>
void activation_forward(const Stream& s, Activation act, float slope, const T* x, T* y, int64_t n);
template <typename T>
void activation_backward(const Stream& s, Activation act, float slope, const T* x, const T* y, const T* dy, T* dx,
                         int64_t n);

}  // namespace kiln::kernels::cpu

// Explicit instantiations of the family for T in the enclosing namespace: the CPU code
// (kernels::cpu) and the dispatch (kernels) are built for the same element types.
#define KILN_ACTIVATION_INSTANTIATE(T)                                                          \
  template void activation_forward<T>(const Stream&, Activation, float, const T*, T*, int64_t); \
  template void activation_backward<T>(const Stream&, Activation, float, const T*, const T*, const T*, T*, int64_t);
