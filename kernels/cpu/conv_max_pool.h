#pragma once
// The CPU implementation of kernels/conv_max_pool.h (also what the sim device runs).
#include "kernels/conv_max_pool.h"

namespace kiln::kernels::cpu {

template <typename T>
bool conv2d_max_pool_fuses(const Stream& s, const Conv2dShape& conv, const Pool2dShape& pool);
template <typename T>
void conv2d_max_pool_forward(const Stream& s, const Conv2dShape& conv, const Pool2dShape& pool, const T* x, const T* w,
                             const T* bias, T* y, Activation act, float slope);

}  // namespace kiln::kernels::cpu

#define KILN_CONV_MAX_POOL_INSTANTIATE(T)                                                                   \
  template bool conv2d_max_pool_fuses<T>(const Stream&, const Conv2dShape&, const Pool2dShape&);            \
  template void conv2d_max_pool_forward<T>(const Stream&, const Conv2dShape&, const Pool2dShape&, const T*, \
                                           const T*, const T*, T*, Activation, float);
