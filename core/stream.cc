#include "core/stream.h"

#include <omp.h>

#include "core/error.h"
#include "core/sim/sim_stream.h"

namespace kiln {

void synchronize_cuda_stream(void* handle);  // core/cuda/device.cu, or core/no_cuda.cc

void Stream::synchronize() const {
  switch (device_.kind) {
    case Device::Kind::cpu: return;
    case Device::Kind::cuda: return synchronize_cuda_stream(handle_);
    case Device::Kind::sim: return sim::SimStream::from(*this).synchronize();
  }
}

const char* precision_name(MathPrecision p) {
  switch (p) {
    case MathPrecision::fp32: return "fp32";
    case MathPrecision::tf32: return "tf32";
    case MathPrecision::bf16: return "bf16";
  }
  return "unknown precision";
}

void set_cpu_threads(int threads) {
  if (threads < 1) fail("threads must be >= 1, got ", threads);
  omp_set_num_threads(threads);
}

int cpu_threads() { return omp_get_max_threads(); }

}  // namespace kiln
