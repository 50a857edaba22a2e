// Reference reductions (kernels/cuda/reference.h): kernels/cpu/reduce.cc's chunking and order in
// double, one thread per output (a column, a chunk partial, an element).
#include <climits>

#include "core/cuda/memory.h"
#include "core/error.h"
#include "kernels/cuda/reference.h"
#include "kernels/cuda/reference_launch.cuh"

namespace kiln::kernels::cuda::reference {

namespace {

// The CPU's chunk: partial sums cover this many elements (sum_rows: this many over the columns).
constexpr int64_t kChunkElems = 16384;

// out[c]: the CPU's per-chunk double partials of column c, added in chunk order.
__global__ void ref_sum_rows(const float* x, int64_t rows, int64_t cols, int64_t chunk_rows, float* out,
                             bool accumulate) {
  KILN_GRID_STRIDE(c, cols) {
    double total = 0.0;
    for (int64_t r0 = 0; r0 < rows; r0 += chunk_rows) {
      const int64_t r1 = r0 + chunk_rows < rows ? r0 + chunk_rows : rows;
      double part = 0.0;
      for (int64_t r = r0; r < r1; ++r) part += static_cast<double>(x[r * cols + c]);
      total += part;
    }
    out[c] = accumulate ? static_cast<float>(out[c] + total) : static_cast<float>(total);
  }
}

// partial[k]: sum of squares of chunk k, with the CPU's four interleaved accumulators.
__global__ void ref_squares_partial(const float* x, int64_t n, int64_t chunks, double* partial) {
  KILN_GRID_STRIDE(k, chunks) {
    const int64_t e = (k + 1) * kChunkElems < n ? (k + 1) * kChunkElems : n;
    double acc[4] = {0.0, 0.0, 0.0, 0.0};
    int64_t i = k * kChunkElems;
    for (; i + 4 <= e; i += 4)
      for (int j = 0; j < 4; ++j) acc[j] += static_cast<double>(x[i + j]) * static_cast<double>(x[i + j]);
    for (; i < e; ++i) acc[0] += static_cast<double>(x[i]) * static_cast<double>(x[i]);
    partial[k] = (acc[0] + acc[1]) + (acc[2] + acc[3]);
  }
}

// *out = the partials added in chunk order, by one thread.
__global__ void ref_squares_total(const double* partial, int64_t chunks, double* out) {
  double total = 0.0;
  for (int64_t k = 0; k < chunks; ++k) total += partial[k];
  *out = total;
}

}  // namespace

void sum_rows(const Stream& s, const float* x, int64_t rows, int64_t cols, float* out, bool accumulate) {
  KILN_CHECK(s.device().is_cuda() && rows >= 0 && cols >= 0);
  if (cols == 0) return;
  const int64_t chunk_rows = kChunkElems / cols > 1 ? kChunkElems / cols : 1;
  launch_per_output(s, "ref_sum_rows", ref_sum_rows, cols, x, rows, cols, chunk_rows, out, accumulate);
}

void sum_squares_async(const Stream& s, const float* x, int64_t n, double* out_device) {
  KILN_CHECK(s.device().is_cuda() && n >= 0);
  const int64_t chunks = n > 0 ? (n + kChunkElems - 1) / kChunkElems : 0;
  // At least one element, so the buffer exists when n is 0 (the total is then 0).
  kiln::cuda::DeviceArray<double> partial(static_cast<size_t>(chunks > 0 ? chunks : 1), kiln::cuda::raw(s));
  launch_per_output(s, "ref_squares_partial", ref_squares_partial, chunks, x, n, chunks, partial.get());
  launch_single(s, "ref_squares_total", ref_squares_total, static_cast<const double*>(partial.get()), chunks,
                out_device);
}

}  // namespace kiln::kernels::cuda::reference
