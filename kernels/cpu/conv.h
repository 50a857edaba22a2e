#pragma once
// The CPU implementations of kernels/conv.h: the host path and what the sim device runs, called by
// the dispatch in kernels/conv.cc with a cpu stream (kernels/dispatch.h).
#include <cstdint>

#include "core/stream.h"
#include "kernels/conv.h"

namespace kiln::kernels::cpu {

template <typename T>
void conv2d_forward(const Stream& s, const Conv2dShape& shape, const T* x, const T* w, const T* bias, T* y,
                    Activation act = Activation::none, float slope = 0.01f, bool row_invariant = false);
template <typename T>
void conv2d_backward_data(const Stream& s, const Conv2dShape& shape, const T* dy, const T* w, T* dx);
template <typename T>
void conv2d_backward_weight(const Stream& s, const Conv2dShape& shape, const T* x, const T* dy, T* dw, T* dbias,
                            bool accumulate);

}  // namespace kiln::kernels::cpu

// Explicit instantiations of the family for T in the enclosing namespace: the CPU code
// (kernels::cpu) and the dispatch (kernels) are built for the same element types.
#define KILN_CONV_INSTANTIATE(T)                                                                                   \
  template void conv2d_forward<T>(const Stream&, const Conv2dShape&, const T*, const T*, const T*, T*, Activation, \
                                  float, bool);                                                                    \
  template void conv2d_backward_data<T>(const Stream&, const Conv2dShape&, const T*, const T*, T*);                \
  template void conv2d_backward_weight<T>(const Stream&, const Conv2dShape&, const T*, const T*, T*, T*, bool);
