// Implicit-GEMM convolutions: operands that gather im2col tiles from NHWC images for the shared
// tensor-core main loop. A gathered 16-byte chunk stays inside one filter tap when the channel
// count is a multiple of the chunk (8 bf16 / 4 fp32) and then goes through cp.async; other
// channel counts (the 1- or 3-channel first layer) take the element path.
#include "kernels/cuda/conv.h"

#include "core/cuda/launch.cuh"
#include "core/cuda/stream.h"
#include "core/error.h"
#include "kernels/cuda/gemm_kernel.cuh"
#include "kernels/cuda/reduce.h"

namespace kiln::kernels::cuda {

namespace {

template <int kElemBytes>
using ConvTileFor = GemmTile<kElemBytes, 64, 64, 32, 32, 4>;

// Geometry in 64-bit, with the output size precomputed.
struct ConvGeom {
  int64_t n, h, w, c_in, c_out, kh, kw, sh, sw, ph, pw, oh, ow;
};

ConvGeom geom(const Conv2dShape& c) {
  return {c.n, c.h, c.w, c.c_in, c.c_out, c.kh, c.kw, c.stride_h, c.stride_w, c.pad_h, c.pad_w, c.out_h(), c.out_w()};
}

// A gathered 16-byte chunk: the operands only gather when the channel count is a multiple of the
// chunk, so a chunk whose first element exists lies inside one tap and exists whole.
template <typename E>
__device__ int gather_chunk(const E* p, int vec, const E** src) {
  if (!p) return 0;
  *src = p;
  return vec;
}

// Forward A: im2col(x), k-contiguous. outer = output pixel (n, oy, ox), inner = k = (ky, kx, ci).
template <typename E>
struct Im2colOperand {
  static constexpr bool k_contiguous = true;
  const E* x;
  ConvGeom g;
  int64_t pixels, depth;  // GEMM m and k extents
  bool vec_ok;            // c_in % chunk == 0 and x 16-byte aligned

  __device__ bool vectorized() const { return vec_ok; }
  __device__ const E* base() const { return x; }
  __device__ const E* at(int64_t m, int64_t k) const {
    if (m >= pixels || k >= depth) return nullptr;
    const int64_t ox = m % g.ow, t = m / g.ow, oy = t % g.oh, n = t / g.oh;
    const int64_t ci = k % g.c_in, tap = k / g.c_in, kx = tap % g.kw, ky = tap / g.kw;
    const int64_t iy = oy * g.sh - g.ph + ky, ix = ox * g.sw - g.pw + kx;
    if (iy < 0 || iy >= g.h || ix < 0 || ix >= g.w) return nullptr;
    return x + ((n * g.h + iy) * g.w + ix) * g.c_in + ci;
  }
  __device__ int chunk(int64_t m, int64_t k, int vec, const E** src) const { return gather_chunk(at(m, k), vec, src); }
  __device__ const E* element(int64_t m, int64_t k) const { return at(m, k); }
};

// Data-grad A: k-contiguous. outer = input pixel (n, iy, ix), inner = k = (ky, kx, co):
// dy[n, oy, ox, co] where iy = oy * sh - ph + ky (zero when no such output exists).
template <typename E>
struct DyGatherOperand {
  static constexpr bool k_contiguous = true;
  const E* dy;
  ConvGeom g;
  int64_t pixels, depth;
  bool vec_ok;  // c_out % chunk == 0 and dy aligned

