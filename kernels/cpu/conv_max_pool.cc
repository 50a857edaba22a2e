#include "kernels/cpu/conv_max_pool.h"

#include <algorithm>
#include <type_traits>

#include "core/error.h"
#include "core/thread_pool.h"
#include "kernels/cpu/conv_direct_row_invariant.h"

namespace kiln::kernels::cpu {

template <typename T>
bool conv2d_max_pool_fuses(const Stream& s, const Conv2dShape& conv, const Pool2dShape& pool) {
  return std::is_same_v<T, float> && s.precision() == MathPrecision::fp32 &&
         conv_max_pool_direct_applies(conv, pool);
}

template <typename T>
void conv2d_max_pool_forward(const Stream& s, const Conv2dShape& conv, const Pool2dShape& pool, const T* x, const T* w,
                             const T* bias, T* y, Activation act, float slope) {
  KILN_CHECK(cpu::conv2d_max_pool_fuses<T>(s, conv, pool) && pool.n == conv.n,
             "conv2d_max_pool_forward: this convolution and pool do not fuse here (check conv2d_max_pool_fuses)");
  if constexpr (std::is_same_v<T, float>) {
    if (conv.n == 0) return;
    // Pooled pixels split evenly across the threads, as the convolution splits its rows: at batch 1
    // the second convolution of the Fashion-MNIST CNN (7 x 7 pooled pixels) still uses both.
    const int64_t pixels = conv.n * pool.out_h() * pool.out_w();
    const int64_t macs = pixels * pool.kh * pool.kw * conv.kh * conv.kw * conv.c_in * conv.c_out;
    const int64_t chunks = std::clamp<int64_t>(macs / (int64_t{1} << 18), 1, std::min<int64_t>(pixels, cpu_threads()));
    parallel_for(chunks, 1, [&](int64_t cb, int64_t ce) {
      for (int64_t ch = cb; ch < ce; ++ch)
        conv_max_pool_direct_row_invariant(conv, pool, x, w, bias, act, slope, pixels * ch / chunks,
                                           pixels * (ch + 1) / chunks, y);
    });
  }
}

KILN_CONV_MAX_POOL_INSTANTIATE(float)
KILN_CONV_MAX_POOL_INSTANTIATE(double)

}  // namespace kiln::kernels::cpu
