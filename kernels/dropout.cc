// Device dispatch of kernels/dropout.h (kernels/dispatch.h).
#include "kernels/dropout.h"

#include "kernels/cpu/dropout.h"
#include "kernels/dispatch.h"
#if KILN_HAVE_CUDA
#include "kernels/cuda/dropout.h"
#endif

namespace kiln::kernels {

using detail::sim_arg;

template <typename T>
void dropout_forward(const Stream& s, int64_t n, float rate, uint64_t seed, uint64_t stream, const T* x, T* y,
                     uint8_t* mask, uint64_t first, const uint64_t* stream_base) {
  constexpr const char* kOp = "dropout_forward";
  switch (s.device().kind) {
    case Device::Kind::cpu:
      return cpu::dropout_forward(s, n, rate, seed, stream + (stream_base ? *stream_base : 0), x, y, mask, first);
    case Device::Kind::sim:
      return detail::sim_launch(s, [=, x = sim_arg(kOp, "x", x, n), y = sim_arg(kOp, "y", y, n),
                                    mask = sim_arg(kOp, "mask", mask, n),
                                    base = sim_arg(kOp, "stream_base", stream_base, 1)] {
        const uint64_t key = stream + (base.get() ? *base.get() : 0);
        cpu::dropout_forward(Stream::cpu(), n, rate, seed, key, x.get(), y.get(), mask.get(), first);
      });
    case Device::Kind::cuda:
      KILN_CUDA_F32(kOp, T, s, cuda::dropout_forward(s, n, rate, seed, stream, x, y, mask, first, stream_base));
  }
  detail::unknown_device(kOp, s);
}

template <typename T>
void dropout_backward(const Stream& s, int64_t n, float rate, const uint8_t* mask, const T* dy, T* dx) {
  constexpr const char* kOp = "dropout_backward";
  switch (s.device().kind) {
    case Device::Kind::cpu: return cpu::dropout_backward(s, n, rate, mask, dy, dx);
    case Device::Kind::sim:
      return detail::sim_launch(
          s, [=, mask = sim_arg(kOp, "mask", mask, n), dy = sim_arg(kOp, "dy", dy, n), dx = sim_arg(kOp, "dx", dx, n)] {
            cpu::dropout_backward(Stream::cpu(), n, rate, mask.get(), dy.get(), dx.get());
          });
    case Device::Kind::cuda: KILN_CUDA_F32(kOp, T, s, cuda::dropout_backward(s, n, rate, mask, dy, dx));
  }
  detail::unknown_device(kOp, s);
}

// The dispatch takes stream_base, the CPU code does not (kernels/cpu/dropout.h's macro is its own).
#define KILN_INSTANTIATE(T)                                                                                   \
  template void dropout_forward<T>(const Stream&, int64_t, float, uint64_t, uint64_t, const T*, T*, uint8_t*, \
                                   uint64_t, const uint64_t*);                                                \
  template void dropout_backward<T>(const Stream&, int64_t, float, const uint8_t*, const T*, T*);
KILN_INSTANTIATE(float)
KILN_INSTANTIATE(double)
#undef KILN_INSTANTIATE

}  // namespace kiln::kernels
