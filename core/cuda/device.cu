// CUDA entry points of core/: device discovery, stream synchronisation and a plain device
// allocator (the CUDA backend issue replaces it with a caching allocator).
#include <map>
#include <memory>
#include <mutex>

#include "core/allocator.h"
#include "core/cuda/check.h"
#include "core/device.h"

namespace kiln {

int cuda_device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no device" error
    return 0;
  }
  return n;
}

void synchronize_cuda_stream(void* handle) { KILN_CUDA_CHECK(cudaStreamSynchronize(static_cast<cudaStream_t>(handle))); }

namespace {
class CudaAllocator final : public Allocator {
 public:
  explicit CudaAllocator(int index) : index_(index) {}
  void* allocate(size_t bytes) override {
    KILN_CUDA_CHECK(cudaSetDevice(index_));
    void* p = nullptr;
    KILN_CUDA_CHECK(cudaMalloc(&p, bytes ? bytes : 256));
    return p;
  }
  void deallocate(void* ptr, size_t) override { cudaFree(ptr); }
  Device device() const override { return Device::cuda(index_); }

 private:
  int index_;
};
}  // namespace

Allocator* cuda_allocator(int index) {
  static std::mutex mutex;
  static std::map<int, std::unique_ptr<CudaAllocator>> allocators;
  if (index < 0 || index >= cuda_device_count()) return nullptr;
  std::lock_guard<std::mutex> lock(mutex);
  auto& a = allocators[index];
  if (!a) a = std::make_unique<CudaAllocator>(index);
  return a.get();
}

}  // namespace kiln
