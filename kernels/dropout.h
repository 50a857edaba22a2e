#pragma once
// Inverted dropout driven by Philox: element i is kept when
// Philox4x32::uniform(seed, stream, i) >= rate, so the CPU and the GPU drop the same elements.
#include <cstdint>

#include "core/stream.h"

namespace kiln::kernels {

// Element i of this call is element first + i of the stream: a data-parallel rank passes where its
// rows start in the global batch, so the ranks together drop what one process would.
template <typename T>
// stream_base: when given, a u64 in the stream's device memory added to `stream` when the kernel
// runs (a captured training step reads its step from there; kernels/dropout.h's callers pass null
// otherwise).
void dropout_forward(const Stream& s, int64_t n, float rate, uint64_t seed, uint64_t stream, const T* x, T* y,
                     uint8_t* mask, uint64_t first = 0, const uint64_t* stream_base = nullptr);
template <typename T>
void dropout_backward(const Stream& s, int64_t n, float rate, const uint8_t* mask, const T* dy, T* dx);

}  // namespace kiln::kernels
