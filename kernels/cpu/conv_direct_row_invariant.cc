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

// Taps per block for a panel of `vecs` vectors of 16 output channels.
int64_t taps_per_block(int64_t vecs) { return std::max<int64_t>(1, kWeightBlockBytes / (64 * vecs)); }

// ReLU in the tile's registers: x < 0 ? 0 : x (NaN passes), detail::with_activation's relu.
struct Relu {};

// Kernel rows of a convolution this kernel takes (a pixel's taps are at most one run per row).
constexpr int64_t kMaxRuns = 32;

// Pixels per tile for V vectors of channels: about 24 accumulators, the weights and a broadcast
// in the 32 zmm registers.
constexpr int max_pixels(int v) { return v == 4 ? 6 : v == 3 ? 8 : 12; }

// Taps [begin, end) of a pixel's chain, in the weights' (ky, kx, ci) order.
struct Run {
  int64_t begin, end;
};

// R pixels x V vectors of 16 channels over the runs of taps of a block: pixel i's tap t reads
// x[i * xstep + off[t]] and the weights w[t * co ...], its output is y + i * ystep (a row's pixels,
// or a column's). The first block with taps starts each chain from zero, later ones continue from
// the partial sums in y; the last adds the bias and applies f.
template <int R, int V, typename F>
__attribute__((target("avx512f"))) void tile(const Run* runs, int nruns, const float* x, int64_t xstep,
                                             const int64_t* off, const float* w, int64_t co, bool first,
                                             const float* bias, bool last, F f, float* y, int64_t ystep) {
  __m512 acc[R][V];
#pragma GCC unroll 12
  for (int i = 0; i < R; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < V; ++v) acc[i][v] = first ? _mm512_setzero_ps() : _mm512_loadu_ps(y + i * ystep + 16 * v);
  for (int r = 0; r < nruns; ++r) {
    const float* wt = w + runs[r].begin * co;
    for (int64_t t = runs[r].begin; t < runs[r].end; ++t, wt += co) {
      __m512 wv[V];
#pragma GCC unroll 4
      for (int v = 0; v < V; ++v) wv[v] = _mm512_loadu_ps(wt + 16 * v);
      const float* xt = x + off[t];
#pragma GCC unroll 12
      for (int i = 0; i < R; ++i) {
        const __m512 xv = _mm512_set1_ps(xt[i * xstep]);
#pragma GCC unroll 4
        for (int v = 0; v < V; ++v) acc[i][v] = _mm512_fmadd_ps(xv, wv[v], acc[i][v]);
      }
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
    for (int v = 0; v < V; ++v) _mm512_storeu_ps(y + i * ystep + 16 * v, acc[i][v]);
  if constexpr (!std::is_same_v<F, Relu>) {
    if (last)  // the activation on the tile while it is in L1 (scalar f: the epilogue's own bits)
      for (int i = 0; i < R; ++i)
        for (int j = 0; j < 16 * V; ++j) y[i * ystep + j] = f(y[i * ystep + j]);
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
void tail(int r, const Run* runs, int nruns, const float* x, int64_t xstep, const int64_t* off, const float* w,
          int64_t co, bool first, const float* bias, bool last, F f, float* y, int64_t ystep) {
  if constexpr (R > 0) {
    if (r == R) return tile<R, V>(runs, nruns, x, xstep, off, w, co, first, bias, last, f, y, ystep);
    return tail<R - 1, V>(r, runs, nruns, x, xstep, off, w, co, first, bias, last, f, y, ystep);
  }
}

// The taps of a pixel whose window keeps kernel rows [ky0, ky1) and columns [kx0, kx1) (the rest
// lies in the padding) within block [t0, t1), as runs; whether its chain starts in this block.
struct Taps {
  Run runs[kMaxRuns];
  int n = 0;
  bool first = false;
};

Taps taps_of(const Conv2dShape& c, int64_t ky0, int64_t ky1, int64_t kx0, int64_t kx1, int64_t t0, int64_t t1) {
  Taps taps;
  const int64_t row = c.kw * c.c_in, k = c.kh * row;
  const bool any = ky0 < ky1 && kx0 < kx1;
  taps.first = t0 <= (any ? ky0 * row + kx0 * c.c_in : k);
  if (!any) return taps;
  auto add = [&](int64_t b, int64_t e) {
    b = std::max(b, t0), e = std::min(e, t1);
    if (b < e) taps.runs[taps.n++] = {b, e};
  };
  if (kx0 == 0 && kx1 == c.kw) {
    add(ky0 * row, ky1 * row);  // whole kernel rows: one run
  } else {
    for (int64_t ky = ky0; ky < ky1; ++ky) add(ky * row + kx0 * c.c_in, ky * row + kx1 * c.c_in);
  }
  return taps;
}

// Output pixels [p0, p1) of one (padded) image, channels [j0, j0 + 16V), taps [t0, t1) (a block:
// the first block with taps starts each chain, the last adds bias and activation), into y from
// pixel p0 on. Taps whose kernel row or column lies in the padding are skipped (a 14x14 image with
// a 3x3 kernel: 9.3% of them; columns only for kernel rows of 16 taps or more, see below). They
// would add fma(0, w, acc) = acc: the same bits for finite weights, except a sum that underflowed
// to -0 (products below 1e-45), which would turn +0.
// Pixels whose windows lie inside the image's columns go along their row in near-equal tiles
// (12 -> 6 + 6; 14 -> 5 + 5 + 4, not 6 + 6 + 2: a thin tile is load-bound); those at the left and
// right edges, whose taps differ, go down their column, consecutive rows with the same kernel rows
// in one tile.
template <int V, typename F>
void pixels(const Conv2dShape& c, const Layout& l, const float* img, const int64_t* off, const float* w, int64_t j0,
            int64_t t0, int64_t t1, const float* bias, F f, int64_t p0, int64_t p1, float* y) {
  constexpr int kMax = max_pixels(V);
  const bool last = t1 == l.k;
  const float* wj = w + j0;
  const float* bb = bias ? bias + j0 : nullptr;
  auto ky_range = [&](int64_t oy, int64_t& ky0, int64_t& ky1) {
    const int64_t iy = oy * c.stride_h - c.pad_h;
    ky0 = std::max<int64_t>(0, -iy), ky1 = std::min<int64_t>(c.kh, c.h - iy);
  };
  auto kx_range = [&](int64_t ox, int64_t& kx0, int64_t& kx1) {
    const int64_t ix = ox * c.stride_w - c.pad_w;
    kx0 = std::max<int64_t>(0, -ix), kx1 = std::min<int64_t>(c.kw, c.w - ix);
  };
  // Tiles of near-equal size over n pixels from (oy, ox), `down` a column or along a row.
  auto tiles = [&](const Taps& taps, int64_t oy, int64_t ox, int64_t n, bool down) {
    if (taps.n == 0 && !last) return;  // nothing of this pixel's chain in this block
    const int64_t xstep = down ? c.stride_h * l.wp * c.c_in : l.step, ystep = down ? l.ow * l.co : l.co;
    const float* x = img + (oy * c.stride_h * l.wp + ox * c.stride_w) * c.c_in;
    float* yp = y + (oy * l.ow + ox - p0) * l.co + j0;
    const int64_t count = (n + kMax - 1) / kMax;
    for (int64_t i = 0, at = 0; i < count; ++i) {
      const int r = static_cast<int>(n * (i + 1) / count - n * i / count);
      tail<kMax, V>(r, taps.runs, taps.n, x + at * xstep, xstep, off, wj, l.co, taps.first, bb, last, f,
                    yp + at * ystep, ystep);
      at += r;
    }
  };
  // Columns [ox_l, ox_r) have every kernel column inside the image. A shallow kernel row (3 taps
  // over one channel: the first convolution of the CNN) skips no columns: its edge tiles would cost
  // more than the few taps they save (conv1 + pool +14%, where the second convolution gains 3%).
  const bool skip_columns = c.kw * c.c_in >= 16;
  const int64_t ox_l = skip_columns ? std::min(l.ow, (c.pad_w + c.stride_w - 1) / c.stride_w) : 0;
  const int64_t ox_r =
      skip_columns ? std::clamp<int64_t>((c.w + c.pad_w - c.kw) / c.stride_w + 1, ox_l, l.ow) : l.ow;
  for (int64_t p = p0; p < p1;) {
    const int64_t oy = p / l.ow, ox = p % l.ow, end = std::min(l.ow, ox + p1 - p);
    const int64_t b = std::max(ox, ox_l), e = std::min(end, ox_r);
    if (b < e) {
      int64_t ky0, ky1;
      ky_range(oy, ky0, ky1);
      tiles(taps_of(c, ky0, ky1, 0, c.kw, t0, t1), oy, b, e - b, false);
    }
    p += end - ox;
  }
  for (int64_t ox = 0; ox < l.ow; ++ox) {
    if ((ox >= ox_l && ox < ox_r) || p1 - 1 < ox) continue;
    int64_t kx0, kx1;
    kx_range(ox, kx0, kx1);
    // The rows whose pixel in this column lies in [p0, p1).
    const int64_t oy_lo = p0 <= ox ? 0 : (p0 - ox + l.ow - 1) / l.ow, oy_hi = (p1 - 1 - ox) / l.ow;
    for (int64_t oy = oy_lo; oy <= oy_hi;) {
      int64_t ky0, ky1, next = oy + 1, a0, a1;
      ky_range(oy, ky0, ky1);
      while (next <= oy_hi && (ky_range(next, a0, a1), a0 == ky0 && a1 == ky1)) ++next;
      tiles(taps_of(c, ky0, ky1, kx0, kx1, t0, t1), oy, ox, next - oy, true);
      oy = next;
    }
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
    const int64_t block = taps_per_block(vecs);
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
  const bool one_block = l.k <= taps_per_block(std::min<int64_t>(4, co / 16));
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
  return row_invariant_avx512_available() && c.c_out % 16 == 0 && c.kh <= kMaxRuns &&
         l.hp * l.wp * c.c_in <= kMaxPaddedFloats;
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
