// Device dispatch of kernels/conv.h (kernels/dispatch.h).
#include "kernels/conv.h"

#include "kernels/cpu/conv.h"
#include "kernels/cuda_route.h"
#include "kernels/dispatch.h"
#include "kernels/kernel_library.h"
#if KILN_HAVE_CUDA
#include "kernels/cuda/precision.h"
#include "kernels/cuda/reference.h"
#include "kernels/cuda/vendor.h"
#endif

namespace kiln::kernels {

using detail::sim_arg;

namespace {

// What runs on CUDA (kernels/cuda_route.h): cuDNN at FP32 (FMA math) and under VENDOR, the
// reference kernel for the row-invariant forward in both cases, else Kiln's kernels.
[[maybe_unused]] CudaImpl conv_impl(const Stream& s, bool row_invariant) {
  return cuda_conv_impl(s.precision(), use_vendor("conv2d"), row_invariant);
}

}  // namespace

template <typename T>
void conv2d_forward(const Stream& s, const Conv2dShape& shape, const T* x, const T* w, const T* bias, T* y,
                    Activation act, float slope, bool row_invariant) {
  constexpr const char* kOp = "conv2d_forward";
  switch (s.device().kind) {
    case Device::Kind::cpu: return cpu::conv2d_forward(s, shape, x, w, bias, y, act, slope, row_invariant);
    case Device::Kind::sim:
      return detail::sim_launch(
          s, [=, x = sim_arg(kOp, "x", x, shape.input_elems()), w = sim_arg(kOp, "w", w, shape.weight_elems()),
              bias = sim_arg(kOp, "bias", bias, shape.c_out), y = sim_arg(kOp, "y", y, shape.output_elems())] {
            cpu::conv2d_forward(Stream::cpu().with_precision(s.precision()), shape, x.get(), w.get(), bias.get(),
                                y.get(), act, slope, row_invariant);
          });
    case Device::Kind::cuda:
      // Kiln's convolution is row-invariant as it stands: one tile shape for every problem, and an
      // output pixel's sum runs over the same K chunks in the same order whatever the batch. cuDNN
      // picks its algorithm by shape, so the row-invariant (inference) path never takes it.
      KILN_CUDA_F32(kOp, T, s, [&] {
        switch (conv_impl(s, row_invariant)) {
          case CudaImpl::cudnn: return cuda::cudnn_conv2d_forward(s, shape, x, w, bias, y, act, slope);
          case CudaImpl::reference:
            return cuda::reference::conv2d_forward_row_invariant(s, shape, x, w, bias, y, act, slope);
          case CudaImpl::kiln:
          case CudaImpl::cublaslt: break;
        }
        return cuda::conv2d_forward_at_precision(s, shape, x, w, bias, y, act, slope);
      }());
  }
  detail::unknown_device(kOp, s);
}

template <typename T>
void conv2d_backward_data(const Stream& s, const Conv2dShape& shape, const T* dy, const T* w, T* dx) {
  constexpr const char* kOp = "conv2d_backward_data";
  switch (s.device().kind) {
    case Device::Kind::cpu: return cpu::conv2d_backward_data(s, shape, dy, w, dx);
    case Device::Kind::sim:
      return detail::sim_launch(
          s, [=, dy = sim_arg(kOp, "dy", dy, shape.output_elems()), w = sim_arg(kOp, "w", w, shape.weight_elems()),
              dx = sim_arg(kOp, "dx", dx, shape.input_elems())] {
            cpu::conv2d_backward_data(Stream::cpu().with_precision(s.precision()), shape, dy.get(), w.get(), dx.get());
          });
    case Device::Kind::cuda:
      KILN_CUDA_F32(kOp, T, s,
                    conv_impl(s, false) == CudaImpl::cudnn
                        ? cuda::cudnn_conv2d_backward_data(s, shape, dy, w, dx)
                        : cuda::conv2d_backward_data_at_precision(s, shape, dy, w, dx));
  }
  detail::unknown_device(kOp, s);
}

template <typename T>
void conv2d_backward_weight(const Stream& s, const Conv2dShape& shape, const T* x, const T* dy, T* dw, T* dbias,
                            bool accumulate) {
  constexpr const char* kOp = "conv2d_backward_weight";
  switch (s.device().kind) {
    case Device::Kind::cpu: return cpu::conv2d_backward_weight(s, shape, x, dy, dw, dbias, accumulate);
    case Device::Kind::sim:
      return detail::sim_launch(
          s, [=, x = sim_arg(kOp, "x", x, shape.input_elems()), dy = sim_arg(kOp, "dy", dy, shape.output_elems()),
              dw = sim_arg(kOp, "dw", dw, shape.weight_elems()), dbias = sim_arg(kOp, "dbias", dbias, shape.c_out)] {
            cpu::conv2d_backward_weight(Stream::cpu().with_precision(s.precision()), shape, x.get(), dy.get(),
                                        dw.get(), dbias.get(), accumulate);
          });
    case Device::Kind::cuda:
      KILN_CUDA_F32(kOp, T, s,
                    conv_impl(s, false) == CudaImpl::cudnn
                        ? cuda::cudnn_conv2d_backward_weight(s, shape, x, dy, dw, dbias, accumulate)
                        : cuda::conv2d_backward_weight_at_precision(s, shape, x, dy, dw, dbias, accumulate));
  }
  detail::unknown_device(kOp, s);
}

KILN_CONV_INSTANTIATE(float)
KILN_CONV_INSTANTIATE(double)

}  // namespace kiln::kernels
