#include "kernels/cpu/precision.h"

#include <cmath>
#include <cstring>
#include <vector>

#include "core/dtype.h"
#include "core/thread_pool.h"

namespace kiln::kernels::cpu {

namespace {
uint32_t bits_of(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  return u;
}
float float_of(uint32_t u) {
  float x;
  std::memcpy(&x, &u, 4);
  return x;
}
}  // namespace

float round_tf32(float x) {
  if (!std::isfinite(x)) return x;
  // Add half of the dropped 13 bits to the magnitude, then drop them: ties round away from zero.
  return float_of((bits_of(x) + 0x1000u) & ~0x1FFFu);
}

float round_bf16(float x) { return bf16_to_float(float_to_bf16(x)); }

const float* rounded(MathPrecision p, const float* x, int64_t n, int slot) {
  if (p == MathPrecision::fp32 || n <= 0) return x;
  thread_local std::vector<float> scratch[3];
  std::vector<float>& out = scratch[slot];
  if (out.size() < static_cast<size_t>(n)) out.resize(static_cast<size_t>(n));
  float* y = out.data();
  const bool tf32 = p == MathPrecision::tf32;
  parallel_for(n, 1 << 14, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) y[i] = tf32 ? round_tf32(x[i]) : round_bf16(x[i]);
  });
  return y;
}

}  // namespace kiln::kernels::cpu
