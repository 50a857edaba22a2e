// Embedding bandwidth: forward and deterministic backward vs the device-to-device copy bandwidth
// measured in the same run, uniform random ids. Bytes counted: forward reads the gathered rows and
// writes the output; backward reads dout rows per id and writes the unique rows (the sort's own
// traffic is not counted, so its cost shows as lost bandwidth). Usage: kiln_bench_gpu_embedding
#include <cstdio>
#include <vector>

#include "bench/gpu_bench_util.cuh"
#include "core/cuda/check.h"
#include "core/philox.h"
#include "core/stream.h"
#include "kernels/cuda/embedding.h"

namespace kiln::bench {

__global__ void fill_table(float* p, size_t n) {
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<size_t>(gridDim.x) * blockDim.x)
    p[i] = 0.001f * static_cast<float>(i % 977) + 0.5f;
}

void run(int64_t rows, int64_t dim, int64_t batch, int64_t per_example) {
  cudaStream_t stream;
  KILN_CUDA_CHECK(cudaStreamCreate(&stream));
  const Stream s = Stream::cuda(0, stream);
  const int64_t nnz = batch * per_example;
  std::vector<int64_t> ids(nnz), offsets(batch + 1);
  PhiloxGenerator gen(42, 0);
  for (auto& id : ids) id = static_cast<int64_t>(gen.below(static_cast<uint64_t>(rows)));
  for (int64_t b = 0; b <= batch; ++b) offsets[b] = b * per_example;
  float *table, *out, *grad_rows, *copy_dst;
  int64_t *d_ids, *d_offsets, *uids;
  KILN_CUDA_CHECK(cudaMalloc(&table, rows * dim * sizeof(float)));
  KILN_CUDA_CHECK(cudaMalloc(&copy_dst, rows * dim * sizeof(float)));
  KILN_CUDA_CHECK(cudaMalloc(&out, batch * dim * sizeof(float)));
  KILN_CUDA_CHECK(cudaMalloc(&grad_rows, nnz * dim * sizeof(float)));
  KILN_CUDA_CHECK(cudaMalloc(&d_ids, nnz * sizeof(int64_t)));
  KILN_CUDA_CHECK(cudaMalloc(&uids, nnz * sizeof(int64_t)));
  KILN_CUDA_CHECK(cudaMalloc(&d_offsets, (batch + 1) * sizeof(int64_t)));
  fill_table<<<1024, 256, 0, stream>>>(table, rows * dim);
  KILN_CUDA_CHECK(cudaMemcpy(d_ids, ids.data(), nnz * sizeof(int64_t), cudaMemcpyHostToDevice));
  KILN_CUDA_CHECK(cudaMemcpy(d_offsets, offsets.data(), (batch + 1) * sizeof(int64_t), cudaMemcpyHostToDevice));
  const size_t table_bytes = rows * dim * sizeof(float);
  const double t_copy = median_ms(stream, [&] {
    KILN_CUDA_CHECK(cudaMemcpyAsync(copy_dst, table, table_bytes, cudaMemcpyDeviceToDevice, stream));
  });
  const double copy_gbs = 2.0 * table_bytes / t_copy / 1e6;
  const double t_fwd = median_ms(stream, [&] {
    kernels::cuda::embedding_forward(s, table, rows, dim, d_ids, d_offsets, batch, kernels::Combiner::sum, out);
  });
  const double fwd_bytes = (nnz * dim + batch * dim) * sizeof(float) + nnz * sizeof(int64_t);
  const double fwd_gbs = fwd_bytes / t_fwd / 1e6;
  int64_t unique = 0;
  const double t_bwd = median_ms(stream, [&] {
    unique = kernels::cuda::embedding_backward(s, out, rows, dim, d_ids, d_offsets, batch, nnz,
                                               kernels::Combiner::sum, uids, grad_rows);
  }, 2, 9);
  const double bwd_bytes = (nnz * dim + unique * dim) * sizeof(float) + nnz * sizeof(int64_t);
  const double bwd_gbs = bwd_bytes / t_bwd / 1e6;
  std::printf("embedding rows=%lld dim=%lld batch=%lld ids/ex=%lld  copy %7.0f GB/s  fwd %7.0f GB/s (%4.0f%%)  "
              "bwd %7.0f GB/s (%4.0f%%) unique=%lld\n",
              (long long)rows, (long long)dim, (long long)batch, (long long)per_example, copy_gbs, fwd_gbs,
              100.0 * fwd_gbs / copy_gbs, bwd_gbs, 100.0 * bwd_gbs / copy_gbs, (long long)unique);
  std::printf("RESULT bench=embedding rows=%lld dim=%lld batch=%lld copy_gbs=%.1f fwd_gbs=%.1f bwd_gbs=%.1f "
              "fwd_ratio=%.3f bwd_ratio=%.3f\n",
              (long long)rows, (long long)dim, (long long)batch, copy_gbs, fwd_gbs, bwd_gbs, fwd_gbs / copy_gbs,
              bwd_gbs / copy_gbs);
  std::fflush(stdout);
  for (void* p : {(void*)table, (void*)copy_dst, (void*)out, (void*)grad_rows, (void*)d_ids, (void*)uids,
                  (void*)d_offsets})
    cudaFree(p);
  cudaStreamDestroy(stream);
}

}  // namespace kiln::bench

int main() {
  try {
    kiln::bench::run(4 << 20, 64, 65536, 8);
    kiln::bench::run(1 << 20, 128, 16384, 16);
    kiln::bench::run(100000, 16, 8192, 4);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gpu_embedding failed: %s\n", e.what());
    return 1;
  }
  return 0;
}
