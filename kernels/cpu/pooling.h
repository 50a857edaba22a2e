#pragma once
// The CPU implementations of kernels/pooling.h: the host path and what the sim device runs, called by
// the dispatch in kernels/pooling.cc with a cpu stream (kernels/dispatch.h).
#include <cstdint>

#include "core/stream.h"
#include "kernels/pooling.h"

namespace kiln::kernels::cpu {

template <typename T>
void max_pool2d_forward(const Stream& s, const Pool2dShape& shape, const T* x, T* y, int32_t* argmax);
template <typename T>
void max_pool2d_backward(const Stream& s, const Pool2dShape& shape, const T* dy, const int32_t* argmax, T* dx);
template <typename T>
void avg_pool2d_forward(const Stream& s, const Pool2dShape& shape, const T* x, T* y);
template <typename T>
void avg_pool2d_backward(const Stream& s, const Pool2dShape& shape, const T* dy, T* dx);
template <typename T>
void global_avg_pool_forward(const Stream& s, int64_t n, int64_t hw, int64_t c, const T* x, T* y);
template <typename T>
void global_avg_pool_backward(const Stream& s, int64_t n, int64_t hw, int64_t c, const T* dy, T* dx);

}  // namespace kiln::kernels::cpu

// Explicit instantiations of the family for T in the enclosing namespace: the CPU code
// (kernels::cpu) and the dispatch (kernels) are built for the same element types.
#define KILN_POOLING_INSTANTIATE(T)                                                                      \
  template void max_pool2d_forward<T>(const Stream&, const Pool2dShape&, const T*, T*, int32_t*);        \
  template void max_pool2d_backward<T>(const Stream&, const Pool2dShape&, const T*, const int32_t*, T*); \
  template void avg_pool2d_forward<T>(const Stream&, const Pool2dShape&, const T*, T*);                  \
  template void avg_pool2d_backward<T>(const Stream&, const Pool2dShape&, const T*, T*);                 \
  template void global_avg_pool_forward<T>(const Stream&, int64_t, int64_t, int64_t, const T*, T*);      \
  template void global_avg_pool_backward<T>(const Stream&, int64_t, int64_t, int64_t, const T*, T*);
