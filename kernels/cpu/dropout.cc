#include "kernels/cpu/dropout.h"

#include <algorithm>

#include "core/error.h"
#include "core/philox.h"
#include "core/thread_pool.h"

namespace kiln::kernels::cpu {

namespace {
constexpr int64_t kGrain = 4096;
}

template <typename T>
void dropout_forward(const Stream& s, int64_t n, float rate, uint64_t seed, uint64_t stream, const T* x, T* y,
                     uint8_t* mask, uint64_t first) {
  KILN_CHECK(s.device().is_cpu());
  KILN_CHECK(rate >= 0.0f && rate <= 1.0f, "dropout rate ", rate);
  if (rate == 0.0f) {
    parallel_for(n, kGrain, [&](int64_t b, int64_t e) {
      std::copy(x + b, x + e, y + b);
      std::fill(mask + b, mask + e, uint8_t{1});
    });
    return;
  }
  // rate = 1 drops everything (uniform < 1 always), and the scale is never used.
  const T scale = rate < 1.0f ? T(1) / (T(1) - static_cast<T>(rate)) : T(0);
  parallel_for(n, kGrain, [&](int64_t b, int64_t e) {
    // One Philox block serves four consecutive elements (element k takes word k % 4 of block k / 4).
    Philox4x32::Block block{};
    for (int64_t i = b; i < e; ++i) {
      const uint64_t k = first + static_cast<uint64_t>(i);
      if (i == b || (k & 3) == 0) block = Philox4x32::generate(seed, stream, k >> 2);
      const float u = static_cast<float>(block[k & 3] >> 8) * (1.0f / 16777216.0f);
      const bool keep = u >= rate;
      mask[i] = keep ? 1 : 0;
      y[i] = keep ? x[i] * scale : T(0);
    }
  });
}

template <typename T>
void dropout_backward(const Stream& s, int64_t n, float rate, const uint8_t* mask, const T* dy, T* dx) {
  KILN_CHECK(s.device().is_cpu());
  KILN_CHECK(rate >= 0.0f && rate <= 1.0f, "dropout rate ", rate);
  const T scale = rate < 1.0f ? T(1) / (T(1) - static_cast<T>(rate)) : T(0);
  parallel_for(n, kGrain, [&](int64_t b, int64_t e) {
    // dy * mask * scale, as PyTorch computes it; no select, so the loop vectorises.
    for (int64_t i = b; i < e; ++i) dx[i] = dy[i] * (static_cast<T>(mask[i]) * scale);
  });
}

KILN_DROPOUT_INSTANTIATE(float)
KILN_DROPOUT_INSTANTIATE(double)

}  // namespace kiln::kernels::cpu
