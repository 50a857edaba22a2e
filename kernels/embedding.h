#pragma once
// Embedding lookup for single- and multi-valued categorical columns. Example b owns ids
// [offsets[b], offsets[b+1]) (CSR layout, offsets has batch+1 entries); an example with no ids
// gets a zero vector.
#include <cstdint>

#include "core/stream.h"

namespace kiln::kernels {

enum class Combiner : uint8_t { sum, mean };

// out[b, :] = combine(table[ids[j], :] for j in example b). Ids outside [0, rows) are a user
// error (kiln::Error naming the id).
template <typename T>
void embedding_forward(const Stream& s, const T* table, int64_t rows, int64_t dim, const int64_t* ids,
                       const int64_t* offsets, int64_t batch, Combiner combiner, T* out);

// Row-sparse gradient of the table [rows, dim]: unique ids in ascending order and, for each, the
// summed gradient rows. Deterministic (no float atomics; sums in id-then-position order). Ids
// outside [0, rows) are a user error, as in the forward. unique_ids must hold
// nnz = offsets[batch] entries and grad_rows nnz * dim; returns the count of unique ids (on a
// device stream this synchronizes the stream to read it).
template <typename T>
int64_t embedding_backward(const Stream& s, const T* dout, int64_t rows, int64_t dim, const int64_t* ids,
                           const int64_t* offsets, int64_t batch, Combiner combiner, int64_t* unique_ids, T* grad_rows);
// The same without a host round trip: the count goes to *count, device memory on a device stream
// (host memory on the CPU). No CUDA kernel yet.
template <typename T>
void embedding_backward_async(const Stream& s, const T* dout, int64_t rows, int64_t dim, const int64_t* ids,
                              const int64_t* offsets, int64_t batch, Combiner combiner, int64_t* unique_ids,
                              T* grad_rows, int64_t* count);

}  // namespace kiln::kernels
