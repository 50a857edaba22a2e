#pragma once
// Every CUDA runtime call is checked and reported with the file and line of the call, and the
// call itself.
#include <cuda_runtime.h>

#include "core/error.h"

#define KILN_CUDA_CHECK(expr)                                                                   \
  do {                                                                                          \
    cudaError_t kiln_err_ = (expr);                                                             \
    if (kiln_err_ != cudaSuccess)                                                               \
      ::kiln::fail(__FILE__, ":", __LINE__, ": ", #expr, ": ", cudaGetErrorString(kiln_err_)); \
  } while (0)

namespace kiln::cuda {

// After a kernel launch: throws naming the kernel if the launch failed. With the environment
// variable KILN_CUDA_SYNC_CHECK=1 it also synchronizes `stream`, so an error inside the kernel
// (an illegal address) is reported at the kernel that caused it rather than at a later call.
void check_launch(const char* kernel, cudaStream_t stream, const char* file, int line);

}  // namespace kiln::cuda
