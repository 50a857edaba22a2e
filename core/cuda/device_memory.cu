// CUDA's side of core/device_memory.h.
#include <cuda_runtime.h>

#include "core/allocator.h"
#include "core/cuda/check.h"
#include "core/cuda/device_guard.h"
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

void graph_begin_capture(void* stream) {
  KILN_CUDA_CHECK(cudaStreamBeginCapture(raw(stream), cudaStreamCaptureModeThreadLocal));
}

void* graph_end_capture(void* stream) {
  cudaGraph_t graph = nullptr;
  KILN_CUDA_CHECK(cudaStreamEndCapture(raw(stream), &graph));
  cudaGraphExec_t exec = nullptr;
  const cudaError_t made = cudaGraphInstantiate(&exec, graph, 0);
  cudaGraphDestroy(graph);
  KILN_CUDA_CHECK(made);
  return exec;
}

void graph_launch(void* exec, void* stream) {
  KILN_CUDA_CHECK(cudaGraphLaunch(static_cast<cudaGraphExec_t>(exec), raw(stream)));
}

void graph_destroy(void* exec) { cudaGraphExecDestroy(static_cast<cudaGraphExec_t>(exec)); }

Allocator& pinned_allocator() {
  static PinnedAllocator allocator;
  return allocator;
}

}  // namespace kiln::cuda_memory
