#pragma once
// 2-D convolution, NHWC activations, HWIO weights [kh, kw, c_in, c_out], zero padding.
#include <cstdint>

#include "core/stream.h"
#include "kernels/activation.h"

namespace kiln::kernels {

struct Conv2dShape {
  int64_t n = 1, h = 1, w = 1, c_in = 1, c_out = 1;
  int64_t kh = 1, kw = 1, stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0;
  int64_t out_h() const { return (h + 2 * pad_h - kh) / stride_h + 1; }
  int64_t out_w() const { return (w + 2 * pad_w - kw) / stride_w + 1; }
  int64_t input_elems() const { return n * h * w * c_in; }
  int64_t weight_elems() const { return kh * kw * c_in * c_out; }
  int64_t output_elems() const { return n * out_h() * out_w() * c_out; }
};

// y = act(conv(x, w) + bias). bias may be null.
template <typename T>
// row_invariant: each output pixel's result is independent of the batch (inference; see
// gemm_row_invariant).
void conv2d_forward(const Stream& s, const Conv2dShape& shape, const T* x, const T* w, const T* bias, T* y,
                    Activation act = Activation::none, float slope = 0.01f, bool row_invariant = false);

// dx = conv-transpose(dy, w); overwrites dx.
template <typename T>
void conv2d_backward_data(const Stream& s, const Conv2dShape& shape, const T* dy, const T* w, T* dx);

// dw (+)= correlation of x and dy; dbias (+)= sum of dy over n, h, w (dbias may be null).
template <typename T>
void conv2d_backward_weight(const Stream& s, const Conv2dShape& shape, const T* x, const T* dy, T* dw, T* dbias,
                            bool accumulate);

}  // namespace kiln::kernels
