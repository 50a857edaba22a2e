// Device dispatch of kernels/embedding.h (kernels/dispatch.h).
#include "kernels/embedding.h"

#include <algorithm>

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
                       const int64_t* offsets, int64_t batch, Combiner combiner, T* out,
                       [[maybe_unused]] bool ids_checked) {
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
        // and the check's result back: two synchronizations), unless the host checked them.
        if (!ids_checked) {
          const int64_t nnz = detail::cuda_read_nnz(s, offsets, batch);
          if (const int64_t bad = cuda::embedding_first_bad_id(s, ids, nnz, rows); bad >= 0)
            fail("embedding: the id at position ", bad, " is outside the table's ", rows, " rows");
        }
        if (use_vendor("embedding"))
          cuda::reference::embedding_forward(s, table, rows, dim, ids, offsets, batch, combiner, out);
        else
          cuda::embedding_forward(s, table, rows, dim, ids, offsets, batch, combiner, out, /*ids_checked=*/true);
      }());
  }
  detail::unknown_device(kOp, s);
}

void embedding_check_ids(const int64_t* ids, int64_t nnz, int64_t rows) { cpu::check_ids(ids, nnz, rows); }

namespace {

// The sim task of embedding_backward: runs the CPU code and hands the count to `deliver`. The
// buffers hold `capacity` ids (-1: offsets[batch], known once the stream gets there).
template <typename T, class Deliver>
void sim_embedding_backward(const char* op, const Stream& s, const T* dout, int64_t rows, int64_t dim,
                            const int64_t* ids, const int64_t* offsets, int64_t batch, int64_t capacity,
                            Combiner combiner, int64_t* unique_ids, T* grad_rows, Deliver deliver) {
  detail::sim_launch(
      s, [=, dout = sim_arg(op, "dout", dout, batch * dim), ids = sim_arg(op, "ids", ids, std::max<int64_t>(capacity, 0)),
          offsets = sim_arg(op, "offsets", offsets, batch + 1),
          unique_ids = sim_arg(op, "unique_ids", unique_ids, std::max<int64_t>(capacity, 0)),
          grad_rows = sim_arg(op, "grad_rows", grad_rows, std::max<int64_t>(capacity, 0) * dim)] {
        const int64_t* off = offsets.get();
        const int64_t nnz = off[batch];
        if (capacity >= 0)
          KILN_CHECK(nnz <= capacity, op, ": ", nnz, " ids, more than the capacity ", capacity);
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
      sim_embedding_backward(kOp, s, dout, rows, dim, ids, offsets, batch, -1, combiner, unique_ids, grad_rows,
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
                              const int64_t* offsets, int64_t batch, int64_t capacity, Combiner combiner,
                              int64_t* unique_ids, T* grad_rows, int64_t* count,
                              [[maybe_unused]] void* workspace) {
  constexpr const char* kOp = "embedding_backward_async";
  KILN_CHECK(capacity >= 0, kOp, ": capacity must be >= 0, got ", capacity);
  switch (s.device().kind) {
    case Device::Kind::cpu:
      KILN_CHECK(offsets[batch] <= capacity, kOp, ": ", offsets[batch], " ids, more than the capacity ", capacity);
      *count = cpu::embedding_backward(s, dout, rows, dim, ids, offsets, batch, combiner, unique_ids, grad_rows);
      return;
    case Device::Kind::sim:
      // The CPU code needs no workspace.
      return sim_embedding_backward(kOp, s, dout, rows, dim, ids, offsets, batch, capacity, combiner, unique_ids, grad_rows,
                                    [out = sim_arg(kOp, "count", count, 1)](int64_t c) { *out.get() = c; });
    case Device::Kind::cuda:
      if (use_vendor("embedding"))
        detail::no_cuda_kernel(kOp, s, "no asynchronous reference kernel (kernel_library VENDOR allocates and "
                                       "synchronizes in the embedding backward; train with graphs: false)");
      KILN_CUDA_F32(kOp, T, s,
                    cuda::embedding_backward_async(s, dout, rows, dim, ids, offsets, batch, capacity, combiner,
                                                   unique_ids, grad_rows, count, workspace));
  }
  detail::unknown_device(kOp, s);
}

int64_t embedding_backward_workspace_bytes(const Stream& s, [[maybe_unused]] int64_t rows,
                                           [[maybe_unused]] int64_t capacity) {
  if (!s.device().is_cuda()) return 0;
#if KILN_HAVE_CUDA
  return cuda::embedding_backward_workspace_bytes(rows, capacity);
#else
  detail::cuda_not_built("embedding_backward_workspace_bytes", s);
#endif
}

// The dispatch's forward takes the ids_checked flag the CPU code does not.
#define KILN_DISPATCH_INSTANTIATE(T)                                                                                   \
  template void embedding_forward<T>(const Stream&, const T*, int64_t, int64_t, const int64_t*, const int64_t*,        \
                                     int64_t, Combiner, T*, bool);                                                     \
  template int64_t embedding_backward<T>(const Stream&, const T*, int64_t, int64_t, const int64_t*, const int64_t*,    \
                                         int64_t, Combiner, int64_t*, T*);                                             \
  template void embedding_backward_async<T>(const Stream&, const T*, int64_t, int64_t, const int64_t*, const int64_t*, \
                                            int64_t, int64_t, Combiner, int64_t*, T*, int64_t*, void*);
KILN_DISPATCH_INSTANTIATE(float)
KILN_DISPATCH_INSTANTIATE(double)
#undef KILN_DISPATCH_INSTANTIATE

}  // namespace kiln::kernels
