#pragma once
// Timing helpers of the GPU benchmarks: CUDA events around the region, warm-up first, the median
// of repeated runs, and a machine-readable line per result ("RESULT key=value ...").
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <vector>

#include "core/cuda/check.h"

namespace kiln::bench {

// Median milliseconds of `reps` runs of fn() on `stream`, after `warmup` runs.
template <typename Fn>
double median_ms(cudaStream_t stream, Fn fn, int warmup = 3, int reps = 15) {
  for (int i = 0; i < warmup; ++i) fn();
  KILN_CUDA_CHECK(cudaStreamSynchronize(stream));
  cudaEvent_t start, stop;
  KILN_CUDA_CHECK(cudaEventCreate(&start));
  KILN_CUDA_CHECK(cudaEventCreate(&stop));
  std::vector<double> ms;
  for (int i = 0; i < reps; ++i) {
    KILN_CUDA_CHECK(cudaEventRecord(start, stream));
    fn();
    KILN_CUDA_CHECK(cudaEventRecord(stop, stream));
    KILN_CUDA_CHECK(cudaEventSynchronize(stop));
    float t = 0.0f;
    KILN_CUDA_CHECK(cudaEventElapsedTime(&t, start, stop));
    ms.push_back(t);
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

// Fills a device buffer with pseudo-random values in [-1, 1) (never zeros: see METHOD.md).
void fill_random_f32(float* p, size_t n, unsigned seed, cudaStream_t stream);
void fill_random_bf16(void* p, size_t n, unsigned seed, cudaStream_t stream);

}  // namespace kiln::bench
