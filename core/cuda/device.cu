// CUDA entry points of core/: device discovery, stream synchronisation, and the caching device
// allocator behind kiln::allocator_for(Device::cuda(i)).
#include <map>
#include <memory>
#include <mutex>

#include "core/allocator.h"
#include "core/cuda/check.h"
#include "core/cuda/device_guard.h"
#include "core/cuda/memory.h"
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

namespace cuda {
namespace {

// The CUDA side of the caching allocator: cudaMalloc/cudaFree and events on one device.
class CudaMemoryBackend final : public DeviceMemoryBackend {
 public:
  explicit CudaMemoryBackend(int device) : device_(device) {}
  void* malloc(size_t bytes) override {
    const DeviceGuard guard(device_);
    // cudaMalloc is "potentially unsafe" while this thread captures a graph (thread-local mode
    // refuses it); relaxed mode allows it. The allocator keeps such a block in the graph's pool
    // until the graph is destroyed, which is what makes it safe (CUDA's
    // cudaThreadExchangeStreamCaptureMode; PyTorch allocates in capture the same way).
    cudaStreamCaptureMode mode = cudaStreamCaptureModeRelaxed;
    KILN_CUDA_CHECK(cudaThreadExchangeStreamCaptureMode(&mode));
    void* p = nullptr;
    const cudaError_t err = cudaMalloc(&p, bytes);
    cudaThreadExchangeStreamCaptureMode(&mode);
    if (err == cudaErrorMemoryAllocation) {
      cudaGetLastError();  // not sticky, but clear it so the next check does not see it
      return nullptr;
    }
    KILN_CUDA_CHECK(err);
    return p;
  }
  void free(void* ptr) override { KILN_CUDA_CHECK(cudaFree(ptr)); }
  void* create_event() override {
    const DeviceGuard guard(device_);
    cudaEvent_t e;
    KILN_CUDA_CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
    return e;
  }
  void destroy_event(void* e) override { cudaEventDestroy(static_cast<cudaEvent_t>(e)); }
  void record_event(void* e, void* stream) override {
    KILN_CUDA_CHECK(cudaEventRecord(static_cast<cudaEvent_t>(e), static_cast<cudaStream_t>(stream)));
  }
  bool event_done(void* e) override {
    const cudaError_t err = cudaEventQuery(static_cast<cudaEvent_t>(e));
    if (err == cudaErrorNotReady) {
      cudaGetLastError();
      return false;
    }
    KILN_CUDA_CHECK(err);
    return true;
  }
  void synchronize_device() override {
    const DeviceGuard guard(device_);
    KILN_CUDA_CHECK(cudaDeviceSynchronize());
  }

 private:
  int device_;
};

struct DeviceState {
  explicit DeviceState(int device) : backend(device), allocator(backend) {}
  CudaMemoryBackend backend;
  CachingAllocator allocator;
};

// The generic Allocator interface (Tensor, Buffer) over the caching allocator, on the legacy
// default stream, which orders itself against every blocking stream.
class CachingAllocatorAdapter final : public Allocator {
 public:
  CachingAllocatorAdapter(int index, CachingAllocator& a) : index_(index), alloc_(a) {}
  void* allocate(size_t bytes) override { return alloc_.allocate(bytes, nullptr); }
  void deallocate(void* ptr, size_t) override { alloc_.deallocate(ptr); }
  Device device() const override { return Device::cuda(index_); }

 private:
  int index_;
  CachingAllocator& alloc_;
};

std::mutex& registry_mutex() {
  static std::mutex m;
  return m;
}

// Never destroyed: tensors with static lifetime may free into it during exit.
std::map<int, DeviceState*>& states() {
  static auto* m = new std::map<int, DeviceState*>();
  return *m;
}

}  // namespace

CachingAllocator& device_allocator(int device) {
  KILN_CHECK(device >= 0 && device < cuda_device_count(), "no CUDA device ", device);
  std::lock_guard<std::mutex> lock(registry_mutex());
  DeviceState*& s = states()[device];
  if (!s) s = new DeviceState(device);
  return s->allocator;
}

}  // namespace cuda

Allocator* cuda_allocator(int index) {
  static std::mutex mutex;
  static auto* adapters = new std::map<int, std::unique_ptr<cuda::CachingAllocatorAdapter>>();
  if (index < 0 || index >= cuda_device_count()) return nullptr;
  cuda::CachingAllocator& a = cuda::device_allocator(index);
  std::lock_guard<std::mutex> lock(mutex);
  auto& p = (*adapters)[index];
  if (!p) p = std::make_unique<cuda::CachingAllocatorAdapter>(index, a);
  return p.get();
}

}  // namespace kiln
