#include "kernels/cpu/conv_direct_row_invariant.h"

#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <type_traits>
#include <vector>

#include "kernels/cpu/act_impl.h"
#include "kernels/cpu/gemm.h"

namespace kiln::kernels::cpu {

namespace {

// A zero-padded copy of one image per thread, so that every output pixel reads its taps at fixed
// offsets (no edge cases, no gathering) and a row of output pixels is one run of tiles.
constexpr int64_t kMaxPaddedFloats = int64_t{1} << 22;  // 16 MiB per thread at most, else im2col
// The taps of a block have their weights (taps x 64 floats) in L1 while the block's tiles sweep the
// image; the next block continues each element's chain from the partial sum stored in y.
constexpr int64_t kWeightBlockBytes = int64_t{24} << 10;

// ReLU in the tile's registers: x < 0 ? 0 : x (NaN passes), detail::with_activation's relu.
struct Relu {};

// Pixels per tile for V vectors of channels: about 24 accumulators, the weights and a broadcast
// in the 32 zmm registers.
constexpr int max_pixels(int v) { return v == 4 ? 6 : v == 3 ? 8 : 12; }

// R pixels x V vectors of 16 channels over taps [0, taps) of a block: pixel i's tap t reads
// x[i * step + off[t]], its weights w[t * co ...]. The first block starts each chain from zero,
// later ones from the partial sums in y; the last adds the bias and applies f.
template <int R, int V, typename F>
__attribute__((target("avx512f"))) void tile(int64_t taps, const float* x, int64_t step, const int64_t* off,
                                             const float* w, int64_t co, bool first, const float* bias, bool last,
                                             F f, float* y) {
  __m512 acc[R][V];
#pragma GCC unroll 12
  for (int i = 0; i < R; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < V; ++v) acc[i][v] = first ? _mm512_setzero_ps() : _mm512_loadu_ps(y + i * co + 16 * v);
  for (int64_t t = 0; t < taps; ++t, w += co) {
    __m512 wv[V];
#pragma GCC unroll 4
    for (int v = 0; v < V; ++v) wv[v] = _mm512_loadu_ps(w + 16 * v);
    const float* xt = x + off[t];
#pragma GCC unroll 12
    for (int i = 0; i < R; ++i) {
      const __m512 xv = _mm512_set1_ps(xt[i * step]);
#pragma GCC unroll 4
      for (int v = 0; v < V; ++v) acc[i][v] = _mm512_fmadd_ps(xv, wv[v], acc[i][v]);
    }
  }
  if (last && bias) {
#pragma GCC unroll 4
    for (int v = 0; v < V; ++v) {
      const __m512 b = _mm512_loadu_ps(bias + 16 * v);
#pragma GCC unroll 12
      for (int i = 0; i < R; ++i) acc[i][v] = _mm512_add_ps(acc[i][v], b);  // the epilogue's row[j] + bias[j]
    }
  }
  if constexpr (std::is_same_v<F, Relu>) {
    if (last) {
      const __m512 zero = _mm512_setzero_ps();
#pragma GCC unroll 12
      for (int i = 0; i < R; ++i)
#pragma GCC unroll 4
        for (int v = 0; v < V; ++v)
          acc[i][v] = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(acc[i][v], zero, _CMP_LT_OQ), acc[i][v], zero);
    }
  }
#pragma GCC unroll 12
  for (int i = 0; i < R; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < V; ++v) _mm512_storeu_ps(y + i * co + 16 * v, acc[i][v]);
  if constexpr (!std::is_same_v<F, Relu>) {
    if (last)  // the activation on the tile while it is in L1 (scalar f: the epilogue's own bits)
      for (int i = 0; i < R; ++i)
        for (int j = 0; j < 16 * V; ++j) y[i * co + j] = f(y[i * co + j]);
  }
}

// The epilogue's activation: ReLU as Relu (in registers), the others as detail::with_activation's f.
template <typename Body>
void with_tile_activation(Activation act, float slope, Body body) {
  if (act == Activation::relu) return body(Relu{});
  detail::with_activation<float>(act, slope, body);
}

struct Layout {
  int64_t oh, ow, pixels, k, co;
  int64_t hp, wp;  // the padded image
  int64_t step;    // input floats between neighbouring output pixels of a row
};

Layout layout(const Conv2dShape& c) {
  Layout l;
  l.oh = c.out_h();
  l.ow = c.out_w();
  l.pixels = l.oh * l.ow;
  l.k = c.kh * c.kw * c.c_in;
  l.co = c.c_out;
  l.hp = std::max(c.h + c.pad_h, (l.oh - 1) * c.stride_h + c.kh);
  l.wp = std::max(c.w + c.pad_w, (l.ow - 1) * c.stride_w + c.kw);
  l.step = c.stride_w * c.c_in;
  return l;
}

// The image with pad_h rows and pad_w columns of zeros before it and enough after it for every tap.
const float* padded_image(const Conv2dShape& c, const Layout& l, const float* img, std::vector<float>& buf) {
  if (c.pad_h == 0 && c.pad_w == 0 && l.hp == c.h && l.wp == c.w) return img;
  buf.resize(static_cast<size_t>(l.hp * l.wp * c.c_in));
  const int64_t rows = std::min(c.h, l.hp - c.pad_h), cols = std::min(c.w, l.wp - c.pad_w);
  const int64_t width = l.wp * c.c_in, left = c.pad_w * c.c_in, inside = cols * c.c_in;
  for (int64_t py = 0; py < l.hp; ++py) {  // each element written once: zeros around the copied rows
    float* row = buf.data() + py * width;
    const int64_t iy = py - c.pad_h;
    if (iy < 0 || iy >= rows) {
      std::fill(row, row + width, 0.0f);
      continue;
    }
    std::fill(row, row + left, 0.0f);
    std::memcpy(row + left, img + iy * c.w * c.c_in, static_cast<size_t>(inside) * sizeof(float));
    std::fill(row + left + inside, row + width, 0.0f);
  }
  return buf.data();
}

template <int R, int V, typename F>
void tail(int r, int64_t taps, const float* x, int64_t step, const int64_t* off, const float* w, int64_t co,
          bool first, const float* bias, bool last, F f, float* y) {
  if constexpr (R > 0) {
    if (r == R) return tile<R, V>(taps, x, step, off, w, co, first, bias, last, f, y);
    return tail<R - 1, V>(r, taps, x, step, off, w, co, first, bias, last, f, y);
  }
}

// Output pixels [p0, p1) of one (padded) image, channels [j0, j0 + 16V), taps [t0, t1) (the
// block: the first block with taps starts each chain, the last adds bias and activation), into y
// from pixel p0 on. A row's run of pixels is cut into near-equal tiles (14 -> 5 + 5 + 4, not
// 6 + 6 + 2: a thin tile is load-bound).
template <int V, typename F>
void pixels(const Conv2dShape& c, const Layout& l, const float* img, const int64_t* off, const float* w, int64_t j0,
            int64_t t0, int64_t t1, const float* bias, F f, int64_t p0, int64_t p1, float* y) {
  constexpr int kMax = max_pixels(V);
  const bool last = t1 == l.k;
  const float* bb = bias ? bias + j0 : nullptr;
  const int64_t row_taps = c.kw * c.c_in;
  for (int64_t p = p0; p < p1;) {
    const int64_t oy = p / l.ow, ox = p % l.ow, run = std::min(l.ow - ox, p1 - p);
    // Kernel rows in the padding are skipped (a 14x14 image with a 3x3 kernel: 4.8% of the taps).
    // Their taps would add fma(0, w, acc) = acc: the same bits for finite weights, except a sum
    // that underflowed to -0 (products below 1e-45), which would turn +0.
    const int64_t iy = oy * c.stride_h - c.pad_h;
    const int64_t v0 = std::max<int64_t>(0, -iy) * row_taps, v1 = std::min<int64_t>(c.kh, c.h - iy) * row_taps;
    const int64_t a = std::max(t0, v0), b = std::max(a, std::min(t1, v1));
    const bool first = t0 <= v0;
    if (a == b && !last) {
      p += run;
      continue;
    }
    const float* row = img + (oy * c.stride_h * l.wp + ox * c.stride_w) * c.c_in;
    const int64_t tiles = (run + kMax - 1) / kMax;
    for (int64_t i = 0, at = 0; i < tiles; ++i) {
      const int r = static_cast<int>(run * (i + 1) / tiles - run * i / tiles);
      tail<kMax, V>(r, b - a, row + at * l.step, l.step, off + a, w + a * l.co + j0, l.co, first, bb, last, f,
                    y + (p - p0 + at) * l.co + j0);
      at += r;
    }
    p += run;
  }
}

// Tap offsets in the padded image, in the weights' (ky, kx, ci) order.
const int64_t* tap_offsets(const Conv2dShape& c, const Layout& l) {
  thread_local std::vector<int64_t> off;
  off.resize(static_cast<size_t>(l.k));
  for (int64_t ky = 0, t = 0; ky < c.kh; ++ky)
    for (int64_t kx = 0; kx < c.kw; ++kx)
      for (int64_t ci = 0; ci < c.c_in; ++ci, ++t) off[static_cast<size_t>(t)] = (ky * l.wp + kx) * c.c_in + ci;
  return off.data();
}

// Pixels [p0, p1) of one padded image, every channel, into y from pixel p0 on: 64-channel panels,
// each over its tap blocks.
template <typename F>
void image_pixels(const Conv2dShape& c, const Layout& l, const float* img, const int64_t* off, const float* w,
                  const float* bias, F f, int64_t p0, int64_t p1, float* y) {
  for (int64_t j0 = 0; j0 < l.co; j0 += 64) {
    const int vecs = static_cast<int>(std::min<int64_t>(64, l.co - j0) / 16);
    const int64_t block = std::max<int64_t>(1, kWeightBlockBytes / (64 * vecs));
    for (int64_t t0 = 0; t0 < l.k; t0 += block) {
      const int64_t t1 = std::min(l.k, t0 + block);
      switch (vecs) {
        case 4: pixels<4>(c, l, img, off, w, j0, t0, t1, bias, f, p0, p1, y); break;
        case 3: pixels<3>(c, l, img, off, w, j0, t0, t1, bias, f, p0, p1, y); break;
        case 2: pixels<2>(c, l, img, off, w, j0, t0, t1, bias, f, p0, p1, y); break;
        default: pixels<1>(c, l, img, off, w, j0, t0, t1, bias, f, p0, p1, y); break;
      }
    }
  }
}

template <typename F>
void rows(const Conv2dShape& c, const float* x, const float* w, const float* bias, F f, int64_t r0, int64_t r1,
          float* y) {
  const Layout l = layout(c);
  thread_local std::vector<float> buf;
  const int64_t* off = tap_offsets(c, l);
  for (int64_t r = r0; r < r1;) {
    const int64_t n = r / l.pixels, end = std::min(r1, (n + 1) * l.pixels), base = n * l.pixels;
    const float* img = padded_image(c, l, x + n * c.h * c.w * c.c_in, buf);
    image_pixels(c, l, img, off, w, bias, f, r - base, end - base, y + r * l.co);
    r = end;
  }
}

// The convolution's rows under a group of pooled rows go to a scratch that stays in L2, then each
// window's maximum goes to y. A convolution whose taps fit one block (the first of the CNN) takes
// groups that stay in L1: nothing is gained by sweeping a larger group per weight block, and the
// pool then reads what the tiles just wrote (conv1 + pool of the CNN, batch 64: -5%).
constexpr int64_t kPoolScratchBytes = int64_t{256} << 10;
constexpr int64_t kPoolScratchBytesOneBlock = int64_t{24} << 10;

// The maxima of `count` neighbouring windows of one pooled row over co channels (a multiple of
// 16), held in registers: the first cell seeds them and a later cell wins only where cell > m, as
// in max_pool2d_forward's loop. `first` is the first window's top-left cell, `row` the scratch's
// row pitch. One call per pooled row, 2x2 windows unrolled: a call per window cost more than the
// maxima.
template <int KH, int KW>
__attribute__((target("avx512f"))) void windows_max(const Pool2dShape& p, int64_t row, int64_t co, const float* first,
                                                    int64_t count, float* out) {
  const int64_t kh = KH ? KH : p.kh, kw = KW ? KW : p.kw;
  for (int64_t i = 0; i < count; ++i, first += kw * co, out += co)
    for (int64_t j = 0; j < co; j += 16) {
      __m512 m = _mm512_loadu_ps(first + j);
      for (int64_t dy = 0; dy < kh; ++dy)
        for (int64_t dx = dy == 0 ? 1 : 0; dx < kw; ++dx) {
          const __m512 cell = _mm512_loadu_ps(first + dy * row + dx * co + j);
          m = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(cell, m, _CMP_GT_OQ), m, cell);
        }
      _mm512_storeu_ps(out + j, m);
    }
}

