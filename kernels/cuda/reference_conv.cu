// The reference row-invariant convolution forward (kernels/cuda/reference.h): one thread per
// output element (NHWC), its taps added in (kh, kw, c_in) order, then bias and activation. An
// output pixel's result does not depend on the batch size, as kernels::conv2d_forward's
// row_invariant promises.
#include "core/error.h"
#include "kernels/cuda/act.cuh"
#include "kernels/cuda/reference.h"
#include "kernels/cuda/reference_launch.cuh"
#include "kernels/cuda/reference_rounding.cuh"

namespace kiln::kernels::cuda::reference {

namespace {

// x [n, h, w, c_in], w HWIO [kh, kw, c_in, c_out], y [n, oh, ow, c_out].
__global__ void ref_conv2d_forward(Conv2dShape c, int64_t oh, int64_t ow, const float* x, const float* w,
                                   const float* bias, float* y, Activation act, float slope, MathPrecision p) {
  KILN_GRID_STRIDE(idx, c.n * oh * ow * c.c_out) {
    const int64_t co = idx % c.c_out;
    const int64_t ox = (idx / c.c_out) % ow;
    const int64_t oy = (idx / (c.c_out * ow)) % oh;
    const int64_t img = idx / (c.c_out * ow * oh);
    float acc = 0.0f;
    for (int64_t ky = 0; ky < c.kh; ++ky) {
      const int64_t iy = oy * c.stride_h - c.pad_h + ky;
      if (iy < 0 || iy >= c.h) continue;
      for (int64_t kx = 0; kx < c.kw; ++kx) {
        const int64_t ix = ox * c.stride_w - c.pad_w + kx;
        if (ix < 0 || ix >= c.w) continue;
        const float* xp = x + ((img * c.h + iy) * c.w + ix) * c.c_in;
        const float* wp = w + (ky * c.kw + kx) * c.c_in * c.c_out + co;
        for (int64_t ci = 0; ci < c.c_in; ++ci) acc += round_operand(xp[ci], p) * round_operand(wp[ci * c.c_out], p);
      }
    }
    if (bias) acc += bias[co];
    y[idx] = activate(act, slope, acc);
  }
}

}  // namespace

void conv2d_forward_row_invariant(const Stream& s, const Conv2dShape& shape, const float* x, const float* w,
                                  const float* bias, float* y, Activation act, float slope) {
  KILN_CHECK(s.device().is_cuda());
  const int64_t oh = shape.out_h(), ow = shape.out_w();
  launch_per_output(s, "ref_conv2d_forward", ref_conv2d_forward, shape.n * oh * ow * shape.c_out, shape, oh, ow, x, w,
                    bias, y, act, slope, s.precision());
}

}  // namespace kiln::kernels::cuda::reference
