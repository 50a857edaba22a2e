// Device dispatch of kernels/activation.h (kernels/dispatch.h).
#include "kernels/activation.h"

#include "kernels/cpu/activation.h"
#include "kernels/dispatch.h"
#if KILN_HAVE_CUDA
#include "kernels/cuda/activation.h"
#endif

namespace kiln::kernels {

template <typename T>
void activation_forward(const Stream& s, Activation act, float slope, const T* x, T* y, int64_t n) {
  constexpr const char* kOp = "activation_forward";
  switch (s.device().kind) {
    case Device::Kind::cpu: return cpu::activation_forward(s, act, slope, x, y, n);
    case Device::Kind::sim:
      return detail::sim_launch(s, [=, x = detail::sim_arg(kOp, "x", x, n), y = detail::sim_arg(kOp, "y", y, n)] {
        cpu::activation_forward(Stream::cpu(), act, slope, x.get(), y.get(), n);
      });
    case Device::Kind::cuda: KILN_CUDA_F32(kOp, T, s, cuda::activation_forward(s, act, slope, x, y, n));
  }
  detail::unknown_device(kOp, s);
}

template <typename T>
void activation_backward(const Stream& s, Activation act, float slope, const T* x, const T* y, const T* dy, T* dx,
                         int64_t n) {
  constexpr const char* kOp = "activation_backward";
  switch (s.device().kind) {
    case Device::Kind::cpu: return cpu::activation_backward(s, act, slope, x, y, dy, dx, n);
    case Device::Kind::sim: {
      // Each activation reads either its input or its output (kernels/activation.h).
      const bool reads_y = act == Activation::sigmoid || act == Activation::tanh;
      const bool reads_x = act != Activation::none && !reads_y;
      return detail::sim_launch(s, [=, x = detail::sim_arg(kOp, "x", reads_x ? x : nullptr, n),
                                    y = detail::sim_arg(kOp, "y", reads_y ? y : nullptr, n),
                                    dy = detail::sim_arg(kOp, "dy", dy, n), dx = detail::sim_arg(kOp, "dx", dx, n)] {
        cpu::activation_backward(Stream::cpu(), act, slope, x.get(), y.get(), dy.get(), dx.get(), n);
      });
    }
    case Device::Kind::cuda: KILN_CUDA_F32(kOp, T, s, cuda::activation_backward(s, act, slope, x, y, dy, dx, n));
  }
  detail::unknown_device(kOp, s);
}

KILN_ACTIVATION_INSTANTIATE(float)
KILN_ACTIVATION_INSTANTIATE(double)

}  // namespace kiln::kernels
