#include "kernels/cpu/conv.h"

#include <algorithm>
#include <cstring>
#include <memory>
#include <vector>

#include "core/error.h"
#include "core/thread_pool.h"
#include "kernels/cpu/act_impl.h"
#include "kernels/cpu/activation.h"
#include "kernels/cpu/conv_direct_row_invariant.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/precision.h"
#include "kernels/cpu/reduce.h"
#include "kernels/cpu/reduce.h"

namespace kiln::kernels::cpu {

// Convolution as im2col + GEMM, tiled so that the columns of a tile are built, multiplied and
// consumed while still in the core's L2: each thread takes a contiguous range of output rows
// (row = one output pixel of one image, NHWC order) and walks it in tiles of about kTileBytes of
// columns. Inside the parallel region oneDNN's sgemm runs single-threaded on the tile, and the
// bias/activation epilogue touches the tile's output while it is hot. The scratch per thread is
// one tile, so memory stays bounded whatever the batch size.
//
// Layers with a shallow GEMM depth (kh*kw*c_in <= kDirectMaxDepth, e.g. a 3x3 kernel over one or
// three input channels) skip im2col in forward and weight-gradient passes: the columns would be
// as large as the output, and a K of 9 leaves sgemm memory-bound. They accumulate each output
// row's taps directly instead. Inference (row_invariant) on AVX-512 takes
// conv_direct_row_invariant for any depth (kernels/cpu/conv_direct_row_invariant.h).

namespace {

constexpr size_t kTileBytes = size_t{256} << 10;
constexpr int64_t kMinTileRows = 64;    // below this, GEMM calls get too thin to be efficient
constexpr int64_t kMinChunkRows = 256;  // rows per thread worth a parallel split
constexpr int64_t kMinChunkMacs = int64_t{1} << 18;  // multiply-adds per thread worth a split
constexpr int64_t kDirectMaxDepth = 32;
constexpr int64_t kDirectTileRows = 128;

void check_shape(const Stream& s, const Conv2dShape& c) {
  KILN_CHECK(s.device().is_cpu());
  KILN_CHECK(c.n >= 0 && c.h > 0 && c.w > 0 && c.c_in > 0 && c.c_out > 0 && c.kh > 0 && c.kw > 0 && c.stride_h > 0 &&
                 c.stride_w > 0 && c.pad_h >= 0 && c.pad_w >= 0 && c.out_h() > 0 && c.out_w() > 0,
             "bad conv shape");
}

// A 1x1, stride-1, unpadded convolution is a plain GEMM on the activations: no im2col.
bool is_pointwise(const Conv2dShape& c) {
  return c.kh == 1 && c.kw == 1 && c.stride_h == 1 && c.stride_w == 1 && c.pad_h == 0 && c.pad_w == 0;
}

// A per-thread im2col tile reused across calls, so steady-state training does not reallocate it.
template <typename T>
T* scratch(size_t elems) {
  thread_local std::unique_ptr<T[]> buf;
  thread_local size_t capacity = 0;
  if (elems > capacity) {
    buf.reset();  // free first: the old and new buffers need not coexist
    buf.reset(new T[elems]);
    capacity = elems;
  }
  return buf.get();
}

struct Geometry {
  int64_t oh, ow, pixels;  // output size, output pixels per image
  int64_t k;               // GEMM depth kh * kw * c_in; HWIO weights are the [k, c_out] matrix
  int64_t in_image;        // input elements per image
  int64_t rows;            // n * pixels
  int64_t tile_rows;
};

template <typename T>
Geometry geometry(const Conv2dShape& c) {
  Geometry g;
  g.oh = c.out_h();
  g.ow = c.out_w();
  g.pixels = g.oh * g.ow;
  g.k = c.kh * c.kw * c.c_in;
  g.in_image = c.h * c.w * c.c_in;
  g.rows = c.n * g.pixels;
  g.tile_rows = std::max<int64_t>(kMinTileRows, static_cast<int64_t>(kTileBytes / (sizeof(T) * g.k)));
  return g;
}

// Output row r as (image, oy, ox), advanced one row at a time.
struct RowCursor {
  int64_t n, oy, ox;
  RowCursor(const Geometry& g, int64_t r) : n(r / g.pixels), oy(r % g.pixels / g.ow), ox(r % g.ow) {}
  void next(const Geometry& g) {
    if (++ox == g.ow) {
      ox = 0;
      if (++oy == g.oh) {
        oy = 0;
        ++n;
      }
    }
  }
};

// Columns of output rows [r0, r1). For each kernel row ky the kx-by-c_in run is contiguous in the
// NHWC image, so it is one copy of the in-bounds part plus zero fills for the padding. Runs of a
// few elements (one or three input channels) are copied element by element instead: a library
// call per 3-float run costs more than the copy.
template <typename T>
void im2col(const Conv2dShape& c, const Geometry& g, const T* x, int64_t r0, int64_t r1, T* cols) {
  const int64_t krow = c.kw * c.c_in;
  const bool short_runs = krow < 16;
  RowCursor at(g, r0);
  for (int64_t r = r0; r < r1; ++r, at.next(g)) {
    const T* img = x + at.n * g.in_image;
    const int64_t ys = at.oy * c.stride_h - c.pad_h, xs = at.ox * c.stride_w - c.pad_w;
    const int64_t kx0 = std::max<int64_t>(0, -xs), kx1 = std::min(c.kw, c.w - xs);
    T* dst = cols + (r - r0) * g.k;
    for (int64_t ky = 0; ky < c.kh; ++ky, dst += krow) {
      const int64_t iy = ys + ky;
      const bool row_ok = iy >= 0 && iy < c.h && kx0 < kx1;
      if (short_runs) {
        for (int64_t kx = 0; kx < c.kw; ++kx) {
          T* d = dst + kx * c.c_in;
          if (row_ok && kx >= kx0 && kx < kx1) {
            const T* src = img + (iy * c.w + xs + kx) * c.c_in;
            for (int64_t ci = 0; ci < c.c_in; ++ci) d[ci] = src[ci];
          } else {
            for (int64_t ci = 0; ci < c.c_in; ++ci) d[ci] = T(0);
          }
        }
        continue;
      }
      if (!row_ok) {
        std::memset(dst, 0, static_cast<size_t>(krow) * sizeof(T));
        continue;
      }
      const int64_t lo = kx0 * c.c_in, hi = kx1 * c.c_in;
      if (lo > 0) std::memset(dst, 0, static_cast<size_t>(lo) * sizeof(T));
      std::memcpy(dst + lo, img + (iy * c.w + xs + kx0) * c.c_in, static_cast<size_t>(hi - lo) * sizeof(T));
      if (hi < krow) std::memset(dst + hi, 0, static_cast<size_t>(krow - hi) * sizeof(T));
    }
  }
}

// The adjoint of im2col: adds the columns of rows [r0, r1) back onto their (pre-zeroed) images.
template <typename T>
void col2im(const Conv2dShape& c, const Geometry& g, const T* cols, int64_t r0, int64_t r1, T* dx) {
  const int64_t krow = c.kw * c.c_in;
  RowCursor at(g, r0);
  for (int64_t r = r0; r < r1; ++r, at.next(g)) {
    T* img = dx + at.n * g.in_image;
    const int64_t ys = at.oy * c.stride_h - c.pad_h, xs = at.ox * c.stride_w - c.pad_w;
    const int64_t kx0 = std::max<int64_t>(0, -xs), kx1 = std::min(c.kw, c.w - xs);
    if (kx0 >= kx1) continue;
    const T* src = cols + (r - r0) * g.k + kx0 * c.c_in;
    const int64_t len = (kx1 - kx0) * c.c_in;
    for (int64_t ky = 0; ky < c.kh; ++ky, src += krow) {
      const int64_t iy = ys + ky;
      if (iy < 0 || iy >= c.h) continue;
      T* d = img + (iy * c.w + xs + kx0) * c.c_in;
      for (int64_t j = 0; j < len; ++j) d[j] += src[j];
    }
  }
}

// Calls fn(x_pixel, w_offset) for each in-bounds tap of output row `at`: x_pixel points at the
// c_in inputs under the tap, w_offset is where the tap's [c_in, c_out] block of the weights (and
// of their gradient) starts.
template <typename T, typename Fn>
inline void for_each_tap(const Conv2dShape& c, const Geometry& g, const RowCursor& at, const T* x, Fn fn) {
  const T* img = x + at.n * g.in_image;
  const int64_t ys = at.oy * c.stride_h - c.pad_h, xs = at.ox * c.stride_w - c.pad_w;
  const int64_t ky0 = std::max<int64_t>(0, -ys), ky1 = std::min(c.kh, c.h - ys);
  const int64_t kx0 = std::max<int64_t>(0, -xs), kx1 = std::min(c.kw, c.w - xs);
  for (int64_t ky = ky0; ky < ky1; ++ky)
    for (int64_t kx = kx0; kx < kx1; ++kx)
      fn(img + ((ys + ky) * c.w + xs + kx) * c.c_in, (ky * c.kw + kx) * c.c_in * c.c_out);
}

// 32 bytes of T: an AVX2 register, or a pair of SSE ones, through GCC/Clang vector extensions.
template <typename T>
struct Vec {
  typedef T type __attribute__((vector_size(32)));
  static constexpr int64_t lanes = 32 / sizeof(T);
  static type load(const T* p) {
    type v;
    std::memcpy(&v, p, sizeof(v));
    return v;
  }
  static void store(T* p, type v) { std::memcpy(p, &v, sizeof(v)); }
  static type broadcast(T s) {
    type v;
    for (int64_t l = 0; l < lanes; ++l) v[l] = s;
    return v;
  }
};

// y rows [r0, r1) = bias + sum over taps of x * w. Output channels go in blocks of four vectors
// held in registers across all taps; a remainder narrower than a block accumulates in memory.
// Interior pixels (every tap in bounds, the common case) walk a precomputed table of the k input
// offsets with two sets of accumulators, so the chain of dependent FMAs is half as long.
template <typename T>
void direct_forward(const Conv2dShape& c, const Geometry& g, const T* x, const T* w, const T* bias, int64_t r0,
                    int64_t r1, T* y) {
  using V = Vec<T>;
  using v_t = typename V::type;
  constexpr int64_t kBlock = 4 * V::lanes;
  const int64_t co = c.c_out, blocked = co / kBlock * kBlock, k = g.k;
  int64_t x_off[kDirectMaxDepth];  // tap t = (ky * kw + kx) * c_in + ci reads x_off[t] past the window
  for (int64_t ky = 0, t = 0; ky < c.kh; ++ky)
    for (int64_t kx = 0; kx < c.kw; ++kx)
      for (int64_t ci = 0; ci < c.c_in; ++ci, ++t) x_off[t] = (ky * c.w + kx) * c.c_in + ci;
  auto bias_at = [&](int64_t j) { return bias ? V::load(bias + j) : v_t{}; };
  RowCursor at(g, r0);
  for (int64_t r = r0; r < r1; ++r, at.next(g)) {
    T* yr = y + r * co;
    const int64_t ys = at.oy * c.stride_h - c.pad_h, xs = at.ox * c.stride_w - c.pad_w;
    const bool interior = ys >= 0 && ys + c.kh <= c.h && xs >= 0 && xs + c.kw <= c.w;
    for (int64_t b = 0; b < blocked; b += kBlock) {
      v_t a0 = bias_at(b), a1 = bias_at(b + V::lanes), a2 = bias_at(b + 2 * V::lanes), a3 = bias_at(b + 3 * V::lanes);
      if (interior) {
        const T* xw = x + at.n * g.in_image + (ys * c.w + xs) * c.c_in;
        v_t b0{}, b1{}, b2{}, b3{};
        auto tap = [&](int64_t t, v_t& s0, v_t& s1, v_t& s2, v_t& s3) {
          const v_t xv = V::broadcast(xw[x_off[t]]);
          const T* wr = w + t * co + b;
          s0 += xv * V::load(wr);
          s1 += xv * V::load(wr + V::lanes);
          s2 += xv * V::load(wr + 2 * V::lanes);
          s3 += xv * V::load(wr + 3 * V::lanes);
        };
        int64_t t = 0;
        for (; t + 1 < k; t += 2) {
          tap(t, a0, a1, a2, a3);
          tap(t + 1, b0, b1, b2, b3);
        }
        if (t < k) tap(t, a0, a1, a2, a3);
        a0 += b0;
        a1 += b1;
        a2 += b2;
        a3 += b3;
      } else {
        for_each_tap(c, g, at, x, [&](const T* xp, int64_t w_off) {
          const T* wr = w + w_off + b;
          for (int64_t ci = 0; ci < c.c_in; ++ci, wr += co) {
            const v_t xv = V::broadcast(xp[ci]);
            a0 += xv * V::load(wr);
            a1 += xv * V::load(wr + V::lanes);
            a2 += xv * V::load(wr + 2 * V::lanes);
            a3 += xv * V::load(wr + 3 * V::lanes);
          }
        });
      }
      V::store(yr + b, a0);
      V::store(yr + b + V::lanes, a1);
      V::store(yr + b + 2 * V::lanes, a2);
      V::store(yr + b + 3 * V::lanes, a3);
    }
    if (blocked == co) continue;
    for (int64_t j = blocked; j < co; ++j) yr[j] = bias ? bias[j] : T(0);
    for_each_tap(c, g, at, x, [&](const T* xp, int64_t w_off) {
      for (int64_t ci = 0; ci < c.c_in; ++ci) {
        const T xv = xp[ci];
        const T* wr = w + w_off + ci * co;
        for (int64_t j = blocked; j < co; ++j) yr[j] += xv * wr[j];
      }
    });
  }
}

// dw += sum over rows [t0, t1) of outer(x under each tap, dy row), with t1 - t0 <= kDirectTileRows.
// Loops run tap by tap over the tile's rows, so each block of four accumulator vectors stays in
// registers while the tile of dy is re-read from L1.
template <typename T>
void direct_weight_grad(const Conv2dShape& c, const Geometry& g, const T* x, const T* dy, int64_t t0, int64_t t1,
                        T* dw) {
  using V = Vec<T>;
  using v_t = typename V::type;
  constexpr int64_t kBlock = 4 * V::lanes;
  const int64_t co = c.c_out, blocked = co / kBlock * kBlock, rows = t1 - t0;
  int64_t base[kDirectTileRows], ys[kDirectTileRows], xs[kDirectTileRows];
  RowCursor at(g, t0);
  for (int64_t i = 0; i < rows; ++i, at.next(g)) {
    base[i] = at.n * g.in_image;
    ys[i] = at.oy * c.stride_h - c.pad_h;
    xs[i] = at.ox * c.stride_w - c.pad_w;
  }
  const T* dyt = dy + t0 * co;
  for (int64_t ky = 0; ky < c.kh; ++ky) {
    for (int64_t kx = 0; kx < c.kw; ++kx) {
      for (int64_t ci = 0; ci < c.c_in; ++ci) {
        T* wrow = dw + ((ky * c.kw + kx) * c.c_in + ci) * co;
        // Index of the input under this tap for row i, or -1 in the padding.
        auto x_at = [&](int64_t i) -> int64_t {
          const int64_t iy = ys[i] + ky, ix = xs[i] + kx;
          if (iy < 0 || iy >= c.h || ix < 0 || ix >= c.w) return -1;
          return base[i] + (iy * c.w + ix) * c.c_in + ci;
        };
        for (int64_t b = 0; b < blocked; b += kBlock) {
          // Even and odd rows feed separate accumulators: two independent FMA chains per vector.
          v_t a0{}, a1{}, a2{}, a3{}, b0{}, b1{}, b2{}, b3{};
          auto row = [&](int64_t i, v_t& s0, v_t& s1, v_t& s2, v_t& s3) {
            const int64_t xi = x_at(i);
            if (xi < 0) return;
            const v_t xv = V::broadcast(x[xi]);
            const T* d = dyt + i * co + b;
            s0 += xv * V::load(d);
            s1 += xv * V::load(d + V::lanes);
            s2 += xv * V::load(d + 2 * V::lanes);
            s3 += xv * V::load(d + 3 * V::lanes);
          };
          int64_t i = 0;
          for (; i + 1 < rows; i += 2) {
            row(i, a0, a1, a2, a3);
            row(i + 1, b0, b1, b2, b3);
          }
          if (i < rows) row(i, a0, a1, a2, a3);
          V::store(wrow + b, V::load(wrow + b) + (a0 + b0));
          V::store(wrow + b + V::lanes, V::load(wrow + b + V::lanes) + (a1 + b1));
          V::store(wrow + b + 2 * V::lanes, V::load(wrow + b + 2 * V::lanes) + (a2 + b2));
          V::store(wrow + b + 3 * V::lanes, V::load(wrow + b + 3 * V::lanes) + (a3 + b3));
        }
        for (int64_t i = 0; i < rows && blocked < co; ++i) {
          const int64_t xi = x_at(i);
          if (xi < 0) continue;
          const T xv = x[xi];
          const T* d = dyt + i * co;
          for (int64_t j = blocked; j < co; ++j) wrow[j] += xv * d[j];
        }
      }
    }
  }
}

// Splits [0, total) into at most one contiguous range per thread and runs
// fn(chunk, begin, end) on each; the split depends only on total, unit and the thread count.
template <typename Fn>
void for_chunks(int64_t total, int64_t min_per_chunk, Fn fn) {
  const int64_t chunks = std::clamp<int64_t>(total / std::max<int64_t>(min_per_chunk, 1), 1, cpu_threads());
  parallel_for(chunks, 1, [&](int64_t cb, int64_t ce) {
    for (int64_t ch = cb; ch < ce; ++ch) fn(ch, total * ch / chunks, total * (ch + 1) / chunks);
  });
}

int64_t chunk_count(int64_t total, int64_t min_per_chunk) {
  return std::clamp<int64_t>(total / std::max<int64_t>(min_per_chunk, 1), 1, cpu_threads());
}

}  // namespace

template <typename T>
void conv2d_forward(const Stream& s, const Conv2dShape& c, const T* x, const T* w, const T* bias, T* y, Activation act,
                    float slope, bool row_invariant) {
  check_shape(s, c);
  if (c.n == 0) return;
  if (rounds<T>(s))
    return cpu::conv2d_forward<T>(Stream::cpu(), c, rounded(s.precision(), x, c.n * c.h * c.w * c.c_in, 0),
                                  rounded(s.precision(), w, c.kh * c.kw * c.c_in * c.c_out, 1), bias, y, act, slope,
                                  row_invariant);
  const Geometry g = geometry<T>(c);
  if (is_pointwise(c)) {
    if (row_invariant)
      cpu::gemm_row_invariant<T>(s, g.rows, c.c_out, c.c_in, x, c.c_in, w, c.c_out, y, c.c_out, bias, act, slope);
    else
      cpu::gemm<T>(s, false, false, g.rows, c.c_out, c.c_in, T(1), x, c.c_in, w, c.c_out, T(0), y, c.c_out, bias, act,
                   slope);
    return;
  }
  // Row-invariant (inference) on AVX-512: taps read straight from a padded copy of the image, the
  // epilogue fused; elsewhere im2col + the row-invariant GEMM. The same bits either way.
  if constexpr (std::is_same_v<T, float>) {
    if (row_invariant && conv_direct_row_invariant_applies(c)) {
      const int64_t min_rows = std::clamp<int64_t>(kMinChunkMacs / (g.k * c.c_out), 8, kMinChunkRows);
      for_chunks(g.rows, min_rows, [&](int64_t, int64_t r0, int64_t r1) {
        conv_direct_row_invariant(c, x, w, bias, act, slope, r0, r1, y);
      });
      return;
    }
  }
  const bool direct = g.k <= kDirectMaxDepth && !row_invariant;
  // The row-invariant GEMM over a deep K is worth a thread from far fewer rows (at batch 1 the
  // second convolution of the Fashion-MNIST CNN has 121).
  const int64_t min_rows = direct || !row_invariant
                               ? kMinChunkRows
                               : std::clamp<int64_t>(kMinChunkMacs / (g.k * c.c_out), 8, kMinChunkRows);
  for_chunks(g.rows, min_rows, [&](int64_t, int64_t r0, int64_t r1) {
    if (direct) {
      // Tiles of output rows, so the activation pass finds them still in cache.
      const int64_t tile = std::max<int64_t>(kMinTileRows, static_cast<int64_t>(kTileBytes / (sizeof(T) * c.c_out)));
      for (int64_t t0 = r0; t0 < r1; t0 += tile) {
        const int64_t t1 = std::min(r1, t0 + tile);
        direct_forward(c, g, x, w, bias, t0, t1, y);
        if (act != Activation::none)
          cpu::activation_forward<T>(s, act, slope, y + t0 * c.c_out, y + t0 * c.c_out, (t1 - t0) * c.c_out);
      }
      return;
    }
    T* cols = scratch<T>(static_cast<size_t>(g.tile_rows * g.k));
    for (int64_t t0 = r0; t0 < r1; t0 += g.tile_rows) {
      const int64_t t1 = std::min(r1, t0 + g.tile_rows);
      im2col(c, g, x, t0, t1, cols);
      if (row_invariant)
        cpu::gemm_row_invariant<T>(s, t1 - t0, c.c_out, g.k, cols, g.k, w, c.c_out, y + t0 * c.c_out, c.c_out, bias,
                                   act, slope);
      else
        cpu::gemm<T>(s, false, false, t1 - t0, c.c_out, g.k, T(1), cols, g.k, w, c.c_out, T(0), y + t0 * c.c_out,
                     c.c_out, bias, act, slope);
    }
  });
}

template <typename T>
void conv2d_backward_data(const Stream& s, const Conv2dShape& c, const T* dy, const T* w, T* dx) {
  check_shape(s, c);
  if (c.n == 0) return;
  if (rounds<T>(s))
    return cpu::conv2d_backward_data<T>(Stream::cpu(), c,
                                        rounded(s.precision(), dy, c.n * c.out_h() * c.out_w() * c.c_out, 0),
                                        rounded(s.precision(), w, c.kh * c.kw * c.c_in * c.c_out, 1), dx);
  const Geometry g = geometry<T>(c);
  if (is_pointwise(c)) {
    cpu::gemm<T>(s, false, true, g.rows, c.c_in, c.c_out, T(1), dy, c.c_out, w, c.c_out, T(0), dx, c.c_in);
    return;
  }
  // Overlapping windows scatter onto shared input pixels, so each thread owns whole images.
  for_chunks(c.n, std::max<int64_t>(1, kMinChunkRows / g.pixels), [&](int64_t, int64_t n0, int64_t n1) {
    std::memset(dx + n0 * g.in_image, 0, static_cast<size_t>((n1 - n0) * g.in_image) * sizeof(T));
    T* cols = scratch<T>(static_cast<size_t>(g.tile_rows * g.k));
    for (int64_t t0 = n0 * g.pixels; t0 < n1 * g.pixels; t0 += g.tile_rows) {
      const int64_t t1 = std::min(n1 * g.pixels, t0 + g.tile_rows);
      // dcols = dy W^T for the tile, then scattered back onto the images.
      cpu::gemm<T>(s, false, true, t1 - t0, g.k, c.c_out, T(1), dy + t0 * c.c_out, c.c_out, w, c.c_out, T(0), cols,
                   g.k);
      col2im(c, g, cols, t0, t1, dx);
    }
  });
}

template <typename T>
void conv2d_backward_weight(const Stream& s, const Conv2dShape& c, const T* x, const T* dy, T* dw, T* dbias,
                            bool accumulate) {
  check_shape(s, c);
  if (rounds<T>(s) && c.n > 0) {
    // The weight gradient from rounded operands; the bias gradient from the fp32 dy, as on the GPU.
    const int64_t rows = c.n * c.out_h() * c.out_w();
    cpu::conv2d_backward_weight<T>(Stream::cpu(), c, rounded(s.precision(), x, c.n * c.h * c.w * c.c_in, 0),
                                   rounded(s.precision(), dy, rows * c.c_out, 1), dw, nullptr, accumulate);
    if (dbias) cpu::sum_rows<T>(Stream::cpu(), dy, rows, c.c_out, dbias, accumulate);
    return;
  }
  const Geometry g = geometry<T>(c);
  const int64_t wsize = g.k * c.c_out;
  if (c.n == 0) {
    if (!accumulate) {
      std::fill(dw, dw + wsize, T(0));
      if (dbias) std::fill(dbias, dbias + c.c_out, T(0));
    }
    return;
  }
  if (is_pointwise(c)) {
    if (dbias) cpu::sum_rows<T>(s, dy, g.rows, c.c_out, dbias, accumulate);
    cpu::gemm<T>(s, true, false, c.c_in, c.c_out, g.rows, T(1), x, c.c_in, dy, c.c_out, accumulate ? T(1) : T(0), dw,
                 c.c_out);
    return;
  }
  // Each chunk of rows sums its weight and bias gradients into its own partials, reading each
  // tile of dy once while it is in cache; the partials are then added in chunk order, so the
  // result is reproducible for a given thread count.
  const int64_t co = c.c_out;
  const int64_t chunks = chunk_count(g.rows, kMinChunkRows);
  const bool direct = g.k <= kDirectMaxDepth;
  const int64_t tile = direct ? kDirectTileRows : g.tile_rows;
  std::vector<T> partial(static_cast<size_t>(chunks * wsize));
  std::vector<double> bias_partial(dbias ? static_cast<size_t>(chunks * co) : 0, 0.0);
  for_chunks(g.rows, kMinChunkRows, [&](int64_t ch, int64_t r0, int64_t r1) {
    T* acc = partial.data() + ch * wsize;
    double* bacc = dbias ? bias_partial.data() + ch * co : nullptr;
    T* cols = direct ? nullptr : scratch<T>(static_cast<size_t>(g.tile_rows * g.k));
    if (direct) std::fill(acc, acc + wsize, T(0));
    for (int64_t t0 = r0; t0 < r1; t0 += tile) {
      const int64_t t1 = std::min(r1, t0 + tile);
      if (direct) {
        direct_weight_grad(c, g, x, dy, t0, t1, acc);
      } else {
        im2col(c, g, x, t0, t1, cols);
        cpu::gemm<T>(s, true, false, g.k, co, t1 - t0, T(1), cols, g.k, dy + t0 * co, co, t0 == r0 ? T(0) : T(1), acc,
                     co);
      }
      if (bacc) {
        for (int64_t r = t0; r < t1; ++r)
          for (int64_t j = 0; j < co; ++j) bacc[j] += static_cast<double>(dy[r * co + j]);
      }
    }
  });
  parallel_for(wsize, 4096, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      T sum = accumulate ? dw[i] : T(0);
      for (int64_t ch = 0; ch < chunks; ++ch) sum += partial[ch * wsize + i];
      dw[i] = sum;
    }
  });
  if (dbias) {
    for (int64_t j = 0; j < co; ++j) {
      double sum = 0.0;
      for (int64_t ch = 0; ch < chunks; ++ch) sum += bias_partial[ch * co + j];
      dbias[j] = accumulate ? static_cast<T>(dbias[j] + sum) : static_cast<T>(sum);
    }
  }
}

KILN_CONV_INSTANTIATE(float)
KILN_CONV_INSTANTIATE(double)

}  // namespace kiln::kernels::cpu
