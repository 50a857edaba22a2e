#pragma once
// Every CUDA runtime call is checked and reported with the file and line of the call.
#include <cuda_runtime.h>

#include "core/error.h"

#define KILN_CUDA_CHECK(expr)                                                                   \
  do {                                                                                          \
    cudaError_t kiln_err_ = (expr);                                                             \
    if (kiln_err_ != cudaSuccess)                                                               \
      ::kiln::fail(__FILE__, ":", __LINE__, ": ", #expr, ": ", cudaGetErrorString(kiln_err_)); \
  } while (0)
