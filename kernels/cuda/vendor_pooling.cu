// Pooling through cuDNN (kernels/cuda/vendor.h), NHWC as Kiln's. Averages exclude the padding
// cells (CUDNN_POOLING_AVERAGE_COUNT_EXCLUDE_PADDING), as kernels/pooling.h says; the global
// average is an average pool whose window is the whole image, seen as [n, hw, 1, c].
#include "kernels/cuda/vendor.h"

#include "core/error.h"

#if KILN_HAVE_CUDNN
#include <cmath>
#include <climits>

#include "core/cuda/launch.cuh"
#include "core/cuda/memory.h"
#include "kernels/cuda/cudnn_handle.cuh"
#include "kernels/cuda/elementwise.cuh"
#endif

namespace kiln::kernels::cuda {

#if KILN_HAVE_CUDNN

namespace {

// A pooling descriptor, destroyed with this.
class CudnnPooling {
 public:
  CudnnPooling(const char* op, cudnnPoolingMode_t mode, int64_t kh, int64_t kw, int64_t pad_h, int64_t pad_w,
               int64_t stride_h, int64_t stride_w) {
    KILN_CUDNN_CHECK(cudnnCreatePoolingDescriptor(&d_));
    KILN_CUDNN_CHECK(cudnnSetPooling2dDescriptor(d_, mode, CUDNN_PROPAGATE_NAN, cudnn_int(op, "kh", kh),
                                                 cudnn_int(op, "kw", kw), cudnn_int(op, "pad_h", pad_h),
                                                 cudnn_int(op, "pad_w", pad_w), cudnn_int(op, "stride_h", stride_h),
                                                 cudnn_int(op, "stride_w", stride_w)));
  }
  ~CudnnPooling() { cudnnDestroyPoolingDescriptor(d_); }
  CudnnPooling(const CudnnPooling&) = delete;
  CudnnPooling& operator=(const CudnnPooling&) = delete;
  cudnnPoolingDescriptor_t get() const { return d_; }

