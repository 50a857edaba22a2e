#include "kernels/cuda/pooling.h"

#include <climits>

#include "core/cuda/launch.cuh"
#include "core/cuda/stream.h"
#include "core/error.h"
#include "kernels/cuda/elementwise.cuh"

namespace kiln::kernels::cuda {

namespace {

struct PoolGeom {
  int64_t n, h, w, c, kh, kw, sh, sw, ph, pw, oh, ow;
};

PoolGeom geom(const Stream& s, const Pool2dShape& p) {
  KILN_CHECK(s.device().is_cuda());
  KILN_CHECK(p.n >= 0 && p.h > 0 && p.w > 0 && p.c > 0 && p.kh > 0 && p.kw > 0 && p.stride_h > 0 && p.stride_w > 0 &&
                 p.pad_h >= 0 && p.pad_w >= 0 && p.out_h() > 0 && p.out_w() > 0,
             "bad pool shape");
  KILN_CHECK(p.h * p.w * p.c <= INT32_MAX, "image too large for int32 argmax");
  return {p.n, p.h, p.w, p.c, p.kh, p.kw, p.stride_h, p.stride_w, p.pad_h, p.pad_w, p.out_h(), p.out_w()};
}

// The window of output (oy, ox) clipped to the image.
__device__ void window(const PoolGeom& g, int64_t oy, int64_t ox, int64_t& y0, int64_t& y1, int64_t& x0, int64_t& x1) {
  const int64_t ys = oy * g.sh - g.ph, xs = ox * g.sw - g.pw;
  y0 = ys > 0 ? ys : 0;
  y1 = ys + g.kh < g.h ? ys + g.kh : g.h;
  x0 = xs > 0 ? xs : 0;
  x1 = xs + g.kw < g.w ? xs + g.kw : g.w;
}

// Outputs along one axis whose window covers input i: [lo, hi].
__device__ void covering(int64_t i, int64_t k, int64_t s, int64_t p, int64_t out, int64_t& lo, int64_t& hi) {
  const int64_t t = i + p;  // o*s <= t and t < o*s + k
  lo = t - k + 1 <= 0 ? 0 : (t - k + 1 + s - 1) / s;
  hi = t / s;
  if (hi > out - 1) hi = out - 1;
}

// Input element i as (n, iy, ix, ch) and the output rows [oy0, oy1] and columns [ox0, ox1]
// whose windows cover it.
struct Covering {
  int64_t n, iy, ix, ch, oy0, oy1, ox0, ox1;
};
__device__ Covering covering_of(const PoolGeom& g, int64_t i) {
  Covering cv;
  cv.ch = i % g.c;
  const int64_t t = i / g.c, t2 = t / g.w;
  cv.ix = t % g.w, cv.iy = t2 % g.h, cv.n = t2 / g.h;
  covering(cv.iy, g.kh, g.sh, g.ph, g.oh, cv.oy0, cv.oy1);
  covering(cv.ix, g.kw, g.sw, g.pw, g.ow, cv.ox0, cv.ox1);
  return cv;
}

__global__ void max_pool_forward_kernel(PoolGeom g, const float* x, float* y, int32_t* argmax) {
  KILN_GRID_STRIDE(o, g.n * g.oh * g.ow * g.c) {
    const int64_t ch = o % g.c, t = o / g.c, ox = t % g.ow, t2 = t / g.ow, oy = t2 % g.oh, n = t2 / g.oh;
    int64_t y0, y1, x0, x1;
    window(g, oy, ox, y0, y1, x0, x1);
    const float* img = x + n * g.h * g.w * g.c;
    float best = y0 < y1 && x0 < x1 ? -INFINITY : 0.0f;
    int32_t arg = -1;
    for (int64_t iy = y0; iy < y1; ++iy)
      for (int64_t ix = x0; ix < x1; ++ix) {
        const int64_t idx = (iy * g.w + ix) * g.c + ch;
        const float v = img[idx];
        if (v > best || arg < 0) best = v, arg = static_cast<int32_t>(idx);
      }
    y[o] = best;
    argmax[o] = arg;
  }
}

__global__ void max_pool_backward_kernel(PoolGeom g, const float* dy, const int32_t* argmax, float* dx) {
  KILN_GRID_STRIDE(i, g.n * g.h * g.w * g.c) {
    const Covering cv = covering_of(g, i);
    const int32_t idx = static_cast<int32_t>((cv.iy * g.w + cv.ix) * g.c + cv.ch);
    float acc = 0.0f;
    for (int64_t oy = cv.oy0; oy <= cv.oy1; ++oy)
      for (int64_t ox = cv.ox0; ox <= cv.ox1; ++ox) {
        const int64_t o = ((cv.n * g.oh + oy) * g.ow + ox) * g.c + cv.ch;
        if (argmax[o] == idx) acc += dy[o];
      }
    dx[i] = acc;
  }
}

__global__ void avg_pool_forward_kernel(PoolGeom g, const float* x, float* y) {
  KILN_GRID_STRIDE(o, g.n * g.oh * g.ow * g.c) {
    const int64_t ch = o % g.c, t = o / g.c, ox = t % g.ow, t2 = t / g.ow, oy = t2 % g.oh, n = t2 / g.oh;
    int64_t y0, y1, x0, x1;
    window(g, oy, ox, y0, y1, x0, x1);
    const float* img = x + n * g.h * g.w * g.c;
    float acc = 0.0f;
    for (int64_t iy = y0; iy < y1; ++iy)
      for (int64_t ix = x0; ix < x1; ++ix) acc += img[(iy * g.w + ix) * g.c + ch];
    const int64_t cells = (y1 > y0 ? y1 - y0 : 0) * (x1 > x0 ? x1 - x0 : 0);
    y[o] = cells > 0 ? acc / static_cast<float>(cells) : acc;
  }
}

__global__ void avg_pool_backward_kernel(PoolGeom g, const float* dy, float* dx) {
  KILN_GRID_STRIDE(i, g.n * g.h * g.w * g.c) {
    const Covering cv = covering_of(g, i);
    float acc = 0.0f;
    for (int64_t oy = cv.oy0; oy <= cv.oy1; ++oy)
      for (int64_t ox = cv.ox0; ox <= cv.ox1; ++ox) {
        int64_t y0, y1, x0, x1;
        window(g, oy, ox, y0, y1, x0, x1);
        const int64_t cells = (y1 > y0 ? y1 - y0 : 0) * (x1 > x0 ? x1 - x0 : 0);
        if (cells > 0) acc += dy[((cv.n * g.oh + oy) * g.ow + ox) * g.c + cv.ch] / static_cast<float>(cells);
      }
    dx[i] = acc;
  }
}

__global__ void global_avg_forward_kernel(int64_t n, int64_t hw, int64_t c, const float* x, float* y) {
  KILN_GRID_STRIDE(o, n * c) {
    const int64_t b = o / c, ch = o % c;
    float acc = 0.0f;
    for (int64_t i = 0; i < hw; ++i) acc += x[(b * hw + i) * c + ch];
    y[o] = acc / static_cast<float>(hw);
  }
}

__global__ void global_avg_backward_kernel(int64_t n, int64_t hw, int64_t c, const float* dy, float* dx) {
  KILN_GRID_STRIDE(i, n * hw * c) {
    const int64_t ch = i % c, b = i / (hw * c);
    dx[i] = dy[b * c + ch] / static_cast<float>(hw);
  }
}

template <typename... KArgs, typename... Args>
void run(const Stream& s, const char* name, void (*kernel)(KArgs...), int64_t n, Args... args) {
  if (n <= 0) return;
  kiln::cuda::launch(name, kernel, dim3(elementwise_blocks(n)), dim3(kElementwiseThreads), 0, kiln::cuda::raw(s),
                     args...);
}

}  // namespace

void max_pool2d_forward(const Stream& s, const Pool2dShape& shape, const float* x, float* y, int32_t* argmax) {
  const PoolGeom g = geom(s, shape);
  run(s, "max_pool_forward_kernel", max_pool_forward_kernel, g.n * g.oh * g.ow * g.c, g, x, y, argmax);
}
void max_pool2d_backward(const Stream& s, const Pool2dShape& shape, const float* dy, const int32_t* argmax,
                         float* dx) {
  const PoolGeom g = geom(s, shape);
  run(s, "max_pool_backward_kernel", max_pool_backward_kernel, g.n * g.h * g.w * g.c, g, dy, argmax, dx);
}
void avg_pool2d_forward(const Stream& s, const Pool2dShape& shape, const float* x, float* y) {
  const PoolGeom g = geom(s, shape);
  run(s, "avg_pool_forward_kernel", avg_pool_forward_kernel, g.n * g.oh * g.ow * g.c, g, x, y);
}
void avg_pool2d_backward(const Stream& s, const Pool2dShape& shape, const float* dy, float* dx) {
  const PoolGeom g = geom(s, shape);
  run(s, "avg_pool_backward_kernel", avg_pool_backward_kernel, g.n * g.h * g.w * g.c, g, dy, dx);
}
void global_avg_pool_forward(const Stream& s, int64_t n, int64_t hw, int64_t c, const float* x, float* y) {
  KILN_CHECK(s.device().is_cuda() && n >= 0 && hw > 0 && c > 0);
  run(s, "global_avg_forward_kernel", global_avg_forward_kernel, n * c, n, hw, c, x, y);
}
void global_avg_pool_backward(const Stream& s, int64_t n, int64_t hw, int64_t c, const float* dy, float* dx) {
  KILN_CHECK(s.device().is_cuda() && n >= 0 && hw > 0 && c > 0);
  run(s, "global_avg_backward_kernel", global_avg_backward_kernel, n * hw * c, n, hw, c, dy, dx);
}

}  // namespace kiln::kernels::cuda
