// Device dispatch of kernels/embedding.h (kernels/dispatch.h).
#include "kernels/embedding.h"

#include "kernels/cpu/embedding.h"
#include "kernels/dispatch.h"
#include "kernels/kernel_library.h"
#if KILN_HAVE_CUDA
#include "kernels/cuda/embedding.h"
#include "kernels/cuda/reference.h"
#endif

namespace kiln::kernels {

using detail::sim_arg;

template <typename T>
void embedding_forward(const Stream& s, const T* table, int64_t rows, int64_t dim, const int64_t* ids,
                       const int64_t* offsets, int64_t batch, Combiner combiner, T* out) {
  constexpr const char* kOp = "embedding_forward";
  switch (s.device().kind) {
    case Device::Kind::cpu: return cpu::embedding_forward(s, table, rows, dim, ids, offsets, batch, combiner, out);
    case Device::Kind::sim:
      // ids has offsets[batch] entries, known once the stream gets there.
      return detail::sim_launch(
          s, [=, table = sim_arg(kOp, "table", table, rows * dim), ids = sim_arg(kOp, "ids", ids, 0),
              offsets = sim_arg(kOp, "offsets", offsets, batch + 1), out = sim_arg(kOp, "out", out, batch * dim)] {
            const int64_t* off = offsets.get();
            cpu::embedding_forward(Stream::cpu(), table.get(), rows, dim, ids.get(off[batch]), off, batch, combiner,
                                   out.get());
          });
    case Device::Kind::cuda:
      KILN_CUDA_F32(kOp, T, s, [&] {
        // The CUDA lookup skips bad ids; the API makes them an error, as on the CPU (this reads nnz
        // and the check's result back: two synchronizations).
        const int64_t nnz = detail::cuda_read_nnz(s, offsets, batch);
        if (const int64_t bad = cuda::embedding_first_bad_id(s, ids, nnz, rows); bad >= 0)
          fail("embedding: the id at position ", bad, " is outside the table's ", rows, " rows");
        if (use_vendor("embedding"))
          cuda::reference::embedding_forward(s, table, rows, dim, ids, offsets, batch, combiner, out);
        else
          cuda::embedding_forward(s, table, rows, dim, ids, offsets, batch, combiner, out);
      }());
  }
  detail::unknown_device(kOp, s);
}

namespace {

// The sim task of embedding_backward: runs the CPU code and hands the count to `deliver`.
template <typename T, class Deliver>
void sim_embedding_backward(const char* op, const Stream& s, const T* dout, int64_t rows, int64_t dim,
                            const int64_t* ids, const int64_t* offsets, int64_t batch, Combiner combiner,
                            int64_t* unique_ids, T* grad_rows, Deliver deliver) {
  detail::sim_launch(
      s, [=, dout = sim_arg(op, "dout", dout, batch * dim), ids = sim_arg(op, "ids", ids, 0),
          offsets = sim_arg(op, "offsets", offsets, batch + 1), unique_ids = sim_arg(op, "unique_ids", unique_ids, 0),
          grad_rows = sim_arg(op, "grad_rows", grad_rows, 0)] {
        const int64_t* off = offsets.get();
        const int64_t nnz = off[batch];
        deliver(cpu::embedding_backward(Stream::cpu(), dout.get(), rows, dim, ids.get(nnz), off, batch, combiner,
                                        unique_ids.get(nnz), grad_rows.get(nnz * dim)));
      });
}

}  // namespace

template <typename T>
int64_t embedding_backward(const Stream& s, const T* dout, int64_t rows, int64_t dim, const int64_t* ids,
                           const int64_t* offsets, int64_t batch, Combiner combiner, int64_t* unique_ids,
                           T* grad_rows) {
  constexpr const char* kOp = "embedding_backward";
  switch (s.device().kind) {
    case Device::Kind::cpu:
      return cpu::embedding_backward(s, dout, rows, dim, ids, offsets, batch, combiner, unique_ids, grad_rows);
    case Device::Kind::sim: {
      auto count = std::make_shared<int64_t>(0);
      sim_embedding_backward(kOp, s, dout, rows, dim, ids, offsets, batch, combiner, unique_ids, grad_rows,
                             [count](int64_t c) { *count = c; });
      s.synchronize();
      return *count;
    }
    case Device::Kind::cuda:
      KILN_CUDA_F32(kOp, T, s,
                    (use_vendor("embedding") ? cuda::reference::embedding_backward : cuda::embedding_backward)(
                        s, dout, rows, dim, ids, offsets, batch, detail::cuda_read_nnz(s, offsets, batch), combiner,
                        unique_ids, grad_rows));
  }
  detail::unknown_device(kOp, s);
}

template <typename T>
void embedding_backward_async(const Stream& s, const T* dout, int64_t rows, int64_t dim, const int64_t* ids,
                              const int64_t* offsets, int64_t batch, Combiner combiner, int64_t* unique_ids,
                              T* grad_rows, int64_t* count) {
  constexpr const char* kOp = "embedding_backward_async";
  switch (s.device().kind) {
    case Device::Kind::cpu:
      *count = cpu::embedding_backward(s, dout, rows, dim, ids, offsets, batch, combiner, unique_ids, grad_rows);
      return;
    case Device::Kind::sim:
      return sim_embedding_backward(kOp, s, dout, rows, dim, ids, offsets, batch, combiner, unique_ids, grad_rows,
                                    [out = sim_arg(kOp, "count", count, 1)](int64_t c) { *out.get() = c; });
    case Device::Kind::cuda:
      detail::no_cuda_kernel(kOp, s, "no asynchronous CUDA kernel yet (embedding_backward synchronizes)");
  }
  detail::unknown_device(kOp, s);
}

KILN_EMBEDDING_INSTANTIATE(float)
KILN_EMBEDDING_INSTANTIATE(double)
#define KILN_INSTANTIATE_ASYNC(T)                                                                                      \
  template void embedding_backward_async<T>(const Stream&, const T*, int64_t, int64_t, const int64_t*, const int64_t*, \
                                            int64_t, Combiner, int64_t*, T*, int64_t*);
KILN_INSTANTIATE_ASYNC(float)
KILN_INSTANTIATE_ASYNC(double)
#undef KILN_INSTANTIATE_ASYNC

}  // namespace kiln::kernels
