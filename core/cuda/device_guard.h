#pragma once
// Scoped current device: makes `device` current and restores the previous one on scope exit, so
// a helper that needs a device (creating a stream, an event, allocating) does not leave the
// calling thread on another GPU. Every cudaSetDevice in core/ goes through it.
#include <cuda_runtime.h>

#include "core/cuda/check.h"

namespace kiln::cuda {

class DeviceGuard {
 public:
  explicit DeviceGuard(int device) {
    KILN_CUDA_CHECK(cudaGetDevice(&previous_));
    if (device != previous_) {
      KILN_CUDA_CHECK(cudaSetDevice(device));
      switched_ = true;
    }
  }
  ~DeviceGuard() {
    if (switched_) cudaSetDevice(previous_);  // no throw from a destructor; the device existed before
  }
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;
  int previous() const { return previous_; }

 private:
  int previous_ = 0;
  bool switched_ = false;
};

}  // namespace kiln::cuda
