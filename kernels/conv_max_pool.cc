// Device dispatch of kernels/conv_max_pool.h (kernels/dispatch.h).
#include "kernels/conv_max_pool.h"

#include "kernels/cpu/conv_max_pool.h"
#include "core/error.h"
#include "kernels/dispatch.h"

namespace kiln::kernels {

using detail::sim_arg;

template <typename T>
bool conv2d_max_pool_fuses(const Stream& s, const Conv2dShape& conv, const Pool2dShape& pool) {
  // CUDA has no fused kernel yet: its model runs the two ops.
  return !s.device().is_cuda() && cpu::conv2d_max_pool_fuses<T>(s, conv, pool);
}

template <typename T>
void conv2d_max_pool_forward(const Stream& s, const Conv2dShape& conv, const Pool2dShape& pool, const T* x, const T* w,
                             const T* bias, T* y, Activation act, float slope) {
  constexpr const char* kOp = "conv2d_max_pool_forward";
  switch (s.device().kind) {
    case Device::Kind::cpu: return cpu::conv2d_max_pool_forward(s, conv, pool, x, w, bias, y, act, slope);
    case Device::Kind::sim:
      return detail::sim_launch(
          s, [=, x = sim_arg(kOp, "x", x, conv.n * conv.h * conv.w * conv.c_in),
              w = sim_arg(kOp, "w", w, conv.kh * conv.kw * conv.c_in * conv.c_out),
              bias = sim_arg(kOp, "bias", bias, conv.c_out),
              y = sim_arg(kOp, "y", y, pool.n * pool.out_h() * pool.out_w() * pool.c)] {
            cpu::conv2d_max_pool_forward(Stream::cpu().with_precision(s.precision()), conv, pool, x.get(), w.get(),
                                         bias.get(), y.get(), act, slope);
          });
    case Device::Kind::cuda: fail(kOp, ": no CUDA kernel (conv2d_max_pool_fuses is false on CUDA)");
  }
  detail::unknown_device(kOp, s);
}

KILN_CONV_MAX_POOL_INSTANTIATE(float)
KILN_CONV_MAX_POOL_INSTANTIATE(double)

}  // namespace kiln::kernels