  __device__ bool vectorized() const { return vec_ok; }
  __device__ const E* base() const { return dy; }
  __device__ const E* at(int64_t m, int64_t k) const {
    if (m >= pixels || k >= depth) return nullptr;
    const int64_t ix = m % g.w, t = m / g.w, iy = t % g.h, n = t / g.h;
    const int64_t co = k % g.c_out, tap = k / g.c_out, kx = tap % g.kw, ky = tap / g.kw;
    const int64_t ty = iy + g.ph - ky, tx = ix + g.pw - kx;
    if (ty < 0 || tx < 0 || ty % g.sh != 0 || tx % g.sw != 0) return nullptr;
    const int64_t oy = ty / g.sh, ox = tx / g.sw;
    if (oy >= g.oh || ox >= g.ow) return nullptr;
    return dy + ((n * g.oh + oy) * g.ow + ox) * g.c_out + co;
  }
  __device__ int chunk(int64_t m, int64_t k, int vec, const E** src) const { return gather_chunk(at(m, k), vec, src); }
  __device__ const E* element(int64_t m, int64_t k) const { return at(m, k); }
};

// Data-grad B: k-contiguous (B^T stored per tap). outer = ci, inner = k = (tap, co):
// w[tap, ci, co].
template <typename E>
struct WeightTransposeOperand {
  static constexpr bool k_contiguous = true;
  const E* w;
  ConvGeom g;
  int64_t depth;
  bool vec_ok;  // c_out % chunk == 0 and w aligned

  __device__ bool vectorized() const { return vec_ok; }
  __device__ const E* base() const { return w; }
  __device__ const E* at(int64_t ci, int64_t k) const {
    if (ci >= g.c_in || k >= depth) return nullptr;
    const int64_t co = k % g.c_out, tap = k / g.c_out;
    return w + (tap * g.c_in + ci) * g.c_out + co;
  }
  __device__ int chunk(int64_t ci, int64_t k, int vec, const E** src) const { return gather_chunk(at(ci, k), vec, src); }
  __device__ const E* element(int64_t ci, int64_t k) const { return at(ci, k); }
};

// Weight-grad A: m-contiguous. outer = k = output pixel (n, oy, ox), inner = m = (ky, kx, ci).
template <typename E>
struct Im2colTransposeOperand {
  static constexpr bool k_contiguous = false;
  Im2colOperand<E> im;  // the same gather with the roles of the coordinates swapped

