#include "kernels/cpu/sparse_rows.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "core/error.h"

namespace kiln::kernels::cpu {

int64_t sparse_rows_merge(std::span<const SparseRowsPart> parts, int64_t dim, int64_t* out_ids, float* out_rows) {
  // A k-way merge: k is the number of ranks, so a linear scan for the smallest id is enough.
  std::vector<int64_t> next(parts.size(), 0);
  int64_t count = 0;
  for (;;) {
    int64_t id = INT64_MAX;
    for (size_t p = 0; p < parts.size(); ++p)
      if (next[p] < parts[p].count) id = std::min(id, parts[p].ids[next[p]]);
    if (id == INT64_MAX) break;
    float* out = out_rows + count * dim;
    bool first = true;
    for (size_t p = 0; p < parts.size(); ++p) {
      if (next[p] >= parts[p].count || parts[p].ids[next[p]] != id) continue;
      const float* r = parts[p].rows + next[p] * dim;
      for (int64_t j = 0; j < dim; ++j) out[j] = first ? r[j] : out[j] + r[j];
      first = false;
      ++next[p];
    }
    out_ids[count++] = id;
  }
  return count;
}

void sparse_rows_to_dense(const int64_t* ids, const float* rows, int64_t count, int64_t vocab, int64_t dim,
                          float* dense, float* presence) {
  for (int64_t i = 0; i < count; ++i) {
    const int64_t id = ids[i];
    KILN_CHECK(id >= 0 && id < vocab, "sparse_rows_to_dense: id ", id, " is outside the table's ", vocab, " rows");
    std::memcpy(dense + id * dim, rows + i * dim, static_cast<size_t>(dim) * sizeof(float));
    presence[id] = 1.0f;
  }
}

int64_t sparse_rows_from_dense(const float* dense, const float* presence, int64_t vocab, int64_t dim,
                               int64_t* out_ids, float* out_rows) {
  int64_t count = 0;
  for (int64_t id = 0; id < vocab; ++id) {
    // Present where any rank had the id, even if its rows sum to 0.
    if (!(presence[id] > 0)) continue;
    out_ids[count] = id;
    std::memcpy(out_rows + count * dim, dense + id * dim, static_cast<size_t>(dim) * sizeof(float));
    ++count;
  }
  return count;
}

}  // namespace kiln::kernels::cpu
