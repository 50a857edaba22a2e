#pragma once
// Row-sparse gradients (ascending unique ids and one row each, as embedding_backward writes them)
// exchanged between data-parallel ranks (models/gradient_sync.cc): merging the ranks' parts after
// an all-gather, and scattering to and compacting from a table-sized buffer that is all-reduced.
// The CPU code is also what the host exchange runs, so device and host exchanges give the same
// bits. f32 only (the gradients' type).
#include <cstdint>

#include "core/stream.h"

namespace kiln::kernels {

// `parts` row-sparse gradients, one per rank, as an all-gather of fixed-size buffers leaves them:
// part p's ids at ids + p * ids_stride (counts[p] of them, ascending and unique) and its rows at
// rows + p * rows_stride (counts[p] x dim); what lies between parts is padding and never read.
// Writes the union of the ids, ascending, to out_ids and for each id its rows summed in part
// order (the first part holding it copied, each later one added: the host merge's bits) to
// out_rows; the number of ids to *out_count (device memory on a device stream, so no sync).
// out_ids and out_rows hold at least the sum of counts entries. `counts` is host memory, read
// during the call.
void sparse_rows_merge(const Stream& s, const int64_t* ids, int64_t ids_stride, const float* rows, int64_t rows_stride,
                       int64_t parts, const int64_t* counts, int64_t dim, int64_t* out_ids, float* out_rows,
                       int64_t* out_count);

// For each of the `count` ids: dense[id, :] = its row and presence[id] = 1. Other entries are left
// as they are (the caller zeroes both). Ids must lie in [0, vocab) (they come from
// embedding_backward, which checked them).
void sparse_rows_to_dense(const Stream& s, const int64_t* ids, const float* rows, int64_t count, int64_t vocab,
                          int64_t dim, float* dense, float* presence);

// The ids whose presence is > 0, ascending, to out_ids and their rows of dense [vocab, dim] to
// out_rows (room for vocab entries, or for as many as are present); their number to *out_count
// (device memory on a device stream).
void sparse_rows_from_dense(const Stream& s, const float* dense, const float* presence, int64_t vocab, int64_t dim,
                            int64_t* out_ids, float* out_rows, int64_t* out_count);

}  // namespace kiln::kernels