  __device__ bool vectorized() const { return im.vec_ok; }
  __device__ const E* base() const { return im.x; }
  __device__ int chunk(int64_t pixel, int64_t m, int vec, const E** src) const { return im.chunk(pixel, m, vec, src); }
  __device__ const E* element(int64_t pixel, int64_t m) const { return im.at(pixel, m); }
};

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

template <typename E, class OpA, class OpB>
void run_conv_gemm(const Stream& s, const char* name, const OpA& a, const OpB& b, const GemmEpilogue& ep, int64_t m,
                   int64_t n, int64_t k) {
  using Cfg = ConvTileFor<static_cast<int>(sizeof(E))>;
  if (m == 0 || n == 0) return;
  const int64_t tiles = ceil_div(m, Cfg::kBM) * ceil_div(n, Cfg::kBN);
  KILN_CHECK(tiles <= INT32_MAX, name, ": too many tiles");
  kiln::cuda::launch(name, mma_gemm_kernel<Cfg, E, OpA, OpB>, dim3(static_cast<unsigned>(tiles)), dim3(Cfg::kThreads),
                     Cfg::smem_bytes(OpA::k_contiguous, OpB::k_contiguous), kiln::cuda::raw(s), a, b, ep, m, n, k);
}

void check_shape(const Stream& s, const Conv2dShape& c) {
  KILN_CHECK(s.device().is_cuda(), "CUDA conv2d on a ", s.device().to_string(), " stream");
  KILN_CHECK(c.n >= 0 && c.h > 0 && c.w > 0 && c.c_in > 0 && c.c_out > 0 && c.kh > 0 && c.kw > 0 && c.stride_h > 0 &&
                 c.stride_w > 0 && c.pad_h >= 0 && c.pad_w >= 0 && c.out_h() > 0 && c.out_w() > 0,
             "bad conv shape");
}

GemmEpilogue plain_epilogue(float* c, int64_t ldc, float beta, const float* bias, Activation act, float slope) {
  return {c, ldc, 1.0f, beta, bias, act, slope, reinterpret_cast<uintptr_t>(c) % 8 == 0 && ldc % 2 == 0};
}

}  // namespace

template <typename E>
void conv2d_forward(const Stream& s, const Conv2dShape& shape, const E* x, const E* w, const float* bias, float* y,
                    Activation act, float slope) {
  check_shape(s, shape);
  const ConvGeom g = geom(shape);
  constexpr int kVec = 16 / static_cast<int>(sizeof(E));
  const int64_t m = g.n * g.oh * g.ow, n = g.c_out, k = g.kh * g.kw * g.c_in;
  const Im2colOperand<E> a{x, g, m, k, g.c_in % kVec == 0 && aligned16(x)};
  const StridedOperand<E, false> b{w, g.c_out, k, g.c_out, aligned16(w) && (g.c_out * sizeof(E)) % 16 == 0};
  run_conv_gemm<E>(s, "conv2d_forward(implicit gemm)", a, b, plain_epilogue(y, g.c_out, 0.0f, bias, act, slope), m, n,
                   k);
}

template <typename E>
void conv2d_backward_data(const Stream& s, const Conv2dShape& shape, const E* dy, const E* w, float* dx) {
  check_shape(s, shape);
  const ConvGeom g = geom(shape);
  constexpr int kVec = 16 / static_cast<int>(sizeof(E));
  const int64_t m = g.n * g.h * g.w, n = g.c_in, k = g.kh * g.kw * g.c_out;
  const bool vec = g.c_out % kVec == 0;
  const DyGatherOperand<E> a{dy, g, m, k, vec && aligned16(dy)};
  const WeightTransposeOperand<E> b{w, g, k, vec && aligned16(w)};
  run_conv_gemm<E>(s, "conv2d_backward_data(implicit gemm)", a, b,
                   plain_epilogue(dx, g.c_in, 0.0f, nullptr, Activation::none, 0.0f), m, n, k);
}

template <typename E>
void conv2d_backward_weight(const Stream& s, const Conv2dShape& shape, const E* x, const E* dy, float* dw,
                            const float* dy_f32, float* dbias, bool accumulate) {
  check_shape(s, shape);
  const ConvGeom g = geom(shape);
  constexpr int kVec = 16 / static_cast<int>(sizeof(E));
  const int64_t pixels = g.n * g.oh * g.ow;
  const int64_t m = g.kh * g.kw * g.c_in, n = g.c_out, k = pixels;
  const Im2colTransposeOperand<E> a{Im2colOperand<E>{x, g, pixels, m, g.c_in % kVec == 0 && aligned16(x)}};
  const StridedOperand<E, false> b{dy, g.c_out, pixels, g.c_out, aligned16(dy) && (g.c_out * sizeof(E)) % 16 == 0};
  run_conv_gemm<E>(s, "conv2d_backward_weight(implicit gemm)", a, b,
                   plain_epilogue(dw, g.c_out, accumulate ? 1.0f : 0.0f, nullptr, Activation::none, 0.0f), m, n, k);
  if (dbias) {
    KILN_CHECK(dy_f32, "conv2d_backward_weight: dbias needs dy in fp32");
    sum_rows(s, dy_f32, pixels, g.c_out, dbias, accumulate);
  }
}

#define KILN_INSTANTIATE(E)                                                                                         \
  template void conv2d_forward<E>(const Stream&, const Conv2dShape&, const E*, const E*, const float*, float*,       \
                                  Activation, float);                                                               \
  template void conv2d_backward_data<E>(const Stream&, const Conv2dShape&, const E*, const E*, float*);             \
  template void conv2d_backward_weight<E>(const Stream&, const Conv2dShape&, const E*, const E*, float*,            \
                                          const float*, float*, bool);
KILN_INSTANTIATE(float)
KILN_INSTANTIATE(__nv_bfloat16)
#undef KILN_INSTANTIATE

}  // namespace kiln::kernels::cuda
