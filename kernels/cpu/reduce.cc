#include "kernels/cpu/reduce.h"

#include <algorithm>
#include <vector>

#include "core/error.h"
#include "core/thread_pool.h"

namespace kiln::kernels::cpu {

namespace {

constexpr int64_t kGrain = 4096;
// Reductions split their input into chunks whose size depends only on the problem, never on the
// thread count, and combine the chunk partials in chunk order: results are bit-identical for any
// number of threads.
constexpr int64_t kChunkElems = 16384;

}  // namespace

template <typename T>
void sum_rows(const Stream& s, const T* x, int64_t rows, int64_t cols, T* out, bool accumulate) {
  KILN_CHECK(s.device().is_cpu());
  KILN_CHECK(rows >= 0 && cols >= 0);
  if (cols == 0) return;
  const int64_t chunk_rows = std::max<int64_t>(1, kChunkElems / cols);
  const int64_t chunks = std::max<int64_t>(1, (rows + chunk_rows - 1) / chunk_rows);
  // Partials in double: bias gradients of convolutions sum ~1e5 rows.
  std::vector<double> partial(static_cast<size_t>(chunks * cols), 0.0);
  parallel_for(chunks, 1, [&](int64_t cb, int64_t ce) {
    for (int64_t ch = cb; ch < ce; ++ch) {
      double* acc = partial.data() + ch * cols;
      const int64_t r1 = std::min(rows, (ch + 1) * chunk_rows);
      for (int64_t r = ch * chunk_rows; r < r1; ++r) {
        const T* row = x + r * cols;
        for (int64_t c = 0; c < cols; ++c) acc[c] += static_cast<double>(row[c]);
      }
    }
  });
  for (int64_t c = 0; c < cols; ++c) {
    double total = 0.0;
    for (int64_t ch = 0; ch < chunks; ++ch) total += partial[ch * cols + c];
    out[c] = accumulate ? static_cast<T>(out[c] + total) : static_cast<T>(total);
  }
}

template <typename T>
double sum_squares(const Stream& s, const T* x, int64_t n) {
  KILN_CHECK(s.device().is_cpu());
  if (n <= 0) return 0.0;
  const int64_t chunks = (n + kChunkElems - 1) / kChunkElems;
  std::vector<double> partial(static_cast<size_t>(chunks), 0.0);
  parallel_for(chunks, 1, [&](int64_t cb, int64_t ce) {
    for (int64_t ch = cb; ch < ce; ++ch) {
      const int64_t e = std::min(n, (ch + 1) * kChunkElems);
      // Four independent accumulators keep the adds pipelined without reassociation flags.
      double acc[4] = {0.0, 0.0, 0.0, 0.0};
      int64_t i = ch * kChunkElems;
      for (; i + 4 <= e; i += 4) {
        for (int j = 0; j < 4; ++j) acc[j] += static_cast<double>(x[i + j]) * static_cast<double>(x[i + j]);
      }
      for (; i < e; ++i) acc[0] += static_cast<double>(x[i]) * static_cast<double>(x[i]);
      partial[ch] = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    }
  });
  double total = 0.0;
  for (double p : partial) total += p;
  return total;
}

template <typename T>
void scale_inplace(const Stream& s, T* x, int64_t n, T factor) {
  KILN_CHECK(s.device().is_cpu());
  parallel_for(n, kGrain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) x[i] *= factor;
  });
}

template <typename T>
void add_inplace(const Stream& s, T* x, const T* y, int64_t n) {
  KILN_CHECK(s.device().is_cpu());
  parallel_for(n, kGrain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) x[i] += y[i];
  });
}

template <typename T>
int64_t count_argmax_matches(const Stream& s, const T* logits, const int32_t* labels, int64_t rows, int64_t classes) {
  KILN_CHECK(s.device().is_cpu());
  if (rows <= 0 || classes <= 0) return 0;
  int64_t matches = 0;
  // Integer sums are exact, so one serial pass per chunk and a plain total are deterministic.
  std::vector<int64_t> partial(static_cast<size_t>(rows), 0);
  parallel_for(rows, std::max<int64_t>(1, kGrain / classes), [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const T* row = logits + r * classes;
      int64_t best = 0;
      for (int64_t c = 1; c < classes; ++c) {
        if (row[c] > row[best]) best = c;
      }
      partial[r] = best == labels[r] ? 1 : 0;
    }
  });
  for (int64_t v : partial) matches += v;
  return matches;
}

KILN_REDUCE_INSTANTIATE(float)
KILN_REDUCE_INSTANTIATE(double)

}  // namespace kiln::kernels::cpu
