#include "kernels/dispatch.h"

#include <exception>

#if KILN_HAVE_CUDA
#include <cuda_runtime.h>

#include "core/cuda/check.h"
#include "core/cuda/stream.h"
#endif

#include "core/sim/sim_memory.h"
#include "core/sim/sim_stream.h"

namespace kiln::kernels::detail {

void cuda_not_built(const char* op, const Stream& s) {
  fail(op, " on ", s.device().to_string(),
       ": this build of kiln has no CUDA backend (configure with -DKILN_CUDA=ON "
       "on a machine with the CUDA toolkit), use the cpu or sim device");
}

void no_cuda_kernel(const char* op, const Stream& s, const char* why) {
#if KILN_HAVE_CUDA
  fail(op, " on ", s.device().to_string(), ": ", why);
#else
  (void)why;
  cuda_not_built(op, s);
#endif
}

void cuda_f32_only(const char* op, const Stream& s, const char* dtype) {
  fail(op, " on ", s.device().to_string(), ": the CUDA kernels take f32 only, got ", dtype);
}

void unknown_device(const char* op, const Stream& s) {
  KILN_CHECK(false, op, ": unknown device ", s.device().to_string());
  std::terminate();
}

void* sim_untag(const char* op, const char* name, const void* ptr, int64_t count, size_t elem_bytes) {
  if (count < 0) fail(op, " on sim: argument ", name, " has a negative extent ", count);
  try {
    return sim::sim_memory().untag(ptr, static_cast<size_t>(count) * elem_bytes);
  } catch (const std::exception& e) {
    fail(op, " on sim: argument ", name, " (", count, " elements of ", elem_bytes, " bytes): ", e.what());
  }
}

int64_t cuda_read_nnz(const Stream& s, const int64_t* offsets, int64_t batch) {
#if KILN_HAVE_CUDA
  int64_t nnz = 0;
  const cudaStream_t stream = ::kiln::cuda::raw(s);
  KILN_CUDA_CHECK(cudaMemcpyAsync(&nnz, offsets + batch, sizeof(nnz), cudaMemcpyDeviceToHost, stream));
  KILN_CUDA_CHECK(cudaStreamSynchronize(stream));
  return nnz;
#else
  (void)offsets;
  (void)batch;
  cuda_not_built("embedding", s);
#endif
}

void sim_enqueue(const Stream& s, std::function<void()> body) {
  // The worker runs the CPU code with the caller's thread count (an OpenMP setting is per thread),
  // so a sim run splits its parallel reductions as the CPU run does and computes the same bits.
  const int threads = cpu_threads();
  sim::SimStream::from(s).enqueue([threads, body = std::move(body)] {
    if (cpu_threads() != threads) set_cpu_threads(threads);
    body();
  });
}

}  // namespace kiln::kernels::detail
