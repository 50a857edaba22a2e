#pragma once
// Pooling over NHWC activations. Padding cells never win a max and are excluded from averages.
#include <cstdint>

#include "core/stream.h"

namespace kiln::kernels {

struct Pool2dShape {
  int64_t n = 1, h = 1, w = 1, c = 1;
  int64_t kh = 2, kw = 2, stride_h = 2, stride_w = 2, pad_h = 0, pad_w = 0;
  int64_t out_h() const { return (h + 2 * pad_h - kh) / stride_h + 1; }
  int64_t out_w() const { return (w + 2 * pad_w - kw) / stride_w + 1; }
};

// argmax[i] records the flat input index (within the image, h*w*c space) of each output's max.
// On the CPU argmax may be null (inference): the same maxima, without the indices.
template <typename T>
void max_pool2d_forward(const Stream& s, const Pool2dShape& shape, const T* x, T* y, int32_t* argmax);
template <typename T>
void max_pool2d_backward(const Stream& s, const Pool2dShape& shape, const T* dy, const int32_t* argmax, T* dx);

template <typename T>
void avg_pool2d_forward(const Stream& s, const Pool2dShape& shape, const T* x, T* y);
template <typename T>
void avg_pool2d_backward(const Stream& s, const Pool2dShape& shape, const T* dy, T* dx);

// y[n, c] = mean over h*w of x[n, :, :, c].
template <typename T>
void global_avg_pool_forward(const Stream& s, int64_t n, int64_t hw, int64_t c, const T* x, T* y);
template <typename T>
void global_avg_pool_backward(const Stream& s, int64_t n, int64_t hw, int64_t c, const T* dy, T* dx);

}  // namespace kiln::kernels
