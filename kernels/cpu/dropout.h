#pragma once
// The CPU implementations of kernels/dropout.h: the host path and what the sim device runs, called by
// the dispatch in kernels/dropout.cc with a cpu stream (kernels/dispatch.h).
#include <cstdint>

#include "core/stream.h"
#include "kernels/dropout.h"

namespace kiln::kernels::cpu {

template <typename T>
void dropout_forward(const Stream& s, int64_t n, float rate, uint64_t seed, uint64_t stream, const T* x, T* y,
                     uint8_t* mask, uint64_t first = 0);
template <typename T>
void dropout_backward(const Stream& s, int64_t n, float rate, const uint8_t* mask, const T* dy, T* dx);

}  // namespace kiln::kernels::cpu

// Explicit instantiations of the family for T in the enclosing namespace: the CPU code
// (kernels::cpu) and the dispatch (kernels) are built for the same element types.
#define KILN_DROPOUT_INSTANTIATE(T)                                                                           \
  template void dropout_forward<T>(const Stream&, int64_t, float, uint64_t, uint64_t, const T*, T*, uint8_t*, \
                                   uint64_t);                                                                 \
  template void dropout_backward<T>(const Stream&, int64_t, float, const uint8_t*, const T*, T*);
