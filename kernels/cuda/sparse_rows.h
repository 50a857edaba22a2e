#pragma once
// The row-sparse gradient exchange's kernels on the GPU (the CPU set: kernels/sparse_rows.h).
#include <cstdint>
#include <vector>

#include "core/stream.h"

namespace kiln::kernels::cuda {

// The parts' valid slots are packed (one device copy per part), stably radix-sorted by id (so one
// id's entries stay in part order), run-length encoded, and each output element summed by one
// thread in that order, starting from the first part's value: the CPU merge's bits, no atomics.
// `counts` has one entry per part.
void sparse_rows_merge(const Stream& s, const int64_t* ids, int64_t ids_stride, const float* rows, int64_t rows_stride,
                       const std::vector<int64_t>& counts, int64_t dim, int64_t* out_ids, float* out_rows,
                       int64_t* out_count);

// One thread per element of the rows. Ids come from embedding_backward, which checked them;
// one outside [0, vocab) is skipped rather than written out of bounds.
void sparse_rows_to_dense(const Stream& s, const int64_t* ids, const float* rows, int64_t count, int64_t vocab,
                          int64_t dim, float* dense, float* presence);

// CUB's DeviceSelect::Flagged over the ids whose presence is > 0 (ascending, as selected), then
// one thread per output element gathering its row.
void sparse_rows_from_dense(const Stream& s, const float* dense, const float* presence, int64_t vocab, int64_t dim,
                            int64_t* out_ids, float* out_rows, int64_t* out_count);

}  // namespace kiln::kernels::cuda
