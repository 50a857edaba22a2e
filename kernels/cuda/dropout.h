#pragma once
// Inverted dropout on the GPU with the CPU path's Philox stream (kernels/dropout.h): element i is
// kept when Philox4x32::uniform(seed, stream, i) >= rate, so both devices drop the same elements.
#include <cstdint>

#include "core/stream.h"

namespace kiln::kernels::cuda {

// Element i of this call is element first + i of the stream (a data-parallel rank passes where
// its rows start in the global batch), as on the CPU.
// stream_base: a device u64 added to `stream` in the kernel (null: none).
void dropout_forward(const Stream& s, int64_t n, float rate, uint64_t seed, uint64_t stream, const float* x, float* y,
                     uint8_t* mask, uint64_t first = 0, const uint64_t* stream_base = nullptr);
void dropout_backward(const Stream& s, int64_t n, float rate, const uint8_t* mask, const float* dy, float* dx);

}  // namespace kiln::kernels::cuda
