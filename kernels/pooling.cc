// Device dispatch of kernels/pooling.h (kernels/dispatch.h).
#include "kernels/pooling.h"

#include "kernels/cpu/pooling.h"
#include "kernels/dispatch.h"
#include "kernels/kernel_library.h"
#if KILN_HAVE_CUDA
#include "kernels/cuda/pooling.h"
#include "kernels/cuda/vendor.h"
#endif

namespace kiln::kernels {

using detail::sim_arg;

namespace {

int64_t input_elems(const Pool2dShape& p) { return p.n * p.h * p.w * p.c; }
int64_t output_elems(const Pool2dShape& p) { return p.n * p.out_h() * p.out_w() * p.c; }

// VENDOR on CUDA: cuDNN's pooling (kernels/cuda/vendor.h), except the max pool's backward.
[[maybe_unused]] bool vendor_pooling() { return use_vendor("pooling"); }

}  // namespace

template <typename T>
void max_pool2d_forward(const Stream& s, const Pool2dShape& shape, const T* x, T* y, int32_t* argmax) {
  constexpr const char* kOp = "max_pool2d_forward";
  switch (s.device().kind) {
    case Device::Kind::cpu: return cpu::max_pool2d_forward(s, shape, x, y, argmax);
    case Device::Kind::sim:
      return detail::sim_launch(
          s, [=, x = sim_arg(kOp, "x", x, input_elems(shape)), y = sim_arg(kOp, "y", y, output_elems(shape)),
              argmax = sim_arg(kOp, "argmax", argmax, output_elems(shape))] {
            cpu::max_pool2d_forward(Stream::cpu(), shape, x.get(), y.get(), argmax.get());
          });
    case Device::Kind::cuda:
      KILN_CUDA_F32(kOp, T, s,
                    vendor_pooling() ? cuda::cudnn_max_pool2d_forward(s, shape, x, y, argmax)
                                     : cuda::max_pool2d_forward(s, shape, x, y, argmax));
  }
  detail::unknown_device(kOp, s);
}

template <typename T>
void max_pool2d_backward(const Stream& s, const Pool2dShape& shape, const T* dy, const int32_t* argmax, T* dx) {
  constexpr const char* kOp = "max_pool2d_backward";
  switch (s.device().kind) {
    case Device::Kind::cpu: return cpu::max_pool2d_backward(s, shape, dy, argmax, dx);
    case Device::Kind::sim:
      return detail::sim_launch(s, [=, dy = sim_arg(kOp, "dy", dy, output_elems(shape)),
                                    argmax = sim_arg(kOp, "argmax", argmax, output_elems(shape)),
                                    dx = sim_arg(kOp, "dx", dx, input_elems(shape))] {
        cpu::max_pool2d_backward(Stream::cpu(), shape, dy.get(), argmax.get(), dx.get());
      });
    case Device::Kind::cuda:
      // cuDNN's max-pool backward needs x and y, which this op does not take: Kiln's gather kernel
      // (one thread per input element) whatever the library.
      KILN_CUDA_F32(kOp, T, s, cuda::max_pool2d_backward(s, shape, dy, argmax, dx));
  }
  detail::unknown_device(kOp, s);
}

template <typename T>
void avg_pool2d_forward(const Stream& s, const Pool2dShape& shape, const T* x, T* y) {
  constexpr const char* kOp = "avg_pool2d_forward";
  switch (s.device().kind) {
    case Device::Kind::cpu: return cpu::avg_pool2d_forward(s, shape, x, y);
    case Device::Kind::sim:
      return detail::sim_launch(
          s, [=, x = sim_arg(kOp, "x", x, input_elems(shape)), y = sim_arg(kOp, "y", y, output_elems(shape))] {
            cpu::avg_pool2d_forward(Stream::cpu(), shape, x.get(), y.get());
          });
    case Device::Kind::cuda:
      KILN_CUDA_F32(kOp, T, s,
                    vendor_pooling() ? cuda::cudnn_avg_pool2d_forward(s, shape, x, y)
                                     : cuda::avg_pool2d_forward(s, shape, x, y));
  }
  detail::unknown_device(kOp, s);
}

template <typename T>
void avg_pool2d_backward(const Stream& s, const Pool2dShape& shape, const T* dy, T* dx) {
  constexpr const char* kOp = "avg_pool2d_backward";
  switch (s.device().kind) {
    case Device::Kind::cpu: return cpu::avg_pool2d_backward(s, shape, dy, dx);
    case Device::Kind::sim:
      return detail::sim_launch(
          s, [=, dy = sim_arg(kOp, "dy", dy, output_elems(shape)), dx = sim_arg(kOp, "dx", dx, input_elems(shape))] {
            cpu::avg_pool2d_backward(Stream::cpu(), shape, dy.get(), dx.get());
          });
    case Device::Kind::cuda:
      KILN_CUDA_F32(kOp, T, s,
                    vendor_pooling() ? cuda::cudnn_avg_pool2d_backward(s, shape, dy, dx)
                                     : cuda::avg_pool2d_backward(s, shape, dy, dx));
  }
  detail::unknown_device(kOp, s);
}

template <typename T>
void global_avg_pool_forward(const Stream& s, int64_t n, int64_t hw, int64_t c, const T* x, T* y) {
  constexpr const char* kOp = "global_avg_pool_forward";
  switch (s.device().kind) {
    case Device::Kind::cpu: return cpu::global_avg_pool_forward(s, n, hw, c, x, y);
    case Device::Kind::sim:
      return detail::sim_launch(s, [=, x = sim_arg(kOp, "x", x, n * hw * c), y = sim_arg(kOp, "y", y, n * c)] {
        cpu::global_avg_pool_forward(Stream::cpu(), n, hw, c, x.get(), y.get());
      });
    case Device::Kind::cuda:
      KILN_CUDA_F32(kOp, T, s,
                    vendor_pooling() ? cuda::cudnn_global_avg_pool_forward(s, n, hw, c, x, y)
                                     : cuda::global_avg_pool_forward(s, n, hw, c, x, y));
  }
  detail::unknown_device(kOp, s);
}

template <typename T>
void global_avg_pool_backward(const Stream& s, int64_t n, int64_t hw, int64_t c, const T* dy, T* dx) {
  constexpr const char* kOp = "global_avg_pool_backward";
  switch (s.device().kind) {
    case Device::Kind::cpu: return cpu::global_avg_pool_backward(s, n, hw, c, dy, dx);
    case Device::Kind::sim:
      return detail::sim_launch(s, [=, dy = sim_arg(kOp, "dy", dy, n * c), dx = sim_arg(kOp, "dx", dx, n * hw * c)] {
        cpu::global_avg_pool_backward(Stream::cpu(), n, hw, c, dy.get(), dx.get());
      });
    case Device::Kind::cuda:
      KILN_CUDA_F32(kOp, T, s,
                    vendor_pooling() ? cuda::cudnn_global_avg_pool_backward(s, n, hw, c, dy, dx)
                                     : cuda::global_avg_pool_backward(s, n, hw, c, dy, dx));
  }
  detail::unknown_device(kOp, s);
}

KILN_POOLING_INSTANTIATE(float)
KILN_POOLING_INSTANTIATE(double)

}  // namespace kiln::kernels
