// GEMM benchmark: Kiln's tensor-core kernels vs cuBLASLt, bf16 and TF32, on squares 1024..8192
// and the layer shapes of the examples, in one run on one GPU. Prints a table (TFLOP/s, ratio)
// and RESULT lines. Usage: kiln_bench_gpu_gemm [max_square]
#include <cuda_bf16.h>

#include <cstdio>
#include <cstdlib>
#include <tuple>
#include <vector>

#include "bench/gpu_bench_util.cuh"
#include "core/cuda/check.h"
#include "core/stream.h"
#include "kernels/cuda/gemm.h"

namespace kiln::bench {

__global__ void fill_kernel_f32(float* p, size_t n, unsigned seed) {
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    unsigned h = static_cast<unsigned>(i) * 2654435761u ^ seed;
    h ^= h >> 15, h *= 2246822519u, h ^= h >> 13;
    const float v = static_cast<float>(h >> 8) * (2.0f / 16777216.0f) - 1.0f;
    p[i] = v == 0.0f ? 0.5f : v;
  }
}
__global__ void to_bf16_kernel(const float* src, __nv_bfloat16* dst, size_t n) {
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<size_t>(gridDim.x) * blockDim.x)
    dst[i] = __float2bfloat16(src[i]);
}

void fill_random_f32(float* p, size_t n, unsigned seed, cudaStream_t stream) {
  fill_kernel_f32<<<1024, 256, 0, stream>>>(p, n, seed);
  KILN_CUDA_CHECK(cudaGetLastError());
}
void fill_random_bf16(void* p, size_t n, unsigned seed, cudaStream_t stream) {
  float* tmp = nullptr;
  KILN_CUDA_CHECK(cudaMalloc(&tmp, n * sizeof(float)));
  fill_random_f32(tmp, n, seed, stream);
  to_bf16_kernel<<<1024, 256, 0, stream>>>(tmp, static_cast<__nv_bfloat16*>(p), n);
  KILN_CUDA_CHECK(cudaGetLastError());
  KILN_CUDA_CHECK(cudaStreamSynchronize(stream));
  KILN_CUDA_CHECK(cudaFree(tmp));
}

template <typename E>
void bench_shape(const char* label, int64_t m, int64_t n, int64_t k, bool ta, bool tb) {
  cudaStream_t stream;
  KILN_CUDA_CHECK(cudaStreamCreate(&stream));
  const Stream s = Stream::cuda(0, stream);
  E *a, *b;
  float* c;
  KILN_CUDA_CHECK(cudaMalloc(&a, m * k * sizeof(E)));
  KILN_CUDA_CHECK(cudaMalloc(&b, k * n * sizeof(E)));
  KILN_CUDA_CHECK(cudaMalloc(&c, m * n * sizeof(float)));
  if constexpr (sizeof(E) == 2) {
    fill_random_bf16(a, m * k, 1, stream);
    fill_random_bf16(b, k * n, 2, stream);
  } else {
    fill_random_f32(a, m * k, 1, stream);
    fill_random_f32(b, k * n, 2, stream);
  }
  const int64_t lda = ta ? m : k, ldb = tb ? k : n;
  auto kiln_run = [&] {
    kernels::cuda::gemm_kiln<E>(s, ta, tb, m, n, k, 1.0f, a, lda, b, ldb, 0.0f, c, n, nullptr,
                                kernels::Activation::none, 0.0f);
  };
  auto lt_run = [&] {
    kernels::cuda::gemm_cublaslt<E>(s, ta, tb, m, n, k, 1.0f, a, lda, b, ldb, 0.0f, c, n, nullptr,
                                    kernels::Activation::none, 0.0f);
  };
  const int reps = m * n * k > (int64_t{1} << 33) ? 7 : 20;
  const double t_kiln = median_ms(stream, kiln_run, 3, reps);
  const double t_lt = median_ms(stream, lt_run, 3, reps);
  const double flop = 2.0 * m * n * k;
  const double tf_kiln = flop / t_kiln / 1e9, tf_lt = flop / t_lt / 1e9;
  const char* type = sizeof(E) == 2 ? "bf16" : "tf32";
  std::printf("%-14s %-5s %6lld %6lld %6lld %c%c  kiln %8.1f TF/s  cublasLt %8.1f TF/s  ratio %5.2f\n", label, type,
              static_cast<long long>(m), static_cast<long long>(n), static_cast<long long>(k), ta ? 'T' : 'N',
              tb ? 'T' : 'N', tf_kiln, tf_lt, tf_kiln / tf_lt);
  std::printf("RESULT bench=gemm label=%s type=%s m=%lld n=%lld k=%lld ta=%d tb=%d kiln_tflops=%.2f cublaslt_tflops=%.2f "
              "ratio=%.3f\n",
              label, type, static_cast<long long>(m), static_cast<long long>(n), static_cast<long long>(k), ta, tb,
              tf_kiln, tf_lt, tf_kiln / tf_lt);
  std::fflush(stdout);
  cudaFree(a);
  cudaFree(b);
  cudaFree(c);
  cudaStreamDestroy(stream);
}

}  // namespace kiln::bench

int main(int argc, char** argv) {
  using namespace kiln::bench;
  const int64_t max_square = argc > 1 ? std::atoll(argv[1]) : 8192;
  try {
    for (int64_t sq = 1024; sq <= max_square; sq *= 2) {
      bench_shape<__nv_bfloat16>("square", sq, sq, sq, false, false);
      bench_shape<float>("square", sq, sq, sq, false, false);
    }
    // Layer shapes of the examples (batch 512): dense forward (NN), data grad (NT), weight grad (TN).
    const std::vector<std::tuple<const char*, int64_t, int64_t, int64_t>> layers = {
        {"fmnist_fc", 512, 128, 3136}, {"flights_deep", 512, 256, 512}, {"flights_deep2", 512, 128, 256}};
    for (auto [name, m, n, k] : layers) {
      bench_shape<__nv_bfloat16>(name, m, n, k, false, false);
      bench_shape<float>(name, m, n, k, false, false);
      bench_shape<float>(name, m, k, n, false, true);
      bench_shape<float>(name, k, n, m, true, false);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gpu_gemm failed: %s\n", e.what());
    return 1;
  }
  return 0;
}
