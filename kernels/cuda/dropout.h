#pragma once
// Inverted dropout on the GPU with the CPU path's Philox stream (kernels/dropout.h): element i is
// kept when Philox4x32::uniform(seed, stream, i) >= rate, so both devices drop the same elements.
#include <cstdint>

#include "core/stream.h"

namespace kiln::kernels::cuda {

void dropout_forward(const Stream& s, int64_t n, float rate, uint64_t seed, uint64_t stream, const float* x, float* y,
                     uint8_t* mask);
void dropout_backward(const Stream& s, int64_t n, float rate, const uint8_t* mask, const float* dy, float* dx);

}  // namespace kiln::kernels::cuda
