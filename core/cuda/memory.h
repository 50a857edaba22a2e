#pragma once
// The process-wide caching allocator of each CUDA device, and a typed device array on top of it.
#include <cuda_runtime.h>

#include <cstddef>

#include "core/cuda/caching_allocator.h"
#include "core/cuda/check.h"

namespace kiln::cuda {

// The caching allocator of `device` (created on first use). kiln::allocator_for(Device::cuda(i))
// returns an adapter over the same allocator, on the legacy default stream.
CachingAllocator& device_allocator(int device);

// An owning device array from the caching allocator, for a kernel's scratch space.
template <typename T>
class DeviceArray {
 public:
  DeviceArray() = default;
  // device < 0: the stream's device, so scratch for a kernel on device 1 is on device 1 whatever
  // the thread's current device.
  DeviceArray(size_t count, cudaStream_t stream, int device = -1)
      : alloc_(&device_allocator(device >= 0 ? device : device_of(stream))), count_(count),
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
  // The device `stream` belongs to; the current device for the legacy default stream (nullptr).
  static int device_of(cudaStream_t stream) {
    if (!stream) return current();
    int d = 0;
    KILN_CUDA_CHECK(cudaStreamGetDevice(stream, &d));
    return d;
  }
  size_t size() const { return count_; }

 private:
  CachingAllocator* alloc_ = nullptr;
  size_t count_ = 0;
  T* ptr_ = nullptr;
};

}  // namespace kiln::cuda
