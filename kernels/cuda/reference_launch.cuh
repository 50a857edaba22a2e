#pragma once
// The launch of the reference kernels (kernels/cuda/reference.h): one thread per output element,
// a grid-stride loop over `n` of them, through kiln::cuda::launch.
#include <cstdint>

#include "core/cuda/launch.cuh"
#include "core/cuda/stream.h"
#include "kernels/cuda/elementwise.cuh"

namespace kiln::kernels::cuda::reference {

template <typename... KArgs, typename... Args>
void launch_per_output(const Stream& s, const char* name, void (*kernel)(KArgs...), int64_t n, Args... args) {
  if (n <= 0) return;
  kiln::cuda::launch(name, kernel, dim3(elementwise_blocks(n)), dim3(kElementwiseThreads), 0, kiln::cuda::raw(s),
                     args...);
}

// One thread, for the final in-order sum of a few partials.
template <typename... KArgs, typename... Args>
void launch_single(const Stream& s, const char* name, void (*kernel)(KArgs...), Args... args) {
  kiln::cuda::launch(name, kernel, dim3(1), dim3(1), 0, kiln::cuda::raw(s), args...);
}

}  // namespace kiln::kernels::cuda::reference
