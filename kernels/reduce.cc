// Device dispatch of kernels/reduce.h (kernels/dispatch.h).
#include "kernels/reduce.h"

#include "kernels/cpu/reduce.h"
#include "kernels/dispatch.h"
#include "kernels/kernel_library.h"
#if KILN_HAVE_CUDA
#include "kernels/cuda/reduce.h"
#include "kernels/cuda/reference.h"
#endif

namespace kiln::kernels {

using detail::sim_arg;

template <typename T>
void sum_rows(const Stream& s, const T* x, int64_t rows, int64_t cols, T* out, bool accumulate) {
  constexpr const char* kOp = "sum_rows";
  switch (s.device().kind) {
    case Device::Kind::cpu: return cpu::sum_rows(s, x, rows, cols, out, accumulate);
    case Device::Kind::sim:
      return detail::sim_launch(s, [=, x = sim_arg(kOp, "x", x, rows * cols), out = sim_arg(kOp, "out", out, cols)] {
        cpu::sum_rows(Stream::cpu(), x.get(), rows, cols, out.get(), accumulate);
      });
    case Device::Kind::cuda:
      KILN_CUDA_F32(kOp, T, s,
                    use_vendor("reduce") ? cuda::reference::sum_rows(s, x, rows, cols, out, accumulate)
                                         : cuda::sum_rows(s, x, rows, cols, out, accumulate));
  }
  detail::unknown_device(kOp, s);
}

template <typename T>
double sum_squares(const Stream& s, const T* x, int64_t n) {
  constexpr const char* kOp = "sum_squares";
  switch (s.device().kind) {
    case Device::Kind::cpu: return cpu::sum_squares(s, x, n);
    case Device::Kind::sim:
      return detail::sim_launch_sync(
          s, [=, x = sim_arg(kOp, "x", x, n)] { return cpu::sum_squares(Stream::cpu(), x.get(), n); });
    case Device::Kind::cuda:
      KILN_CUDA_F32(kOp, T, s,
                    cuda::sum_squares_with(
                        s, use_vendor("reduce") ? cuda::reference::sum_squares_async : cuda::sum_squares_async, x, n));
  }
  detail::unknown_device(kOp, s);
}

template <typename T>
void sum_squares_async(const Stream& s, const T* x, int64_t n, double* out) {
  constexpr const char* kOp = "sum_squares_async";
  switch (s.device().kind) {
    case Device::Kind::cpu: *out = cpu::sum_squares(s, x, n); return;
    case Device::Kind::sim:
      return detail::sim_launch(s, [=, x = sim_arg(kOp, "x", x, n), out = sim_arg(kOp, "out", out, 1)] {
        *out.get() = cpu::sum_squares(Stream::cpu(), x.get(), n);
      });
    case Device::Kind::cuda:
      KILN_CUDA_F32(kOp, T, s,
                    use_vendor("reduce") ? cuda::reference::sum_squares_async(s, x, n, out)
                                         : cuda::sum_squares_async(s, x, n, out));
  }
  detail::unknown_device(kOp, s);
}

template <typename T>
void scale_inplace(const Stream& s, T* x, int64_t n, T factor) {
  constexpr const char* kOp = "scale_inplace";
  switch (s.device().kind) {
    case Device::Kind::cpu: return cpu::scale_inplace(s, x, n, factor);
    case Device::Kind::sim:
      return detail::sim_launch(
          s, [=, x = sim_arg(kOp, "x", x, n)] { cpu::scale_inplace(Stream::cpu(), x.get(), n, factor); });
    case Device::Kind::cuda:
      KILN_CUDA_F32(kOp, T, s, cuda::scale_inplace(s, x, n, factor));
  }
  detail::unknown_device(kOp, s);
}

template <typename T>
void add_inplace(const Stream& s, T* x, const T* y, int64_t n) {
  constexpr const char* kOp = "add_inplace";
  switch (s.device().kind) {
    case Device::Kind::cpu: return cpu::add_inplace(s, x, y, n);
    case Device::Kind::sim:
      return detail::sim_launch(s, [=, x = sim_arg(kOp, "x", x, n), y = sim_arg(kOp, "y", y, n)] {
        cpu::add_inplace(Stream::cpu(), x.get(), y.get(), n);
      });
    case Device::Kind::cuda:
      KILN_CUDA_F32(kOp, T, s, cuda::add_inplace(s, x, y, n));
  }
  detail::unknown_device(kOp, s);
}

template <typename T>
int64_t count_argmax_matches(const Stream& s, const T* logits, const int32_t* labels, int64_t rows, int64_t classes) {
  constexpr const char* kOp = "count_argmax_matches";
  switch (s.device().kind) {
    case Device::Kind::cpu: return cpu::count_argmax_matches(s, logits, labels, rows, classes);
    case Device::Kind::sim:
      return detail::sim_launch_sync(s, [=, logits = sim_arg(kOp, "logits", logits, rows * classes),
                                         labels = sim_arg(kOp, "labels", labels, rows)] {
        return cpu::count_argmax_matches(Stream::cpu(), logits.get(), labels.get(), rows, classes);
      });
    case Device::Kind::cuda: KILN_CUDA_F32(kOp, T, s, cuda::count_argmax_matches(s, logits, labels, rows, classes));
  }
  detail::unknown_device(kOp, s);
}

template <typename T>
void count_argmax_matches_async(const Stream& s, const T* logits, const int32_t* labels, int64_t rows, int64_t classes,
                                int64_t* out) {
  constexpr const char* kOp = "count_argmax_matches_async";
  switch (s.device().kind) {
    case Device::Kind::cpu: *out = cpu::count_argmax_matches(s, logits, labels, rows, classes); return;
    case Device::Kind::sim:
      return detail::sim_launch(s, [=, logits = sim_arg(kOp, "logits", logits, rows * classes),
                                    labels = sim_arg(kOp, "labels", labels, rows), out = sim_arg(kOp, "out", out, 1)] {
        *out.get() = cpu::count_argmax_matches(Stream::cpu(), logits.get(), labels.get(), rows, classes);
      });
    case Device::Kind::cuda:
      detail::no_cuda_kernel(kOp, s, "no asynchronous CUDA kernel yet (count_argmax_matches synchronizes)");
  }
  detail::unknown_device(kOp, s);
}

KILN_REDUCE_INSTANTIATE(float)
KILN_REDUCE_INSTANTIATE(double)
#define KILN_INSTANTIATE_ASYNC(T)                                                \
  template void sum_squares_async<T>(const Stream&, const T*, int64_t, double*); \
  template void count_argmax_matches_async<T>(const Stream&, const T*, const int32_t*, int64_t, int64_t, int64_t*);
KILN_INSTANTIATE_ASYNC(float)
KILN_INSTANTIATE_ASYNC(double)
#undef KILN_INSTANTIATE_ASYNC

}  // namespace kiln::kernels
