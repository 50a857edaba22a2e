#pragma once
// The CPU implementations of kernels/reduce.h: the host path and what the sim device runs, called by
// the dispatch in kernels/reduce.cc with a cpu stream (kernels/dispatch.h).
#include <cstdint>

#include "core/stream.h"
#include "kernels/reduce.h"

namespace kiln::kernels::cpu {

template <typename T>
void sum_rows(const Stream& s, const T* x, int64_t rows, int64_t cols, T* out, bool accumulate);
template <typename T>
double sum_squares(const Stream& s, const T* x, int64_t n);
template <typename T>
void scale_inplace(const Stream& s, T* x, int64_t n, T factor);
template <typename T>
void add_inplace(const Stream& s, T* x, const T* y, int64_t n);
template <typename T>
int64_t count_argmax_matches(const Stream& s, const T* logits, const int32_t* labels, int64_t rows, int64_t classes);

}  // namespace kiln::kernels::cpu

// Explicit instantiations of the family for T in the enclosing namespace: the CPU code
// (kernels::cpu) and the dispatch (kernels) are built for the same element types.
#define KILN_REDUCE_INSTANTIATE(T)                                                \
  template void sum_rows<T>(const Stream&, const T*, int64_t, int64_t, T*, bool); \
  template double sum_squares<T>(const Stream&, const T*, int64_t);               \
  template void scale_inplace<T>(const Stream&, T*, int64_t, T);                  \
  template void add_inplace<T>(const Stream&, T*, const T*, int64_t);            \
  template int64_t count_argmax_matches<T>(const Stream&, const T*, const int32_t*, int64_t, int64_t);
