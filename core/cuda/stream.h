#pragma once
// Owning wrappers for CUDA streams and events, and pinned host buffers. Kernels take the
// non-owning kiln::Stream; a CudaStream hands one out with view().
#include <cuda_runtime.h>

#include <cstddef>

#include "core/stream.h"

namespace kiln::cuda {

inline cudaStream_t raw(const Stream& s) { return static_cast<cudaStream_t>(s.handle()); }

// How a created stream orders itself against the legacy default stream (stream 0).
enum class StreamSync {
  // cudaStreamDefault: work on it waits for earlier legacy-stream work and the reverse. Tensor
  // memory (allocator_for(Device::cuda(i))) is allocated and freed on the legacy stream, so a
  // buffer freed while a kernel on this stream still reads it is not handed to a later
  // legacy-stream user before that kernel is done.
  blocking,
  // cudaStreamNonBlocking: no implicit ordering with the legacy stream. Only for code that owns
  // every buffer it touches on the stream (caching-allocator blocks allocated on this stream, or
  // record_stream'd to it); a Tensor freed on the legacy stream could be reused too early.
  non_blocking,
};

class CudaStream {
 public:
  // A stream on `device`, blocking (ordered with the legacy stream) unless asked otherwise. The
  // calling thread's current device is left as it was.
  explicit CudaStream(int device = 0, StreamSync sync = StreamSync::blocking);
  ~CudaStream();
  CudaStream(const CudaStream&) = delete;
  CudaStream& operator=(const CudaStream&) = delete;
  cudaStream_t get() const { return stream_; }
  int device() const { return device_; }
  StreamSync sync() const { return sync_; }
  Stream view() const { return Stream::cuda(device_, stream_); }
  void synchronize() const;

 private:
  int device_;
  StreamSync sync_;
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
