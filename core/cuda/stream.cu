#include "core/cuda/stream.h"

#include <utility>

#include "core/cuda/check.h"
#include "core/cuda/device_guard.h"

namespace kiln::cuda {

CudaStream::CudaStream(int device, StreamSync sync) : device_(device), sync_(sync) {
  const DeviceGuard guard(device);
  KILN_CUDA_CHECK(cudaStreamCreateWithFlags(
      &stream_, sync == StreamSync::non_blocking ? cudaStreamNonBlocking : cudaStreamDefault));
}

CudaStream::~CudaStream() {
  if (stream_) cudaStreamDestroy(stream_);
}

void CudaStream::synchronize() const { KILN_CUDA_CHECK(cudaStreamSynchronize(stream_)); }

CudaEvent::CudaEvent(bool timing) {
  KILN_CUDA_CHECK(cudaEventCreateWithFlags(&event_, timing ? cudaEventDefault : cudaEventDisableTiming));
}

CudaEvent::~CudaEvent() {
  if (event_) cudaEventDestroy(event_);
}

void CudaEvent::record(cudaStream_t stream) { KILN_CUDA_CHECK(cudaEventRecord(event_, stream)); }

void CudaEvent::synchronize() const { KILN_CUDA_CHECK(cudaEventSynchronize(event_)); }

float CudaEvent::elapsed_ms_since(const CudaEvent& start) const {
  float ms = 0.0f;
  KILN_CUDA_CHECK(cudaEventElapsedTime(&ms, start.event_, event_));
  return ms;
}

PinnedHostBuffer::PinnedHostBuffer(size_t bytes) : bytes_(bytes) {
  KILN_CUDA_CHECK(cudaHostAlloc(&ptr_, bytes ? bytes : 1, cudaHostAllocDefault));
}

PinnedHostBuffer::~PinnedHostBuffer() {
  if (ptr_) cudaFreeHost(ptr_);
}

PinnedHostBuffer& PinnedHostBuffer::operator=(PinnedHostBuffer&& o) noexcept {
  if (this != &o) {
    if (ptr_) cudaFreeHost(ptr_);
    ptr_ = std::exchange(o.ptr_, nullptr);
    bytes_ = std::exchange(o.bytes_, 0);
  }
  return *this;
}

void PinnedHostBuffer::copy_to_device_async(void* device_dst, size_t bytes, cudaStream_t stream) const {
  KILN_CHECK(bytes <= bytes_, "copy of ", bytes, " bytes from a pinned buffer of ", bytes_);
  KILN_CUDA_CHECK(cudaMemcpyAsync(device_dst, ptr_, bytes, cudaMemcpyHostToDevice, stream));
}

}  // namespace kiln::cuda
