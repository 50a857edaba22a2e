#pragma once
// The CPU implementations of kernels/embedding.h: the host path and what the sim device runs, called by
// the dispatch in kernels/embedding.cc with a cpu stream (kernels/dispatch.h).
#include <cstdint>

#include "core/stream.h"
#include "kernels/embedding.h"

namespace kiln::kernels::cpu {

// kiln::Error naming the first id outside [0, rows) among nnz host ids.
void check_ids(const int64_t* ids, int64_t nnz, int64_t rows);

template <typename T>
void embedding_forward(const Stream& s, const T* table, int64_t rows, int64_t dim, const int64_t* ids,
                       const int64_t* offsets, int64_t batch, Combiner combiner, T* out);
template <typename T>
int64_t embedding_backward(const Stream& s, const T* dout, int64_t rows, int64_t dim, const int64_t* ids,
                           const int64_t* offsets, int64_t batch, Combiner combiner, int64_t* unique_ids, T* grad_rows);

}  // namespace kiln::kernels::cpu

// Explicit instantiations of the family for T in the enclosing namespace: the CPU code
// (kernels::cpu) and the dispatch (kernels) are built for the same element types.
#define KILN_EMBEDDING_INSTANTIATE(T)                                                                               \
  template void embedding_forward<T>(const Stream&, const T*, int64_t, int64_t, const int64_t*, const int64_t*,     \
                                     int64_t, Combiner, T*);                                                        \
  template int64_t embedding_backward<T>(const Stream&, const T*, int64_t, int64_t, const int64_t*, const int64_t*, \
                                         int64_t, Combiner, int64_t*, T*);
