#pragma once
// A Stream is where a kernel runs: on the CPU it executes synchronously on the calling thread plus
// the OpenMP team (the same runtime oneDNN uses, so the two never oversubscribe the cores); on a
// GPU it wraps a cudaStream_t. Kernels take the stream first and dispatch on its device.
#include "core/device.h"

namespace kiln {

class Stream {
 public:
  Stream() = default;
  static Stream cpu() { return Stream(); }
  // `handle` is a cudaStream_t; nullptr is the legacy default stream.
  static Stream cuda(int device_index, void* handle) {
    Stream s;
    s.device_ = Device::cuda(device_index);
    s.handle_ = handle;
    return s;
  }
  const Device& device() const { return device_; }
  void* handle() const { return handle_; }
  // Blocks until the work queued so far is done (a no-op on the CPU).
  void synchronize() const;

 private:
  Device device_ = Device::cpu();
  void* handle_ = nullptr;
};

// Threads used by CPU kernels (OpenMP team size, also handed to oneDNN). Set once at start-up.
void set_cpu_threads(int threads);
int cpu_threads();

}  // namespace kiln
