#pragma once
// Stream-ordered memory work on any device, in one place: owned streams and events, copies
// between the host and a device, fills, page-locked host staging. The CPU runs each call at once
// on the calling thread; the sim device queues it on its SimStream (core/sim/sim_copy.h); CUDA
// calls cudaMemcpyAsync and friends. models/ and runtime/ use only these and the kernels, so the
// same code trains and serves on every device.
#include <memory>

#include "core/device.h"
#include "core/stream.h"
#include "core/tensor.h"

namespace kiln {

// A stream owned by the caller: a new SimStream or a blocking cudaStream_t on `device`; on the
// CPU the view is Stream::cpu(). The destructor waits for the queued work.
class DeviceStream {
 public:
  explicit DeviceStream(const Device& device);
  ~DeviceStream();
  DeviceStream(const DeviceStream&) = delete;
  DeviceStream& operator=(const DeviceStream&) = delete;
  const Stream& view() const { return view_; }
  const Device& device() const { return view_.device(); }
  void synchronize() const { view_.synchronize(); }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  Stream view_;
};

// Waits for a stream's queued work when destroyed, reporting (not throwing) a failure of it on
// stderr. Device memory is freed at once when its tensor goes, while queued work may still use
// it: an owner declares this after every member holding such memory, so it runs first, also when
// the owner's constructor throws.
class StreamDrain {
 public:
  explicit StreamDrain(const std::unique_ptr<DeviceStream>& stream) : stream_(stream) {}
  ~StreamDrain();
  StreamDrain(const StreamDrain&) = delete;
  StreamDrain& operator=(const StreamDrain&) = delete;

 private:
  const std::unique_ptr<DeviceStream>& stream_;
};

// A point in a stream's work (cudaEvent_t). On the CPU every call is a no-op: work is done when
// the call that queued it returns.
class DeviceEvent {
 public:
  explicit DeviceEvent(const Device& device);
  ~DeviceEvent();
  DeviceEvent(const DeviceEvent&) = delete;
  DeviceEvent& operator=(const DeviceEvent&) = delete;
  // Marks the work queued on `s` so far.
  void record(const Stream& s);
  // Work queued on `s` from now on starts after the recorded point (cudaStreamWaitEvent).
  void make_wait(const Stream& s) const;
  // The host waits for the recorded point (no-op before the first record).
  void synchronize() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Copies src into dst (the same number of bytes) in the order of `s`: host to device, device to
// host or within the device, by the tensors' devices (each is the CPU or s.device()). Host memory
// is read or written when the stream gets there: keep it alive and untouched until then.
void copy_async(const Stream& s, const Tensor& dst, const Tensor& src);
// copy_async, then waits for it.
void copy_sync(const Stream& s, const Tensor& dst, const Tensor& src);
// `rows` rows of `width` bytes from src (rows `src_pitch` bytes apart) to dst (`dst_pitch` apart),
// both on s.device() (cudaMemcpy2DAsync).
void copy_rows_async(const Stream& s, void* dst, size_t dst_pitch, const void* src, size_t src_pitch, size_t width,
                     size_t rows);
// Sets every byte of t, which lives on s.device(), to zero.
void zero_async(const Stream& s, const Tensor& t);
// The data of t on the host: t itself when it is a CPU tensor, else a copy (waits for `s`).
Tensor to_host(const Stream& s, const Tensor& t);
// A new tensor on s.device() holding zeros (queued on s).
Tensor zeros_on(const Stream& s, const Shape& shape, DType dtype);
// A new host tensor for staging copies to and from `device`: page-locked for CUDA, so copies
// run asynchronously; ordinary CPU memory otherwise.
Tensor staging_empty(const Shape& shape, DType dtype, const Device& device);

}  // namespace kiln
