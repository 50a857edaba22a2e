// Reference dropout (kernels/cuda/reference.h): one thread per element, each generating the
// Philox block its word comes from (core/philox.h, the CPU's generator): element k of the stream
// takes word k % 4 of block k / 4, as kernels/cpu/dropout.cc draws it. The CPU's masks and bits.
#include "core/error.h"
#include "core/philox.h"
#include "kernels/cuda/reference.h"
#include "kernels/cuda/reference_launch.cuh"

namespace kiln::kernels::cuda::reference {

namespace {

__global__ void ref_dropout_forward(int64_t n, float rate, float scale, uint64_t seed, uint64_t stream_offset,
                                    const uint64_t* stream_base, uint64_t first, const float* x, float* y,
                                    uint8_t* mask) {
  const uint64_t stream = stream_offset + (stream_base ? *stream_base : 0);
  KILN_GRID_STRIDE(i, n) {
    const uint64_t k = first + static_cast<uint64_t>(i);
    const Philox4x32::Block block = Philox4x32::generate(seed, stream, k >> 2);
    const float u = static_cast<float>(block[k & 3] >> 8) * (1.0f / 16777216.0f);
    const bool keep = u >= rate;
    mask[i] = keep ? 1 : 0;
    y[i] = keep ? x[i] * scale : 0.0f;
  }
}

}  // namespace

void dropout_forward(const Stream& s, int64_t n, float rate, uint64_t seed, uint64_t stream, const float* x, float* y,
                     uint8_t* mask, uint64_t first, const uint64_t* stream_base) {
  KILN_CHECK(s.device().is_cuda());
  KILN_CHECK(rate >= 0.0f && rate <= 1.0f, "dropout rate ", rate);
  // rate 0 keeps everything (no draw is below 0) and rate 1 drops everything: one kernel for both.
  const float scale = rate < 1.0f ? 1.0f / (1.0f - rate) : 0.0f;
  launch_per_output(s, "ref_dropout_forward", ref_dropout_forward, n, n, rate, scale, seed, stream, stream_base, first,
                    x, y, mask);
}

}  // namespace kiln::kernels::cuda::reference
