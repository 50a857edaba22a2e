// CUDA's side of core/device_memory.h.
#include <cuda_runtime.h>

#include <algorithm>
#include <memory>
#include <vector>

#include "core/allocator.h"
#include "core/cuda/check.h"
#include "core/cuda/device_guard.h"
#include "core/cuda/memory.h"
#include "core/device_memory_backend.h"

namespace kiln::cuda_memory {

namespace {
cudaStream_t raw(void* s) { return static_cast<cudaStream_t>(s); }
cudaEvent_t raw_event(void* e) { return static_cast<cudaEvent_t>(e); }

class PinnedAllocator final : public Allocator {
 public:
  void* allocate(size_t bytes) override {
    void* p = nullptr;
    KILN_CUDA_CHECK(cudaHostAlloc(&p, bytes == 0 ? 1 : bytes, cudaHostAllocPortable));
    return p;
  }
  void deallocate(void* ptr, size_t) override { cudaFreeHost(ptr); }
  Device device() const override { return Device::cpu(); }
};
}  // namespace

void set_current_device(int device) { KILN_CUDA_CHECK(cudaSetDevice(device)); }

void* stream_create(int device) {
  const cuda::DeviceGuard guard(device);
  cudaStream_t s = nullptr;
  KILN_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamDefault));
  return s;
}

void stream_destroy(void* stream) {
  cudaStreamSynchronize(raw(stream));
  cudaStreamDestroy(raw(stream));
}

void* event_create(int device) {
  const cuda::DeviceGuard guard(device);
  cudaEvent_t e = nullptr;
  KILN_CUDA_CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
  return e;
}

void event_destroy(void* event) { cudaEventDestroy(raw_event(event)); }
void event_record(void* event, void* stream) { KILN_CUDA_CHECK(cudaEventRecord(raw_event(event), raw(stream))); }
void event_make_wait(void* event, void* stream) {
  KILN_CUDA_CHECK(cudaStreamWaitEvent(raw(stream), raw_event(event), 0));
}
void event_synchronize(void* event) { KILN_CUDA_CHECK(cudaEventSynchronize(raw_event(event))); }

void copy_async(void* dst, const void* src, size_t bytes, void* stream) {
  if (bytes) KILN_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDefault, raw(stream)));
}

void copy_rows_async(void* dst, size_t dst_pitch, const void* src, size_t src_pitch, size_t width, size_t rows,
                     void* stream) {
  if (width && rows)
    KILN_CUDA_CHECK(cudaMemcpy2DAsync(dst, dst_pitch, src, src_pitch, width, rows, cudaMemcpyDeviceToDevice, raw(stream)));
}

void memset_async(void* dst, int value, size_t bytes, void* stream) {
  if (bytes) KILN_CUDA_CHECK(cudaMemsetAsync(dst, value, bytes, raw(stream)));
}

namespace {
// A captured graph and the allocator pool its replays use (kept until the graph is destroyed).
struct CudaGraph {
  cudaGraphExec_t exec = nullptr;
  int device = 0;
  uint64_t pool = 0;
  std::vector<void*> launched_on;  // the streams its launches may still run on
};
}  // namespace

void graph_begin_capture(int device, void* stream) {
  cuda::CachingAllocator& alloc = cuda::device_allocator(device);
  const uint64_t pool = alloc.begin_capture(stream);
  const cudaError_t err = cudaStreamBeginCapture(raw(stream), cudaStreamCaptureModeThreadLocal);
  if (err != cudaSuccess) {
    alloc.end_capture(stream);
    alloc.release_pool(pool, {});
  }
  KILN_CUDA_CHECK(err);
}

void* graph_end_capture(int device, void* stream) {
  cuda::CachingAllocator& alloc = cuda::device_allocator(device);
  auto g = std::make_unique<CudaGraph>();
  g->device = device;
  cudaGraph_t graph = nullptr;
  // CUDA's capture ends first: the allocator then records the events of the shared blocks freed
  // during it, which must not become part of the graph (an event recorded into a capture cannot
  // be queried, and the block's next taker would fail).
  cudaError_t err = cudaStreamEndCapture(raw(stream), &graph);
  g->pool = alloc.end_capture(stream);
  if (err == cudaSuccess) {
    err = cudaGraphInstantiate(&g->exec, graph, 0);
    cudaGraphDestroy(graph);
  }
  if (err != cudaSuccess) {
    alloc.release_pool(g->pool, {stream});
    KILN_CUDA_CHECK(err);
  }
  return g.release();
}

void graph_launch(void* graph, void* stream) {
  auto* g = static_cast<CudaGraph*>(graph);
  KILN_CUDA_CHECK(cudaGraphLaunch(g->exec, raw(stream)));
  if (std::find(g->launched_on.begin(), g->launched_on.end(), stream) == g->launched_on.end())
    g->launched_on.push_back(stream);
}

void graph_destroy(void* graph) {
  std::unique_ptr<CudaGraph> g(static_cast<CudaGraph*>(graph));
  // An exec still running is freed when it completes; its pool's blocks wait for the streams.
  cudaGraphExecDestroy(g->exec);
  try {
    cuda::device_allocator(g->device).release_pool(g->pool, g->launched_on);
  } catch (...) {
    // Called from destructors; a failed event record leaves the blocks to the driver.
  }
}

Allocator& pinned_allocator() {
  static PinnedAllocator allocator;
  return allocator;
}

}  // namespace kiln::cuda_memory