void pool_row(const Pool2dShape& p, int64_t row, int64_t co, const float* first, int64_t count, float* out) {
  if (p.kh == 2 && p.kw == 2) return windows_max<2, 2>(p, row, co, first, count, out);
  windows_max<0, 0>(p, row, co, first, count, out);
}

// Pooled pixels [q0, q1) in NHWC order (so threads split a batch-1 image evenly): whole pooled rows
// in groups, a pooled row's part at a range's ends on its own, the convolution computing only the
// columns under it.
template <typename F>
void pooled_pixels(const Conv2dShape& c, const Pool2dShape& p, const float* x, const float* w, const float* bias, F f,
                   int64_t q0, int64_t q1, float* y) {
  const Layout l = layout(c);
  thread_local std::vector<float> buf, conv;
  const int64_t* off = tap_offsets(c, l);
  const int64_t poh = p.out_h(), pow = p.out_w(), per_image = poh * pow, co = l.co, row = l.ow * co;
  const int64_t one_block = l.k <= kWeightBlockBytes / (64 * std::min<int64_t>(4, co / 16));
  const int64_t group =
      std::max<int64_t>(1, (one_block ? kPoolScratchBytesOneBlock : kPoolScratchBytes) / (p.kh * row * 4));
  conv.resize(static_cast<size_t>(std::min(group, poh) * p.kh * row));
  int64_t padded_n = -1;
  const float* img = nullptr;
  for (int64_t q = q0; q < q1;) {
    const int64_t n = q / per_image, py = q % per_image / pow, px = q % pow;
    if (n != padded_n) {
      img = padded_image(c, l, x + n * c.h * c.w * c.c_in, buf);
      padded_n = n;
    }
    float* out = y + q * co;
    if (px > 0 || q1 - q < pow) {  // part of one pooled row: its kh convolution rows, columns under it
      const int64_t px1 = std::min(pow, px + (q1 - q));
      for (int64_t dy = 0; dy < p.kh; ++dy) {
        const int64_t p0 = (py * p.kh + dy) * l.ow + px * p.kw;
        image_pixels(c, l, img, off, w, bias, f, p0, p0 + (px1 - px) * p.kw, conv.data() + dy * row + px * p.kw * co);
      }
      pool_row(p, row, co, conv.data() + px * p.kw * co, px1 - px, out);
      q += px1 - px;
      continue;
    }
    const int64_t rows = std::min({group, (q1 - q) / pow, poh - py});
    image_pixels(c, l, img, off, w, bias, f, py * p.kh * l.ow, (py + rows) * p.kh * l.ow, conv.data());
    for (int64_t r = 0; r < rows; ++r) pool_row(p, row, co, conv.data() + r * p.kh * row, pow, out + r * pow * co);
    q += rows * pow;
  }
}

}  // namespace

