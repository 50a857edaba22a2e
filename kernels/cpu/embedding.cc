#include "kernels/cpu/embedding.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "core/error.h"
#include "core/thread_pool.h"

namespace kiln::kernels::cpu {

namespace {

constexpr int64_t kGrain = 4096;

void check_offsets(const int64_t* offsets, int64_t batch) {
  KILN_CHECK(batch >= 0);
  KILN_CHECK(offsets[0] == 0, "embedding offsets must start at 0, got ", offsets[0]);
  for (int64_t b = 0; b < batch; ++b)
    KILN_CHECK(offsets[b] <= offsets[b + 1], "embedding offsets decrease at example ", b);
}

}  // namespace

// Validated on the calling thread: an exception cannot leave an OpenMP region.
void check_ids(const int64_t* ids, int64_t nnz, int64_t rows) {
  for (int64_t j = 0; j < nnz; ++j) {
    if (ids[j] < 0 || ids[j] >= rows)
      fail("embedding: id ", ids[j], " (position ", j, ") is outside the table's ", rows, " rows");
  }
}

template <typename T>
void embedding_forward(const Stream& s, const T* table, int64_t rows, int64_t dim, const int64_t* ids,
                       const int64_t* offsets, int64_t batch, Combiner combiner, T* out) {
  KILN_CHECK(s.device().is_cpu());
  check_offsets(offsets, batch);
  check_ids(ids, offsets[batch], rows);
  parallel_for(batch, std::max<int64_t>(1, kGrain / std::max<int64_t>(dim, 1)), [&](int64_t bb, int64_t be) {
    for (int64_t b = bb; b < be; ++b) {
      T* o = out + b * dim;
      std::fill(o, o + dim, T(0));
      for (int64_t j = offsets[b]; j < offsets[b + 1]; ++j) {
        const T* row = table + ids[j] * dim;
        for (int64_t d = 0; d < dim; ++d) o[d] += row[d];
      }
      const int64_t count = offsets[b + 1] - offsets[b];
      if (combiner == Combiner::mean && count > 1) {
        const T cnt = static_cast<T>(count);
        for (int64_t d = 0; d < dim; ++d) o[d] /= cnt;
      }
    }
  });
}

template <typename T>
int64_t embedding_backward(const Stream& s, const T* dout, int64_t rows, int64_t dim, const int64_t* ids,
                           const int64_t* offsets, int64_t batch, Combiner combiner, int64_t* unique_ids, T* grad_rows) {
  KILN_CHECK(s.device().is_cpu());
  check_offsets(offsets, batch);
  const int64_t nnz = offsets[batch];
  check_ids(ids, nnz, rows);
  if (nnz == 0) return 0;
  // (id, position) pairs are all distinct, so the sorted order is unique: the summation order of
  // each id's rows is fixed by the input alone.
  std::vector<std::pair<int64_t, int64_t>> order(static_cast<size_t>(nnz));
  std::vector<int64_t> example(static_cast<size_t>(nnz));
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t j = offsets[b]; j < offsets[b + 1]; ++j) {
      order[j] = {ids[j], j};
      example[j] = b;
    }
  }
  std::sort(order.begin(), order.end());
  // starts[u] is the first entry of unique id u in `order`; starts[count] = nnz.
  std::vector<int64_t> starts;
  for (int64_t i = 0; i < nnz; ++i) {
    if (i == 0 || order[i].first != order[i - 1].first) {
      unique_ids[starts.size()] = order[i].first;
      starts.push_back(i);
    }
  }
  const int64_t count = static_cast<int64_t>(starts.size());
  starts.push_back(nnz);
  parallel_for(count, std::max<int64_t>(1, kGrain / std::max<int64_t>(dim, 1)), [&](int64_t ub, int64_t ue) {
    for (int64_t u = ub; u < ue; ++u) {
      T* g = grad_rows + u * dim;
      std::fill(g, g + dim, T(0));
      for (int64_t i = starts[u]; i < starts[u + 1]; ++i) {
        const int64_t b = example[order[i].second];
        const T* src = dout + b * dim;
        if (combiner == Combiner::mean) {
          const T cnt = static_cast<T>(offsets[b + 1] - offsets[b]);
          for (int64_t d = 0; d < dim; ++d) g[d] += src[d] / cnt;
        } else {
          for (int64_t d = 0; d < dim; ++d) g[d] += src[d];
        }
      }
    }
  });
  return count;
}

KILN_EMBEDDING_INSTANTIATE(float)
KILN_EMBEDDING_INSTANTIATE(double)

}  // namespace kiln::kernels::cpu
