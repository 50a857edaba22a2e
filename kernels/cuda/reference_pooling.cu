// Reference pooling (kernels/cuda/reference.h): kernels/cpu/pooling.cc, one thread per output.
#include <climits>

#include "core/error.h"
#include "kernels/cuda/reference.h"
#include "kernels/cuda/reference_launch.cuh"

namespace kiln::kernels::cuda::reference {

namespace {

// The shape as plain numbers for the device, checked as Kiln's CUDA pooling checks it.
struct Shape {
  int64_t n, h, w, c, kh, kw, sh, sw, ph, pw, oh, ow;
};

Shape checked(const Stream& s, const Pool2dShape& p) {
  KILN_CHECK(s.device().is_cuda());
  KILN_CHECK(p.n >= 0 && p.h > 0 && p.w > 0 && p.c > 0 && p.kh > 0 && p.kw > 0 && p.stride_h > 0 && p.stride_w > 0 &&
                 p.pad_h >= 0 && p.pad_w >= 0 && p.out_h() > 0 && p.out_w() > 0,
             "bad pool shape");
  KILN_CHECK(p.h * p.w * p.c <= INT32_MAX, "image too large for int32 argmax");
  return {p.n, p.h, p.w, p.c, p.kh, p.kw, p.stride_h, p.stride_w, p.pad_h, p.pad_w, p.out_h(), p.out_w()};
}

// First input row (or column) of output o's window before clipping: o * stride - pad.
__device__ int64_t window_start(int64_t o, int64_t stride, int64_t pad) { return o * stride - pad; }

// The clipped window of output (oy, ox): rows [r0, r1), columns [c0, c1) of the image.
struct Cells {
  int64_t r0, r1, c0, c1;
  __device__ int64_t count() const { return (r1 > r0 ? r1 - r0 : 0) * (c1 > c0 ? c1 - c0 : 0); }
};
__device__ Cells cells_of(const Shape& p, int64_t oy, int64_t ox) {
  const int64_t ys = window_start(oy, p.sh, p.ph), xs = window_start(ox, p.sw, p.pw);
  return {max(ys, int64_t{0}), min(ys + p.kh, p.h), max(xs, int64_t{0}), min(xs + p.kw, p.w)};
}

// Output element o of an [n, oh, ow, c] tensor as its coordinates.
struct OutPos {
  int64_t n, oy, ox, ch;
};
__device__ OutPos out_pos(const Shape& p, int64_t o) {
  OutPos q;
  q.ch = o % p.c;
  o /= p.c;
  q.ox = o % p.ow;
  o /= p.ow;
  q.oy = o % p.oh;
  q.n = o / p.oh;
  return q;
}

// Input element i of an [n, h, w, c] tensor: its image, row, column and channel.
struct InPos {
  int64_t n, iy, ix, ch;
};
__device__ InPos in_pos(const Shape& p, int64_t i) {
  InPos q;
  q.ch = i % p.c;
  i /= p.c;
  q.ix = i % p.w;
  i /= p.w;
  q.iy = i % p.h;
  q.n = i / p.h;
  return q;
}

// Whether the window starting at `start` (length k) holds coordinate v.
__device__ bool holds(int64_t start, int64_t k, int64_t v) { return start <= v && v < start + k; }

__global__ void ref_max_pool_forward(Shape p, const float* x, float* y, int32_t* argmax) {
  KILN_GRID_STRIDE(o, p.n * p.oh * p.ow * p.c) {
    const OutPos q = out_pos(p, o);
    const Cells w = cells_of(p, q.oy, q.ox);
    const float* img = x + q.n * p.h * p.w * p.c;
    float best = w.count() > 0 ? -INFINITY : 0.0f;
    int32_t arg = -1;
    for (int64_t iy = w.r0; iy < w.r1; ++iy) {
      for (int64_t ix = w.c0; ix < w.c1; ++ix) {
        const int64_t at = (iy * p.w + ix) * p.c + q.ch;
        // As the CPU: strict > keeps the first maximum; the first cell is taken even at -inf.
        if (img[at] > best || arg < 0) {
          best = img[at];
          arg = static_cast<int32_t>(at);
        }
      }
    }
    y[o] = best;
    argmax[o] = arg;
  }
}

// dx[i]: the dy of every output of i's image whose argmax is i, in output order (the order of the
// CPU's serial scatter), from 0.
__global__ void ref_max_pool_backward(Shape p, const float* dy, const int32_t* argmax, float* dx) {
  KILN_GRID_STRIDE(i, p.n * p.h * p.w * p.c) {
    const InPos q = in_pos(p, i);
    const int32_t self = static_cast<int32_t>((q.iy * p.w + q.ix) * p.c + q.ch);
    float sum = 0.0f;
    for (int64_t oy = 0; oy < p.oh; ++oy) {
      if (!holds(window_start(oy, p.sh, p.ph), p.kh, q.iy)) continue;
      for (int64_t ox = 0; ox < p.ow; ++ox) {
        if (!holds(window_start(ox, p.sw, p.pw), p.kw, q.ix)) continue;
        const int64_t o = ((q.n * p.oh + oy) * p.ow + ox) * p.c + q.ch;
        if (argmax[o] == self) sum += dy[o];
      }
    }
    dx[i] = sum;
  }
}

__global__ void ref_avg_pool_forward(Shape p, const float* x, float* y) {
  KILN_GRID_STRIDE(o, p.n * p.oh * p.ow * p.c) {
    const OutPos q = out_pos(p, o);
    const Cells w = cells_of(p, q.oy, q.ox);
    const float* img = x + q.n * p.h * p.w * p.c;
    float sum = 0.0f;
    for (int64_t iy = w.r0; iy < w.r1; ++iy)
      for (int64_t ix = w.c0; ix < w.c1; ++ix) sum += img[(iy * p.w + ix) * p.c + q.ch];
    // Padding cells are not counted; a window wholly in the padding stays 0.
    const int64_t cells = w.count();
    y[o] = cells > 0 ? sum / static_cast<float>(cells) : sum;
  }
}

// dx[i]: dy / cells of every output whose window holds i, in output order, from 0.
__global__ void ref_avg_pool_backward(Shape p, const float* dy, float* dx) {
  KILN_GRID_STRIDE(i, p.n * p.h * p.w * p.c) {
    const InPos q = in_pos(p, i);
    float sum = 0.0f;
    for (int64_t oy = 0; oy < p.oh; ++oy) {
      if (!holds(window_start(oy, p.sh, p.ph), p.kh, q.iy)) continue;
      for (int64_t ox = 0; ox < p.ow; ++ox) {
        if (!holds(window_start(ox, p.sw, p.pw), p.kw, q.ix)) continue;
        const float cells = static_cast<float>(cells_of(p, oy, ox).count());
        sum += dy[((q.n * p.oh + oy) * p.ow + ox) * p.c + q.ch] / cells;
      }
    }
    dx[i] = sum;
  }
}

__global__ void ref_global_avg_forward(int64_t n, int64_t hw, int64_t c, const float* x, float* y) {
  KILN_GRID_STRIDE(o, n * c) {
    const int64_t image = o / c, ch = o % c;
    float sum = 0.0f;
    for (int64_t cell = 0; cell < hw; ++cell) sum += x[(image * hw + cell) * c + ch];
    y[o] = sum / static_cast<float>(hw);
  }
}

__global__ void ref_global_avg_backward(int64_t n, int64_t hw, int64_t c, const float* dy, float* dx) {
  KILN_GRID_STRIDE(i, n * hw * c) {
    const int64_t image = i / (hw * c), ch = i % c;
    dx[i] = dy[image * c + ch] / static_cast<float>(hw);
  }
}

}  // namespace

void max_pool2d_forward(const Stream& s, const Pool2dShape& shape, const float* x, float* y, int32_t* argmax) {
  const Shape p = checked(s, shape);
  launch_per_output(s, "ref_max_pool_forward", ref_max_pool_forward, p.n * p.oh * p.ow * p.c, p, x, y, argmax);
}

void max_pool2d_backward(const Stream& s, const Pool2dShape& shape, const float* dy, const int32_t* argmax,
                         float* dx) {
  const Shape p = checked(s, shape);
  launch_per_output(s, "ref_max_pool_backward", ref_max_pool_backward, p.n * p.h * p.w * p.c, p, dy, argmax, dx);
}

void avg_pool2d_forward(const Stream& s, const Pool2dShape& shape, const float* x, float* y) {
  const Shape p = checked(s, shape);
  launch_per_output(s, "ref_avg_pool_forward", ref_avg_pool_forward, p.n * p.oh * p.ow * p.c, p, x, y);
}

void avg_pool2d_backward(const Stream& s, const Pool2dShape& shape, const float* dy, float* dx) {
  const Shape p = checked(s, shape);
  launch_per_output(s, "ref_avg_pool_backward", ref_avg_pool_backward, p.n * p.h * p.w * p.c, p, dy, dx);
}

void global_avg_pool_forward(const Stream& s, int64_t n, int64_t hw, int64_t c, const float* x, float* y) {
  KILN_CHECK(s.device().is_cuda() && n >= 0 && hw > 0 && c > 0);
  launch_per_output(s, "ref_global_avg_forward", ref_global_avg_forward, n * c, n, hw, c, x, y);
}

void global_avg_pool_backward(const Stream& s, int64_t n, int64_t hw, int64_t c, const float* dy, float* dx) {
  KILN_CHECK(s.device().is_cuda() && n >= 0 && hw > 0 && c > 0);
  launch_per_output(s, "ref_global_avg_backward", ref_global_avg_backward, n * hw * c, n, hw, c, dy, dx);
}

}  // namespace kiln::kernels::cuda::reference
