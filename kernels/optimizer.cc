// Device dispatch of kernels/optimizer.h (kernels/dispatch.h).
#include "kernels/optimizer.h"

#include <algorithm>

#include "kernels/cpu/optimizer.h"
#include "kernels/dispatch.h"
#include "kernels/kernel_library.h"
#if KILN_HAVE_CUDA
#include "kernels/cuda/optimizer.h"
#include "kernels/cuda/reference.h"
#endif

namespace kiln::kernels {

using detail::sim_arg;

template <typename T>
void sgd_update(const Stream& s, int64_t n, T* params, const T* grads, T* velocity, const SgdHyper& h) {
  constexpr const char* kOp = "sgd_update";
  switch (s.device().kind) {
    case Device::Kind::cpu: return cpu::sgd_update(s, n, params, grads, velocity, h);
    case Device::Kind::sim:
      return detail::sim_launch(s,
                                [=, params = sim_arg(kOp, "params", params, n), grads = sim_arg(kOp, "grads", grads, n),
                                 velocity = sim_arg(kOp, "velocity", velocity, n)] {
                                  cpu::sgd_update(Stream::cpu(), n, params.get(), grads.get(), velocity.get(), h);
                                });
    case Device::Kind::cuda:
      KILN_CUDA_F32(kOp, T, s, cuda::sgd_update(s, n, params, grads, velocity, h));
  }
  detail::unknown_device(kOp, s);
}

template <typename T>
void adam_update(const Stream& s, int64_t n, T* params, const T* grads, T* m, T* v, const AdamHyper& h) {
  constexpr const char* kOp = "adam_update";
  switch (s.device().kind) {
    case Device::Kind::cpu: return cpu::adam_update(s, n, params, grads, m, v, h);
    case Device::Kind::sim:
      return detail::sim_launch(s,
                                [=, params = sim_arg(kOp, "params", params, n), grads = sim_arg(kOp, "grads", grads, n),
                                 m = sim_arg(kOp, "m", m, n), v = sim_arg(kOp, "v", v, n)] {
                                  cpu::adam_update(Stream::cpu(), n, params.get(), grads.get(), m.get(), v.get(), h);
                                });
    case Device::Kind::cuda:
      KILN_CUDA_F32(kOp, T, s,
                    use_vendor("optimizer") ? cuda::reference::adam_update(s, n, params, grads, m, v, h)
                                            : cuda::adam_update(s, n, params, grads, m, v, h));
  }
  detail::unknown_device(kOp, s);
}

namespace {

// Rows of the table a sparse update touches: up to the largest id (the table's row count is not an
// argument). Runs on the stream, on the untagged ids.
int64_t touched_rows(const int64_t* ids, int64_t count) {
  int64_t rows = 0;
  for (int64_t i = 0; i < count; ++i) rows = std::max(rows, ids[i] + 1);
  return rows;
}

}  // namespace

// The rows a sparse update covers: `count`, or *device_count (checked against the capacity
// `count`) when the count was left on the device. Runs on the stream, on the untagged pointer.
int64_t sparse_rows(const char* op, int64_t count, const int64_t* device_count) {
  if (!device_count) return count;
  const int64_t n = *device_count;
  KILN_CHECK(n >= 0 && n <= count, op, ": the device count ", n, " is outside the capacity ", count);
  return n;
}

template <typename T>
void sparse_adagrad_update(const Stream& s, int64_t dim, T* table, T* accum, const int64_t* ids, int64_t count,
                           const T* grad_rows, float lr, float eps, const int64_t* device_count) {
  constexpr const char* kOp = "sparse_adagrad_update";
  switch (s.device().kind) {
    case Device::Kind::cpu:
      return cpu::sparse_adagrad_update(s, dim, table, accum, ids, sparse_rows(kOp, count, device_count), grad_rows,
                                        lr, eps);
    case Device::Kind::sim:
      return detail::sim_launch(
          s, [=, table = sim_arg(kOp, "table", table, 0), accum = sim_arg(kOp, "accum", accum, 0),
              ids = sim_arg(kOp, "ids", ids, count), grad_rows = sim_arg(kOp, "grad_rows", grad_rows, count * dim),
              device_count = sim_arg(kOp, "device_count", device_count, 1)] {
            const int64_t* id = ids.get();
            const int64_t n = sparse_rows(kOp, count, device_count.get());
            const int64_t extent = touched_rows(id, n) * dim;
            cpu::sparse_adagrad_update(Stream::cpu(), dim, table.get(extent), accum.get(extent), id, n,
                                       grad_rows.get(), lr, eps);
          });
    case Device::Kind::cuda:
      KILN_CUDA_F32(kOp, T, s,
                    cuda::sparse_adagrad_update(s, dim, table, accum, ids, count, grad_rows, lr, eps, device_count));
  }
  detail::unknown_device(kOp, s);
}

template <typename T>
void sparse_adam_update(const Stream& s, int64_t dim, T* table, T* m, T* v, const int64_t* ids, int64_t count,
                        const T* grad_rows, const AdamHyper& h, const int64_t* device_count) {
  constexpr const char* kOp = "sparse_adam_update";
  switch (s.device().kind) {
    case Device::Kind::cpu:
      return cpu::sparse_adam_update(s, dim, table, m, v, ids, sparse_rows(kOp, count, device_count), grad_rows, h);
    case Device::Kind::sim:
      return detail::sim_launch(
          s, [=, table = sim_arg(kOp, "table", table, 0), m = sim_arg(kOp, "m", m, 0), v = sim_arg(kOp, "v", v, 0),
              ids = sim_arg(kOp, "ids", ids, count), grad_rows = sim_arg(kOp, "grad_rows", grad_rows, count * dim),
              device_count = sim_arg(kOp, "device_count", device_count, 1)] {
            const int64_t* id = ids.get();
            const int64_t n = sparse_rows(kOp, count, device_count.get());
            const int64_t extent = touched_rows(id, n) * dim;
            cpu::sparse_adam_update(Stream::cpu(), dim, table.get(extent), m.get(extent), v.get(extent), id, n,
                                    grad_rows.get(), h);
          });
    case Device::Kind::cuda:
      KILN_CUDA_F32(kOp, T, s, cuda::sparse_adam_update(s, dim, table, m, v, ids, count, grad_rows, h, device_count));
  }
  detail::unknown_device(kOp, s);
}

// The dispatch's sparse updates take the optional device count the CPU code does not.
#define KILN_DISPATCH_INSTANTIATE(T)                                                                               \
  template void sgd_update<T>(const Stream&, int64_t, T*, const T*, T*, const SgdHyper&);                          \
  template void adam_update<T>(const Stream&, int64_t, T*, const T*, T*, T*, const AdamHyper&);                    \
  template void sparse_adagrad_update<T>(const Stream&, int64_t, T*, T*, const int64_t*, int64_t, const T*, float, \
                                         float, const int64_t*);                                                   \
  template void sparse_adam_update<T>(const Stream&, int64_t, T*, T*, T*, const int64_t*, int64_t, const T*,       \
                                      const AdamHyper&, const int64_t*);
KILN_DISPATCH_INSTANTIATE(float)
KILN_DISPATCH_INSTANTIATE(double)
#undef KILN_DISPATCH_INSTANTIATE

}  // namespace kiln::kernels
