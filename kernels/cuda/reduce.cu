#include "kernels/cuda/reduce.h"

#include <vector>

#include "core/cuda/launch.cuh"
#include "core/cuda/memory.h"
#include "core/cuda/stream.h"
#include "core/error.h"
#include "kernels/cuda/column_sums.cuh"

namespace kiln::kernels::cuda {

namespace {

constexpr int kThreads = 256;
// sum_squares: elements per first-pass block, so the block count depends on n alone.
constexpr int64_t kSquaresChunk = 16384;

// Fixed-order tree reduction of one double per thread; thread 0 gets the block total.
__device__ double block_sum(double v) {
  __shared__ double buf[kThreads];
  buf[threadIdx.x] = v;
  __syncthreads();
  for (int w = kThreads / 2; w > 0; w >>= 1) {
    if (static_cast<int>(threadIdx.x) < w) buf[threadIdx.x] += buf[threadIdx.x + w];
    __syncthreads();
  }
  return buf[0];
}

__global__ void __launch_bounds__(kThreads) squares_partial_kernel(const float* x, int64_t n, double* partial) {
  const int64_t b0 = static_cast<int64_t>(blockIdx.x) * kSquaresChunk;
  const int64_t b1 = b0 + kSquaresChunk < n ? b0 + kSquaresChunk : n;
  double s = 0.0;
  for (int64_t i = b0 + threadIdx.x; i < b1; i += kThreads) {
    const double v = x[i];
    s += v * v;
  }
  const double t = block_sum(s);
  if (threadIdx.x == 0) partial[blockIdx.x] = t;
}

__global__ void __launch_bounds__(kThreads) squares_total_kernel(const double* partial, int64_t chunks, double* out) {
  double s = 0.0;
  for (int64_t i = threadIdx.x; i < chunks; i += kThreads) s += partial[i];
  const double t = block_sum(s);
  if (threadIdx.x == 0) *out = t;
}

__global__ void scale_kernel(float* x, int64_t n, float factor) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    x[i] *= factor;
}

__global__ void add_kernel(float* x, const float* y, int64_t n) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    x[i] += y[i];
}

// Scales by max_norm / norm when norm > max_norm, reading the sum of squares from the device.
__global__ void clip_kernel(float* x, int64_t n, const double* sum_sq, double max_norm, double* norm_out) {
  const double norm = sqrt(*sum_sq);
  if (norm_out && blockIdx.x == 0 && threadIdx.x == 0) *norm_out = norm;
  if (!(norm > max_norm)) return;
  const float factor = static_cast<float>(max_norm / norm);
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    x[i] *= factor;
}

__global__ void argmax_match_kernel(const float* logits, const int32_t* labels, int64_t rows, int64_t classes,
                                    unsigned long long* matches_per_block) {
  unsigned long long mine = 0;
  for (int64_t r = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; r < rows;
       r += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const float* row = logits + r * classes;
    int64_t best = 0;
    for (int64_t c = 1; c < classes; ++c)
      if (row[c] > row[best]) best = c;
    mine += best == labels[r] ? 1 : 0;
  }
  const double t = block_sum(static_cast<double>(mine));  // exact: counts are far below 2^53
  if (threadIdx.x == 0) matches_per_block[blockIdx.x] = static_cast<unsigned long long>(t);
}

struct RowValue {
  const float* x;
  int64_t cols;
  __device__ double operator()(int64_t r, int64_t c) const { return x[r * cols + c]; }
};
struct StoreSum {
  float* out;
  bool accumulate;
  __device__ void operator()(int64_t c, double t) const {
    out[c] = accumulate ? static_cast<float>(out[c] + t) : static_cast<float>(t);
  }
};

int grid_for(int64_t n) { return static_cast<int>(kiln::cuda::blocks_for(n, kThreads, 4096)); }

}  // namespace

void sum_rows(const Stream& s, const float* x, int64_t rows, int64_t cols, float* out, bool accumulate) {
  KILN_CHECK(s.device().is_cuda() && rows >= 0 && cols >= 0);
  column_sums(kiln::cuda::raw(s), rows, cols, RowValue{x, cols}, StoreSum{out, accumulate});
}

