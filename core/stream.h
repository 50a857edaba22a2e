#pragma once
// A Stream is where a kernel runs: on the CPU it executes synchronously on the calling thread plus
// the OpenMP team (the same runtime oneDNN uses, so the two never oversubscribe the cores); on a
// GPU it wraps a cudaStream_t; on the sim device it points at a sim::SimStream, whose worker
// thread runs the queued work in order. Kernels take the stream first.
#include <cstdint>

#include "core/device.h"

namespace kiln {

namespace sim {
class SimStream;
}  // namespace sim

// How GEMMs and convolutions compute on a stream (TrainConfig `precision`, docs/cuda.md): fp32
// products, or inputs rounded to TF32 (10-bit mantissa) or BF16 (7-bit) with fp32 accumulation,
// as the GPU's tensor cores compute; the CPU and sim emulate the rounding. Other ops are fp32.
enum class MathPrecision : uint8_t { fp32, tf32, bf16 };
const char* precision_name(MathPrecision p);

class Stream {
 public:
  Stream() = default;
  static Stream cpu() { return Stream(); }
  // `handle` is a cudaStream_t; nullptr is the legacy default stream.
  // At TF32 by default: CUDA's GEMMs and convolutions run on tensor cores unless asked for FP32.
  static Stream cuda(int device_index, void* handle) {
    Stream s;
    s.device_ = Device::cuda(device_index);
    s.handle_ = handle;
    s.precision_ = MathPrecision::tf32;
    return s;
  }
  // `stream` is owned by the caller; nullptr is sim device `device_index`'s default stream.
  static Stream sim(kiln::sim::SimStream* stream, int device_index = 0) {
    Stream s;
    s.device_ = Device::sim(device_index);
    s.handle_ = stream;
    return s;
  }
  const Device& device() const { return device_; }
  void* handle() const { return handle_; }
  MathPrecision precision() const { return precision_; }
  // The same stream with GEMMs and convolutions at `p`.
  Stream with_precision(MathPrecision p) const {
    Stream s = *this;
    s.precision_ = p;
    return s;
  }
  // Blocks until the work queued so far is done (a no-op on the CPU). On sim it also rethrows
  // the first error a task of the stream threw (core/sim/sim_stream.h).
  void synchronize() const;

 private:
  Device device_ = Device::cpu();
  void* handle_ = nullptr;
  MathPrecision precision_ = MathPrecision::fp32;
};

// Threads used by CPU kernels (OpenMP team size, also handed to oneDNN). Set once at start-up.
void set_cpu_threads(int threads);
int cpu_threads();

}  // namespace kiln
