// Why CUDA is unusable, for the error of `device: CUDA` (core/device_choice.h).
#include <cuda_runtime.h>

#include <cstdlib>
#include <string>

#include "core/device_choice.h"

namespace kiln {

std::string cuda_unavailable_reason() {
  int n = 0;
  const cudaError_t err = cudaGetDeviceCount(&n);
  if (err != cudaSuccess) {
    cudaGetLastError();  // clear the sticky error
    return std::string("the CUDA runtime says: ") + cudaGetErrorString(err);
  }
  if (n > 0) return "";
  const char* visible = std::getenv("CUDA_VISIBLE_DEVICES");
  return visible ? std::string("CUDA_VISIBLE_DEVICES=") + visible + " hides them all" : "the driver reports no GPU";
}

}  // namespace kiln