void sum_squares_async(const Stream& s, const float* x, int64_t n, double* out_device) {
  KILN_CHECK(s.device().is_cuda() && n >= 0);
  const cudaStream_t st = kiln::cuda::raw(s);
  const int64_t chunks = n > 0 ? ceil_div(n, kSquaresChunk) : 1;
  KILN_CHECK(chunks <= INT32_MAX);
  kiln::cuda::DeviceArray<double> partial(static_cast<size_t>(chunks), st);
  kiln::cuda::launch("squares_partial_kernel", squares_partial_kernel, dim3(static_cast<unsigned>(chunks)),
                     dim3(kThreads), 0, st, x, n, partial.get());
  kiln::cuda::launch("squares_total_kernel", squares_total_kernel, dim3(1), dim3(kThreads), 0, st,
                     static_cast<const double*>(partial.get()), chunks, out_device);
}

double sum_squares(const Stream& s, const float* x, int64_t n) { return sum_squares_with(s, sum_squares_async, x, n); }

double sum_squares_with(const Stream& s, void (*async)(const Stream&, const float*, int64_t, double*), const float* x,
                        int64_t n) {
  kiln::cuda::DeviceArray<double> out(1, kiln::cuda::raw(s));
  async(s, x, n, out.get());
  double host = 0.0;
  KILN_CUDA_CHECK(cudaMemcpyAsync(&host, out.get(), sizeof(double), cudaMemcpyDeviceToHost, kiln::cuda::raw(s)));
  KILN_CUDA_CHECK(cudaStreamSynchronize(kiln::cuda::raw(s)));
  return host;
}

void scale_inplace(const Stream& s, float* x, int64_t n, float factor) {
  KILN_CHECK(s.device().is_cuda());
  if (n <= 0) return;
  kiln::cuda::launch("scale_kernel", scale_kernel, dim3(grid_for(n)), dim3(kThreads), 0, kiln::cuda::raw(s), x, n,
                     factor);
}

void add_inplace(const Stream& s, float* x, const float* y, int64_t n) {
  KILN_CHECK(s.device().is_cuda());
  if (n <= 0) return;
  kiln::cuda::launch("add_kernel", add_kernel, dim3(grid_for(n)), dim3(kThreads), 0, kiln::cuda::raw(s), x, y, n);
}

void clip_global_norm(const Stream& s, float* grads, int64_t n, double max_norm, double* norm_out_device) {
  KILN_CHECK(s.device().is_cuda() && max_norm > 0.0);
  kiln::cuda::DeviceArray<double> sum_sq(1, kiln::cuda::raw(s));
  sum_squares_async(s, grads, n, sum_sq.get());
  kiln::cuda::launch("clip_kernel", clip_kernel, dim3(grid_for(n)), dim3(kThreads), 0, kiln::cuda::raw(s), grads, n,
                     static_cast<const double*>(sum_sq.get()), max_norm, norm_out_device);
}

int64_t count_argmax_matches(const Stream& s, const float* logits, const int32_t* labels, int64_t rows,
                             int64_t classes) {
  KILN_CHECK(s.device().is_cuda());
  if (rows <= 0 || classes <= 0) return 0;
  const cudaStream_t st = kiln::cuda::raw(s);
  const int blocks = grid_for(rows);
  kiln::cuda::DeviceArray<unsigned long long> per_block(static_cast<size_t>(blocks), st);
  kiln::cuda::launch("argmax_match_kernel", argmax_match_kernel, dim3(blocks), dim3(kThreads), 0, st, logits, labels,
                     rows, classes, per_block.get());
  std::vector<unsigned long long> host(static_cast<size_t>(blocks));
  KILN_CUDA_CHECK(cudaMemcpyAsync(host.data(), per_block.get(), host.size() * sizeof(unsigned long long),
                                  cudaMemcpyDeviceToHost, st));
  KILN_CUDA_CHECK(cudaStreamSynchronize(st));
  int64_t total = 0;
  for (auto v : host) total += static_cast<int64_t>(v);
  return total;
}

}  // namespace kiln::kernels::cuda
