#pragma once
// Deterministic per-column sums over a [rows, cols] matrix in double: the rows are cut into
// chunks whose count depends only on `rows` (never on the GPU), each chunk sums its rows in a
// fixed order, and a second pass adds the chunk partials in chunk order. Same input, same bits,
// on any GPU and in any run. Used by sum_rows (bias gradients) and batch norm. The chunks stride
// over grid.y (at most kMaxGridY blocks), so any row count works: a block's chunks are summed
// exactly as one block per chunk would sum them.
#include <cstdint>

#include "core/cuda/launch.cuh"
#include "core/cuda/memory.h"
#include "kernels/cuda/gemm_tiling.h"

namespace kiln::kernels::cuda {

constexpr int kColTile = 32;   // columns per block (one warp wide, coalesced)
constexpr int kRowLanes = 8;   // rows summed side by side in a block
constexpr int64_t kRowsPerChunk = 512;
constexpr int64_t kMaxGridY = 65535;  // CUDA's limit on gridDim.y

inline int64_t column_sum_chunks(int64_t rows) { return rows <= 0 ? 1 : ceil_div(rows, kRowsPerChunk); }

// partial[chunk, c] = sum over the chunk's rows r of f(r, c), for chunks blockIdx.y,
// blockIdx.y + gridDim.y, ...
template <typename F>
__global__ void __launch_bounds__(kColTile* kRowLanes) column_partials_kernel(int64_t rows, int64_t cols,
                                                                              int64_t chunks, F f, double* partial) {
  __shared__ double acc[kRowLanes][kColTile + 1];
  const int64_t c = static_cast<int64_t>(blockIdx.x) * kColTile + threadIdx.x;
  for (int64_t chunk = blockIdx.y; chunk < chunks; chunk += gridDim.y) {
    const int64_t r0 = chunk * kRowsPerChunk;
    const int64_t r1 = r0 + kRowsPerChunk < rows ? r0 + kRowsPerChunk : rows;
    double s = 0.0;
    if (c < cols)
      for (int64_t r = r0 + threadIdx.y; r < r1; r += kRowLanes) s += f(r, c);
    acc[threadIdx.y][threadIdx.x] = s;
    __syncthreads();
    if (threadIdx.y == 0 && c < cols) {
      double t = 0.0;
#pragma unroll
      for (int i = 0; i < kRowLanes; ++i) t += acc[i][threadIdx.x];
      partial[chunk * cols + c] = t;
    }
    __syncthreads();  // acc is rewritten by the next chunk
  }
}

// out(c, total) for each column, total = the chunk partials added in order.
template <typename Out>
__global__ void column_totals_kernel(int64_t chunks, int64_t cols, const double* partial, Out out) {
  for (int64_t c = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; c < cols;
       c += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    double t = 0.0;
    for (int64_t ch = 0; ch < chunks; ++ch) t += partial[ch * cols + c];
    out(c, t);
  }
}

// Runs both passes: out(c, sum_r f(r, c)) for every column c.
template <typename F, typename Out>
void column_sums(cudaStream_t stream, int64_t rows, int64_t cols, F f, Out out) {
  if (cols <= 0) return;
  const int64_t chunks = column_sum_chunks(rows);
  const int64_t grid_y = chunks < kMaxGridY ? chunks : kMaxGridY;
  kiln::cuda::DeviceArray<double> partial(static_cast<size_t>(chunks * cols), stream);
  kiln::cuda::launch("column_partials_kernel", column_partials_kernel<F>,
                     dim3(static_cast<unsigned>(ceil_div(cols, kColTile)), static_cast<unsigned>(grid_y)),
                     dim3(kColTile, kRowLanes), 0, stream, rows, cols, chunks, f, partial.get());
  kiln::cuda::launch("column_totals_kernel", column_totals_kernel<Out>,
                     dim3(static_cast<unsigned>(std::min<int64_t>(ceil_div(cols, 256), 4096))), dim3(256), 0, stream,
                     chunks, cols, static_cast<const double*>(partial.get()), out);
}

}  // namespace kiln::kernels::cuda
