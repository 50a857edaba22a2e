#pragma once
// Owning wrappers for CUDA streams and events, and pinned host buffers. Kernels take the
// non-owning kiln::Stream; a CudaStream hands one out with view().
#include <cuda_runtime.h>

#include <cstddef>

#include "core/stream.h"

namespace kiln::cuda {

inline cudaStream_t raw(const Stream& s) { return static_cast<cudaStream_t>(s.handle()); }

class CudaStream {
 public:
  // A non-blocking stream on `device` (no implicit synchronisation with the legacy stream).
  explicit CudaStream(int device = 0);
  ~CudaStream();
  CudaStream(const CudaStream&) = delete;
  CudaStream& operator=(const CudaStream&) = delete;
  cudaStream_t get() const { return stream_; }
  int device() const { return device_; }
  Stream view() const { return Stream::cuda(device_, stream_); }
  void synchronize() const;

 private:
  int device_;
  cudaStream_t stream_ = nullptr;
};

class CudaEvent {
 public:
  explicit CudaEvent(bool timing = true);
  ~CudaEvent();
  CudaEvent(const CudaEvent&) = delete;
  CudaEvent& operator=(const CudaEvent&) = delete;
  void record(cudaStream_t stream);
  void synchronize() const;
  // Milliseconds between two recorded, completed events.
  float elapsed_ms_since(const CudaEvent& start) const;
  cudaEvent_t get() const { return event_; }

 private:
  cudaEvent_t event_ = nullptr;
};

// Page-locked host memory: host-to-device copies from it run asynchronously at full bus speed,
// which the input pipeline's prefetch needs.
class PinnedHostBuffer {
 public:
  PinnedHostBuffer() = default;
  explicit PinnedHostBuffer(size_t bytes);
  ~PinnedHostBuffer();
  PinnedHostBuffer(PinnedHostBuffer&& o) noexcept : ptr_(o.ptr_), bytes_(o.bytes_) { o.ptr_ = nullptr, o.bytes_ = 0; }
  PinnedHostBuffer& operator=(PinnedHostBuffer&& o) noexcept;
  PinnedHostBuffer(const PinnedHostBuffer&) = delete;
  PinnedHostBuffer& operator=(const PinnedHostBuffer&) = delete;
  void* data() const { return ptr_; }
  size_t bytes() const { return bytes_; }
  // Asynchronous copy of the first `bytes` to device memory on `stream`; the buffer must not be
  // rewritten until the stream has passed the copy.
  void copy_to_device_async(void* device_dst, size_t bytes, cudaStream_t stream) const;

 private:
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};

}  // namespace kiln::cuda
