#include "kernels/cpu/conv_direct_row_invariant.h"

#include <immintrin.h>

#include <algorithm>

#include "kernels/cpu/gemm.h"

namespace kiln::kernels::cpu {

namespace {

constexpr int64_t kMaxDepth = 32;
constexpr int kPixels = 6;  // output pixels per tile: with 4 vectors of channels, 24 accumulators

// R pixels x V vectors of 16 channels; pixel i's tap t reads x[i * step + off[t]].
template <int R, int V>
__attribute__((target("avx512f"))) void tile(int64_t k, const float* x, int64_t step, const int64_t* off,
                                             const float* w, int64_t co, float* y) {
  __m512 acc[R][V];
#pragma GCC unroll 8
  for (int i = 0; i < R; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < V; ++v) acc[i][v] = _mm512_setzero_ps();
  for (int64_t t = 0; t < k; ++t, w += co) {
    __m512 wv[V];
#pragma GCC unroll 4
    for (int v = 0; v < V; ++v) wv[v] = _mm512_loadu_ps(w + 16 * v);
#pragma GCC unroll 8
    for (int i = 0; i < R; ++i) {
      const __m512 xv = _mm512_set1_ps(x[i * step + off[t]]);
#pragma GCC unroll 4
      for (int v = 0; v < V; ++v) acc[i][v] = _mm512_fmadd_ps(xv, wv[v], acc[i][v]);
    }
  }
#pragma GCC unroll 8
  for (int i = 0; i < R; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < V; ++v) _mm512_storeu_ps(y + i * co + 16 * v, acc[i][v]);
}

template <int V>
void rows(const Conv2dShape& c, const float* x, const float* w, int64_t r0, int64_t r1, float* y) {
  const int64_t oh = c.out_h(), ow = c.out_w(), pixels = oh * ow, co = c.c_out;
  const int64_t k = c.kh * c.kw * c.c_in, step = c.stride_w * c.c_in;
  int64_t window[kMaxDepth], dense[kMaxDepth];  // tap offsets in the image window, in a packed row
  for (int64_t ky = 0, t = 0; ky < c.kh; ++ky)
    for (int64_t kx = 0; kx < c.kw; ++kx)
      for (int64_t ci = 0; ci < c.c_in; ++ci, ++t) {
        window[t] = (ky * c.w + kx) * c.c_in + ci;
        dense[t] = t;
      }
  float packed[kMaxDepth];
  for (int64_t r = r0; r < r1;) {
    const int64_t n = r / pixels, oy = r % pixels / ow, ox = r % ow;
    const float* img = x + n * c.h * c.w * c.c_in;
    const int64_t ys = oy * c.stride_h - c.pad_h, xs = ox * c.stride_w - c.pad_w;
    const bool rows_in = ys >= 0 && ys + c.kh <= c.h;
    // Pixels from ox on, in this output row and inside [r0, r1), whose windows lie in the image.
    int64_t run = 0;
    if (rows_in && xs >= 0 && xs + c.kw <= c.w)
      run = std::min({ow - ox, r1 - r, (c.w - c.kw - xs) / c.stride_w + 1});
    if (run >= kPixels) {
      tile<kPixels, V>(k, img + (ys * c.w + xs) * c.c_in, step, window, w, co, y + r * co);
      r += kPixels;
    } else if (run >= 1) {
      tile<1, V>(k, img + (ys * c.w + xs) * c.c_in, step, window, w, co, y + r * co);
      ++r;
    } else {
      // An edge pixel: its taps gathered with zeros for the padding, as im2col would.
      for (int64_t ky = 0, t = 0; ky < c.kh; ++ky)
        for (int64_t kx = 0; kx < c.kw; ++kx)
          for (int64_t ci = 0; ci < c.c_in; ++ci, ++t) {
            const int64_t iy = ys + ky, ix = xs + kx;
            packed[t] = iy >= 0 && iy < c.h && ix >= 0 && ix < c.w ? img[(iy * c.w + ix) * c.c_in + ci] : 0.0f;
          }
      tile<1, V>(k, packed, 0, dense, w, co, y + r * co);
      ++r;
    }
  }
}

}  // namespace

bool conv_direct_row_invariant_applies(const Conv2dShape& c) {
  return row_invariant_avx512_available() && c.kh * c.kw * c.c_in <= kMaxDepth && c.c_out % 16 == 0 &&
         c.c_out <= 64;
}

void conv_direct_row_invariant(const Conv2dShape& c, const float* x, const float* w, int64_t r0, int64_t r1, float* y) {
  switch (c.c_out / 16) {
    case 1: return rows<1>(c, x, w, r0, r1, y);
    case 2: return rows<2>(c, x, w, r0, r1, y);
    case 3: return rows<3>(c, x, w, r0, r1, y);
    default: return rows<4>(c, x, w, r0, r1, y);
  }
}

}  // namespace kiln::kernels::cpu
