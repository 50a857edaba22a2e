#pragma once
// Embedding lookup on the GPU (the CPU set: kernels/embedding.h), fp32 tables, CSR ids.
#include <cstdint>

#include "core/stream.h"
#include "kernels/embedding.h"

namespace kiln::kernels::cuda {

// out[b, :] = combine(table[ids[j], :] for j in [offsets[b], offsets[b+1])), one warp per
// example, 16-byte loads when dim and the pointers allow. The sum runs in the CPU path's order,
// so the result is bit-identical to it. Ids are validated first, as on the CPU: an id outside
// [0, rows) throws kiln::Error "embedding: id X (position J) is outside the table's R rows"
// (one stream synchronisation per call to read the verdict).
// ids_checked: the caller checked the ids already, so nothing is validated or read back here.
void embedding_forward(const Stream& s, const float* table, int64_t rows, int64_t dim, const int64_t* ids,
                       const int64_t* offsets, int64_t batch, Combiner combiner, float* out, bool ids_checked = false);

// Position of the first id outside [0, rows) among `nnz`, or -1 (synchronizes the stream).
int64_t embedding_first_bad_id(const Stream& s, const int64_t* ids, int64_t nnz, int64_t rows);
// Throws the CPU path's error for the first id outside [0, rows) among `nnz`, if any
// (synchronizes the stream).
void embedding_check_ids(const Stream& s, const int64_t* ids, int64_t nnz, int64_t rows);

// Row-sparse gradient, deterministic without float atomics: (id, position) pairs sorted by a
// stable CUB radix sort over the bits of `rows` (the table's rows), runs of equal ids found by
// run-length encoding, and each unique id's rows summed by one warp in position order, the order
// the CPU path uses. nnz = offsets[batch] (known to the caller). Ids are validated first (the
// forward's error): an id outside [0, rows) would otherwise sort by its low bits only and break
// the unique ids. Returns the number of unique ids (synchronizes the stream to read it).
int64_t embedding_backward(const Stream& s, const float* dout, int64_t rows, int64_t dim, const int64_t* ids,
                           const int64_t* offsets, int64_t batch, int64_t nnz, Combiner combiner, int64_t* unique_ids,
                           float* grad_rows);

// The same sort, for a captured step (kernels/embedding.h, embedding_backward_async): every launch
// is sized for `capacity` ids and nnz = offsets[batch] is read on the device. Positions past nnz
// (and any id outside [0, rows), which cannot be reported from here) get the key `rows`, which
// sorts after every id; its run is dropped from the unique count written to *count. The keys,
// positions, run data and CUB's temporary storage live in `workspace`
// (embedding_backward_workspace_bytes), so nothing allocates or synchronizes.
void embedding_backward_async(const Stream& s, const float* dout, int64_t rows, int64_t dim, const int64_t* ids,
                              const int64_t* offsets, int64_t batch, int64_t capacity, Combiner combiner,
                              int64_t* unique_ids, float* grad_rows, int64_t* count, void* workspace);
// Bytes of `workspace` for up to `capacity` ids of a table of `rows` rows (asks CUB for its
// temporary storage sizes on the host; launches nothing).
int64_t embedding_backward_workspace_bytes(int64_t rows, int64_t capacity);

}  // namespace kiln::kernels::cuda
