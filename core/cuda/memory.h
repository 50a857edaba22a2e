#pragma once
// The process-wide caching allocator of each CUDA device, and a typed device array on top of it.
#include <cuda_runtime.h>

#include <cstddef>

#include "core/cuda/caching_allocator.h"

namespace kiln::cuda {

// The caching allocator of `device` (created on first use). kiln::allocator_for(Device::cuda(i))
// returns an adapter over the same allocator, on the legacy default stream.
CachingAllocator& device_allocator(int device);

// An owning device array from the caching allocator, for a kernel's scratch space.
template <typename T>
class DeviceArray {
 public:
  DeviceArray() = default;
  // device < 0: the current device.
  DeviceArray(size_t count, cudaStream_t stream, int device = -1)
      : alloc_(&device_allocator(device >= 0 ? device : current())), count_(count),
        ptr_(static_cast<T*>(alloc_->allocate(count * sizeof(T), stream))) {}
  ~DeviceArray() {
    if (ptr_) alloc_->deallocate(ptr_);
  }
  DeviceArray(DeviceArray&& o) noexcept : alloc_(o.alloc_), count_(o.count_), ptr_(o.ptr_) { o.ptr_ = nullptr; }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
  T* get() const { return ptr_; }
  static int current() {
    int d = 0;
    cudaGetDevice(&d);
    return d;
  }
  size_t size() const { return count_; }

 private:
  CachingAllocator* alloc_ = nullptr;
  size_t count_ = 0;
  T* ptr_ = nullptr;
};

}  // namespace kiln::cuda
