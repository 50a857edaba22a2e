#pragma once
// Grid-stride launch helper for element-wise kernels: enough blocks to fill the GPU, each thread
// striding by the grid, 64-bit indices throughout.
#include <cstdint>

#include "core/cuda/launch.h"

namespace kiln::kernels::cuda {

constexpr int kElementwiseThreads = 256;

inline unsigned elementwise_blocks(int64_t n) {
  return static_cast<unsigned>(kiln::cuda::blocks_for(n, kElementwiseThreads, 132 * 32));
}

#define KILN_GRID_STRIDE(i, n)                                                                         \
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < (n); \
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)

}  // namespace kiln::kernels::cuda
