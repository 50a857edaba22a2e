#pragma once
// The CPU implementations of kernels/sparse_rows.h: the host exchange of models/gradient_sync.cc,
// the CPU device and what the sim device runs.
#include <cstdint>
#include <span>

namespace kiln::kernels::cpu {

// One rank's row-sparse gradient: `count` ascending unique ids and a row of `dim` each.
struct SparseRowsPart {
  const int64_t* ids;
  const float* rows;
  int64_t count;
};

// Merges the parts into out_ids / out_rows (room for the sum of the counts); rows of one id are
// summed in part order, the first copied (so a lone -0 stays -0). Returns the number of ids.
int64_t sparse_rows_merge(std::span<const SparseRowsPart> parts, int64_t dim, int64_t* out_ids, float* out_rows);

void sparse_rows_to_dense(const int64_t* ids, const float* rows, int64_t count, int64_t vocab, int64_t dim,
                          float* dense, float* presence);

// Returns the number of ids present; out_ids / out_rows need room for that many.
int64_t sparse_rows_from_dense(const float* dense, const float* presence, int64_t vocab, int64_t dim,
                               int64_t* out_ids, float* out_rows);

}  // namespace kiln::kernels::cpu
