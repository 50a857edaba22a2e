#include "kernels/cuda/dropout.h"

#include "core/cuda/launch.cuh"
#include "core/cuda/stream.h"
#include "core/error.h"
#include "core/philox.h"
#include "kernels/cuda/elementwise.cuh"

namespace kiln::kernels::cuda {

namespace {

// One thread per Philox block: stream elements 4q .. 4q+3 use the four words of block q; this
// call's element i is stream element first + i.
__global__ void dropout_forward_kernel(int64_t n, float rate, float scale, uint64_t seed, uint64_t stream_offset,
                                       const uint64_t* stream_base, uint64_t first, const float* x, float* y,
                                       uint8_t* mask) {
  const uint64_t stream = stream_offset + (stream_base ? *stream_base : 0);
  const uint64_t q0 = first >> 2;
  const int64_t blocks = static_cast<int64_t>(((first + static_cast<uint64_t>(n) + 3) >> 2) - q0);
  KILN_GRID_STRIDE(qi, blocks) {
    const uint64_t q = q0 + static_cast<uint64_t>(qi);
    const Philox4x32::Block block = Philox4x32::generate(seed, stream, q);
#pragma unroll
    for (int w = 0; w < 4; ++w) {
      const int64_t i = static_cast<int64_t>(4 * q + w - first);  // wraps below 0 for words before `first`
      if (4 * q + w < first || i >= n) continue;
      const float u = static_cast<float>(block[w] >> 8) * (1.0f / 16777216.0f);
      const bool keep = u >= rate;
      mask[i] = keep ? 1 : 0;
      y[i] = keep ? x[i] * scale : 0.0f;
    }
  }
}

__global__ void dropout_copy_kernel(int64_t n, const float* x, float* y, uint8_t* mask) {
  KILN_GRID_STRIDE(i, n) {
    y[i] = x[i];
    mask[i] = 1;
  }
}

__global__ void dropout_backward_kernel(int64_t n, float scale, const uint8_t* mask, const float* dy, float* dx) {
  KILN_GRID_STRIDE(i, n) dx[i] = dy[i] * (static_cast<float>(mask[i]) * scale);
}

}  // namespace

void dropout_forward(const Stream& s, int64_t n, float rate, uint64_t seed, uint64_t stream, const float* x, float* y,
                     uint8_t* mask, uint64_t first, const uint64_t* stream_base) {
  KILN_CHECK(s.device().is_cuda());
  KILN_CHECK(rate >= 0.0f && rate <= 1.0f, "dropout rate ", rate);
  if (n <= 0) return;
  const cudaStream_t st = kiln::cuda::raw(s);
  if (rate == 0.0f) {
    kiln::cuda::launch("dropout_copy_kernel", dropout_copy_kernel, dim3(elementwise_blocks(n)),
                       dim3(kElementwiseThreads), 0, st, n, x, y, mask);
    return;
  }
  const float scale = rate < 1.0f ? 1.0f / (1.0f - rate) : 0.0f;
  kiln::cuda::launch("dropout_forward_kernel", dropout_forward_kernel, dim3(elementwise_blocks(n / 4 + 2)),
                     dim3(kElementwiseThreads), 0, st, n, rate, scale, seed, stream, stream_base, first, x, y, mask);
}

void dropout_backward(const Stream& s, int64_t n, float rate, const uint8_t* mask, const float* dy, float* dx) {
  KILN_CHECK(s.device().is_cuda());
  KILN_CHECK(rate >= 0.0f && rate <= 1.0f, "dropout rate ", rate);
  if (n <= 0) return;
  const float scale = rate < 1.0f ? 1.0f / (1.0f - rate) : 0.0f;
  kiln::cuda::launch("dropout_backward_kernel", dropout_backward_kernel, dim3(elementwise_blocks(n)),
                     dim3(kElementwiseThreads), 0, kiln::cuda::raw(s), n, scale, mask, dy, dx);
}

}  // namespace kiln::kernels::cuda