bool conv_direct_row_invariant_applies(const Conv2dShape& c) {
  const Layout l = layout(c);
  return row_invariant_avx512_available() && c.c_out % 16 == 0 && l.hp * l.wp * c.c_in <= kMaxPaddedFloats;
}

void conv_direct_row_invariant(const Conv2dShape& c, const float* x, const float* w, const float* bias, Activation act,
                               float slope, int64_t r0, int64_t r1, float* y) {
  with_tile_activation(act, slope, [&](auto f) { rows(c, x, w, bias, f, r0, r1, y); });
}

bool conv_max_pool_direct_applies(const Conv2dShape& c, const Pool2dShape& p) {
  return conv_direct_row_invariant_applies(c) && p.h == c.out_h() && p.w == c.out_w() && p.c == c.c_out &&
         p.pad_h == 0 && p.pad_w == 0 && p.stride_h == p.kh && p.stride_w == p.kw && p.kh <= p.h && p.kw <= p.w;
}

void conv_max_pool_direct_row_invariant(const Conv2dShape& c, const Pool2dShape& p, const float* x, const float* w,
                                        const float* bias, Activation act, float slope, int64_t q0, int64_t q1,
                                        float* y) {
  with_tile_activation(act, slope, [&](auto f) { pooled_pixels(c, p, x, w, bias, f, q0, q1, y); });
}

}  // namespace kiln::kernels::cpu