 private:
  cudnnPoolingDescriptor_t d_ = nullptr;
};

void check_shape(const char* op, const Pool2dShape& p) {
  KILN_CHECK(p.n >= 0 && p.h > 0 && p.w > 0 && p.c > 0 && p.kh > 0 && p.kw > 0 && p.stride_h > 0 && p.stride_w > 0 &&
                 p.pad_h >= 0 && p.pad_w >= 0 && p.out_h() > 0 && p.out_w() > 0,
             op, ": bad pool shape");
  KILN_CHECK(p.h * p.w * p.c <= INT32_MAX, op, ": image too large for int32 argmax");
}

// y = pool(x) with cuDNN, x [n, h, w, c], y [n, oh, ow, c].
void pool_forward(const Stream& s, const char* op, const CudnnPooling& pool, int64_t n, int64_t h, int64_t w,
                  int64_t c, int64_t oh, int64_t ow, const float* x, float* y) {
  if (n == 0) return;
  CudnnCall call(s);
  const CudnnTensor xd(op, n, c, h, w), yd(op, n, c, oh, ow);
  const float one = 1.0f, zero = 0.0f;
  KILN_CUDNN_CHECK(cudnnPoolingForward(call.handle(), pool.get(), &one, xd.get(), x, &zero, yd.get(), y));
}

// dx = the average pool's gradient. cuDNN's backward takes y and x as well, which an average pool
// does not read: dy stands in for y (same shape), a scratch buffer for x.
void avg_pool_backward(const Stream& s, const char* op, const CudnnPooling& pool, int64_t n, int64_t h, int64_t w,
                       int64_t c, int64_t oh, int64_t ow, const float* dy, float* dx) {
  if (n == 0) return;
  CudnnCall call(s);
  const CudnnTensor xd(op, n, c, h, w), yd(op, n, c, oh, ow);
  kiln::cuda::DeviceArray<float> unused_x(static_cast<size_t>(n * h * w * c), kiln::cuda::raw(s));
  const float one = 1.0f, zero = 0.0f;
  KILN_CUDNN_CHECK(cudnnPoolingBackward(call.handle(), pool.get(), &one, yd.get(), dy, yd.get(), dy, xd.get(),
                                        unused_x.get(), &zero, xd.get(), dx));
}

// argmax[o]: the first cell of output o's window, in the CPU's scan order, that holds cuDNN's
// maximum y[o] (the CPU's first-maximum rule); the window's first cell when none does (NaN).
__global__ void argmax_of_max_kernel(Pool2dShape p, int64_t oh, int64_t ow, const float* x, const float* y,
                                     int32_t* argmax) {
  KILN_GRID_STRIDE(o, p.n * oh * ow * p.c) {
    const int64_t ch = o % p.c, t = o / p.c, ox = t % ow, t2 = t / ow, oy = t2 % oh, img = t2 / oh;
    const int64_t ys = oy * p.stride_h - p.pad_h, xs = ox * p.stride_w - p.pad_w;
    const int64_t y0 = ys > 0 ? ys : 0, y1 = ys + p.kh < p.h ? ys + p.kh : p.h;
    const int64_t x0 = xs > 0 ? xs : 0, x1 = xs + p.kw < p.w ? xs + p.kw : p.w;
    const float* xi = x + img * p.h * p.w * p.c;
    int32_t arg = -1, first = -1;
    for (int64_t iy = y0; iy < y1 && arg < 0; ++iy)
      for (int64_t ix = x0; ix < x1 && arg < 0; ++ix) {
        const int64_t idx = (iy * p.w + ix) * p.c + ch;
        if (first < 0) first = static_cast<int32_t>(idx);
        const float v = xi[idx];
        if (v == y[o] || (isnan(v) && isnan(y[o]))) arg = static_cast<int32_t>(idx);
      }
    argmax[o] = arg >= 0 ? arg : first;
  }
}

}  // namespace

void cudnn_max_pool2d_forward(const Stream& s, const Pool2dShape& p, const float* x, float* y, int32_t* argmax) {
  constexpr const char* kOp = "max_pool2d_forward";
  check_shape(kOp, p);
  const CudnnPooling pool(kOp, CUDNN_POOLING_MAX_DETERMINISTIC, p.kh, p.kw, p.pad_h, p.pad_w, p.stride_h, p.stride_w);
  pool_forward(s, kOp, pool, p.n, p.h, p.w, p.c, p.out_h(), p.out_w(), x, y);
  const int64_t outputs = p.n * p.out_h() * p.out_w() * p.c;
  if (argmax && outputs > 0)
    kiln::cuda::launch("argmax_of_max_kernel", argmax_of_max_kernel, dim3(elementwise_blocks(outputs)),
                       dim3(kElementwiseThreads), 0, kiln::cuda::raw(s), p, p.out_h(), p.out_w(), x,
                       static_cast<const float*>(y), argmax);
}

void cudnn_avg_pool2d_forward(const Stream& s, const Pool2dShape& p, const float* x, float* y) {
  constexpr const char* kOp = "avg_pool2d_forward";
  check_shape(kOp, p);
  const CudnnPooling pool(kOp, CUDNN_POOLING_AVERAGE_COUNT_EXCLUDE_PADDING, p.kh, p.kw, p.pad_h, p.pad_w, p.stride_h,
                          p.stride_w);
  pool_forward(s, kOp, pool, p.n, p.h, p.w, p.c, p.out_h(), p.out_w(), x, y);
}

void cudnn_avg_pool2d_backward(const Stream& s, const Pool2dShape& p, const float* dy, float* dx) {
  constexpr const char* kOp = "avg_pool2d_backward";
  check_shape(kOp, p);
  const CudnnPooling pool(kOp, CUDNN_POOLING_AVERAGE_COUNT_EXCLUDE_PADDING, p.kh, p.kw, p.pad_h, p.pad_w, p.stride_h,
                          p.stride_w);
  avg_pool_backward(s, kOp, pool, p.n, p.h, p.w, p.c, p.out_h(), p.out_w(), dy, dx);
}

void cudnn_global_avg_pool_forward(const Stream& s, int64_t n, int64_t hw, int64_t c, const float* x, float* y) {
  constexpr const char* kOp = "global_avg_pool_forward";
  KILN_CHECK(n >= 0 && hw > 0 && c > 0, kOp, ": bad shape");
  const CudnnPooling pool(kOp, CUDNN_POOLING_AVERAGE_COUNT_EXCLUDE_PADDING, hw, 1, 0, 0, 1, 1);
  pool_forward(s, kOp, pool, n, hw, 1, c, 1, 1, x, y);
}

void cudnn_global_avg_pool_backward(const Stream& s, int64_t n, int64_t hw, int64_t c, const float* dy, float* dx) {
  constexpr const char* kOp = "global_avg_pool_backward";
  KILN_CHECK(n >= 0 && hw > 0 && c > 0, kOp, ": bad shape");
  const CudnnPooling pool(kOp, CUDNN_POOLING_AVERAGE_COUNT_EXCLUDE_PADDING, hw, 1, 0, 0, 1, 1);
  avg_pool_backward(s, kOp, pool, n, hw, 1, c, 1, 1, dy, dx);
}

#else

namespace {

[[noreturn]] void no_cudnn(const char* op) {
  fail(op, ": kernel_library VENDOR needs cuDNN, and this build of kiln has none (cudnn.h and libcudnn were not "
           "found when it was configured); set kernel_library KILN for pooling");
}

}  // namespace

void cudnn_max_pool2d_forward(const Stream&, const Pool2dShape&, const float*, float*, int32_t*) {
  no_cudnn("max_pool2d_forward");
}
void cudnn_avg_pool2d_forward(const Stream&, const Pool2dShape&, const float*, float*) {
  no_cudnn("avg_pool2d_forward");
}
void cudnn_avg_pool2d_backward(const Stream&, const Pool2dShape&, const float*, float*) {
  no_cudnn("avg_pool2d_backward");
}
void cudnn_global_avg_pool_forward(const Stream&, int64_t, int64_t, int64_t, const float*, float*) {
  no_cudnn("global_avg_pool_forward");
}
void cudnn_global_avg_pool_backward(const Stream&, int64_t, int64_t, int64_t, const float*, float*) {
  no_cudnn("global_avg_pool_backward");
}

#endif

}  // namespace kiln::kernels::cuda
