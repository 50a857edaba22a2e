#include "core/stream.h"

#include <omp.h>

#include "core/error.h"

namespace kiln {

void Stream::synchronize() const {
  if (device_.is_cpu()) return;
  void synchronize_cuda_stream(void* handle);
  synchronize_cuda_stream(handle_);
}

void set_cpu_threads(int threads) {
  if (threads < 1) fail("threads must be >= 1, got ", threads);
  omp_set_num_threads(threads);
}

int cpu_threads() { return omp_get_max_threads(); }

}  // namespace kiln
