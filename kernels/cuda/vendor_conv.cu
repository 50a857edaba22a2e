// Convolution through cuDNN (kernels/cuda/vendor.h). Activations are NHWC for cuDNN as for Kiln;
// Kiln's HWIO weights [kh, kw, c_in, c_out] are the [kh*kw*c_in, c_out] matrix, and cuDNN's
// NHWC filter layout is KRSC [c_out, kh, kw, c_in], its transpose: the weights are transposed
// into a scratch buffer on the way in, and the weight gradient on the way out. Algorithms come
// from cuDNN's heuristics, taking the first deterministic one, so repeated runs agree. The math
// follows the stream's precision: TF32 cuDNN's default (tensor cores, TF32 for fp32 data); FP32
// CUDNN_FMA_MATH, fp32 products and sums, and only algorithms that run in it; BF16 the default
// math on copies of the two multiplied operands rounded to bf16 and kept in fp32: their products
// are exact in TF32 and in fp32, so this is BF16's arithmetic (bf16 inputs, fp32 accumulation and
// output) with cuDNN's fp32 kernels, and the bias gradient reads the fp32 dy, as Kiln's does.
#include "kernels/cuda/vendor.h"

#include "core/error.h"

#if KILN_HAVE_CUDNN
#include <cuda_bf16.h>

#include "core/cuda/check.h"
#include "core/cuda/launch.cuh"
#include "core/cuda/memory.h"
#include "kernels/cuda/cudnn_handle.cuh"
#include "kernels/cuda/elementwise.cuh"
#include "kernels/cuda/gemm.h"
#endif

namespace kiln::kernels::cuda {

#if KILN_HAVE_CUDNN

bool have_cudnn() { return true; }

namespace {

// out[i] = in[i] rounded to bf16 (nearest even), as an fp32.
__global__ void round_bf16_kernel(const float* in, float* out, int64_t n) {
  KILN_GRID_STRIDE(i, n) out[i] = __bfloat162float(__float2bfloat16(in[i]));
}

// At BF16, `n` elements of p rounded to bf16 (as fp32) in a scratch buffer; else an empty array.
kiln::cuda::DeviceArray<float> bf16_rounded(const Stream& s, const float* p, int64_t n) {
  if (s.precision() != MathPrecision::bf16 || n <= 0) return {};
  kiln::cuda::DeviceArray<float> copy(static_cast<size_t>(n), kiln::cuda::raw(s));
  kiln::cuda::launch("round_bf16_kernel", round_bf16_kernel, dim3(elementwise_blocks(n)), dim3(kElementwiseThreads), 0,
                     kiln::cuda::raw(s), p, copy.get(), n);
  return copy;
}

// The operand cuDNN multiplies: the rounded copy when there is one, else p.
const float* operand(const kiln::cuda::DeviceArray<float>& rounded, const float* p) {
  return rounded.get() ? rounded.get() : p;
}

// out[j, i] = in[i, j] for in [rows, cols]: HWIO -> KRSC.
__global__ void transpose_kernel(const float* in, float* out, int64_t rows, int64_t cols) {
  KILN_GRID_STRIDE(idx, rows * cols) {
    const int64_t i = idx / cols, j = idx % cols;
    out[j * rows + i] = in[idx];
  }
}

// dw[i, j] = (accumulate ? dw[i, j] : 0) + g[j, i]: the KRSC gradient back to HWIO.
__global__ void transpose_accumulate_kernel(const float* g, float* dw, int64_t rows, int64_t cols, bool accumulate) {
  KILN_GRID_STRIDE(idx, rows * cols) {
    const int64_t i = idx / cols, j = idx % cols;
    const float v = g[j * rows + i];
    dw[idx] = accumulate ? dw[idx] + v : v;
  }
}

// The descriptors of one problem, and the HWIO weight matrix's shape.
struct ConvDescs {
  CudnnTensor x, y;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;
  int64_t k, c_out;  // HWIO as [k, c_out], k = kh * kw * c_in
  cudnnMathType_t math;

  ConvDescs(const char* op, const Conv2dShape& c, cudnnMathType_t math_type)
      : x(op, c.n, c.c_in, c.h, c.w), y(op, c.n, c.c_out, c.out_h(), c.out_w()), k(c.kh * c.kw * c.c_in),
        c_out(c.c_out), math(math_type) {
    cudnn_int(op, "input elements", c.n * c.h * c.w * c.c_in);
    cudnn_int(op, "output elements", c.n * c.out_h() * c.out_w() * c.c_out);
    KILN_CUDNN_CHECK(cudnnCreateFilterDescriptor(&w));
    KILN_CUDNN_CHECK(cudnnSetFilter4dDescriptor(w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NHWC, cudnn_int(op, "c_out", c.c_out),
                                                cudnn_int(op, "c_in", c.c_in), cudnn_int(op, "kh", c.kh),
                                                cudnn_int(op, "kw", c.kw)));
    KILN_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&conv));
    KILN_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(
        conv, cudnn_int(op, "pad_h", c.pad_h), cudnn_int(op, "pad_w", c.pad_w), cudnn_int(op, "stride_h", c.stride_h),
        cudnn_int(op, "stride_w", c.stride_w), 1, 1, CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
    KILN_CUDNN_CHECK(cudnnSetConvolutionMathType(conv, math_type));
  }
  ~ConvDescs() {
    cudnnDestroyConvolutionDescriptor(conv);
    cudnnDestroyFilterDescriptor(w);
  }
  ConvDescs(const ConvDescs&) = delete;
  ConvDescs& operator=(const ConvDescs&) = delete;
};

// TF32: cuDNN's default math, tensor cores where it picks them (TF32 for fp32 data), as Kiln's
// kernels use them. FP32: FMA only, no conversion of the inputs.
cudnnMathType_t math_for(const Stream& s) {
  return s.precision() == MathPrecision::fp32 ? CUDNN_FMA_MATH : CUDNN_DEFAULT_MATH;
}

// The first deterministic algorithm cuDNN's heuristics return that it can run (in FMA math, when
// that was asked for: the heuristics may still offer tensor-op algorithms).
template <typename Perf>
auto pick(const char* op, const Perf* perf, int found, cudnnMathType_t math) -> decltype(perf->algo) {
  for (int i = 0; i < found; ++i)
    if (perf[i].status == CUDNN_STATUS_SUCCESS && perf[i].determinism == CUDNN_DETERMINISTIC &&
        (math != CUDNN_FMA_MATH || perf[i].mathType == CUDNN_FMA_MATH))
      return perf[i].algo;
  if (math == CUDNN_FMA_MATH)
    fail(op, " at precision FP32: cuDNN offers no deterministic FMA-math algorithm for this shape; use precision TF32");
  fail(op, " with kernel_library VENDOR: cuDNN offers no deterministic algorithm for this shape; set kernel_library "
           "KILN for conv2d");
}

constexpr int kMaxAlgos = 16;

// The weights as KRSC, in a scratch buffer on the stream.
kiln::cuda::DeviceArray<float> krsc_weights(cudaStream_t stream, const ConvDescs& d, const float* w) {
  kiln::cuda::DeviceArray<float> wt(static_cast<size_t>(d.k * d.c_out), stream);
  kiln::cuda::launch("transpose_kernel", transpose_kernel, dim3(elementwise_blocks(d.k * d.c_out)),
                     dim3(kElementwiseThreads), 0, stream, w, wt.get(), d.k, d.c_out);
  return wt;
}

}  // namespace

void cudnn_conv2d_forward(const Stream& s, const Conv2dShape& c, const float* x, const float* w, const float* bias,
                          float* y, Activation act, float slope) {
  constexpr const char* kOp = "conv2d_forward";
  if (c.n == 0) return;
  const cudaStream_t stream = kiln::cuda::raw(s);
  const auto x_bf16 = bf16_rounded(s, x, c.input_elems()), w_bf16 = bf16_rounded(s, w, c.weight_elems());
  x = operand(x_bf16, x);
  w = operand(w_bf16, w);
  CudnnCall call(s);
  const ConvDescs d(kOp, c, math_for(s));
  const auto wt = krsc_weights(stream, d, w);
  cudnnConvolutionFwdAlgoPerf_t perf[kMaxAlgos];
  int found = 0;
  KILN_CUDNN_CHECK(
      cudnnGetConvolutionForwardAlgorithm_v7(call.handle(), d.x.get(), d.w, d.conv, d.y.get(), kMaxAlgos, &found, perf));
  const cudnnConvolutionFwdAlgo_t algo = pick(kOp, perf, found, d.math);
  size_t ws_bytes = 0;
  KILN_CUDNN_CHECK(
      cudnnGetConvolutionForwardWorkspaceSize(call.handle(), d.x.get(), d.w, d.conv, d.y.get(), algo, &ws_bytes));
  kiln::cuda::DeviceArray<unsigned char> ws(ws_bytes, stream);
  const float one = 1.0f, zero = 0.0f;
  KILN_CUDNN_CHECK(cudnnConvolutionForward(call.handle(), &one, d.x.get(), x, d.w, wt.get(), d.conv, algo, ws.get(),
                                           ws_bytes, &zero, d.y.get(), y));
  bias_activation(s, c.n * c.out_h() * c.out_w(), c.c_out, y, c.c_out, bias, act, slope);
}

void cudnn_conv2d_backward_data(const Stream& s, const Conv2dShape& c, const float* dy, const float* w, float* dx) {
  constexpr const char* kOp = "conv2d_backward_data";
  if (c.n == 0) return;
  const cudaStream_t stream = kiln::cuda::raw(s);
  const auto dy_bf16 = bf16_rounded(s, dy, c.output_elems()), w_bf16 = bf16_rounded(s, w, c.weight_elems());
  dy = operand(dy_bf16, dy);
  w = operand(w_bf16, w);
  CudnnCall call(s);
  const ConvDescs d(kOp, c, math_for(s));
  const auto wt = krsc_weights(stream, d, w);
  cudnnConvolutionBwdDataAlgoPerf_t perf[kMaxAlgos];
  int found = 0;
  KILN_CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithm_v7(call.handle(), d.w, d.y.get(), d.conv, d.x.get(),
                                                               kMaxAlgos, &found, perf));
  const cudnnConvolutionBwdDataAlgo_t algo = pick(kOp, perf, found, d.math);
  size_t ws_bytes = 0;
  KILN_CUDNN_CHECK(cudnnGetConvolutionBackwardDataWorkspaceSize(call.handle(), d.w, d.y.get(), d.conv, d.x.get(), algo,
                                                                &ws_bytes));
  kiln::cuda::DeviceArray<unsigned char> ws(ws_bytes, stream);
  const float one = 1.0f, zero = 0.0f;
  KILN_CUDNN_CHECK(cudnnConvolutionBackwardData(call.handle(), &one, d.w, wt.get(), d.y.get(), dy, d.conv, algo,
                                                ws.get(), ws_bytes, &zero, d.x.get(), dx));
}

void cudnn_conv2d_backward_weight(const Stream& s, const Conv2dShape& c, const float* x, const float* dy, float* dw,
                                  float* dbias, bool accumulate) {
  constexpr const char* kOp = "conv2d_backward_weight";
  const cudaStream_t stream = kiln::cuda::raw(s);
  const int64_t wsize = c.kh * c.kw * c.c_in * c.c_out;
  if (c.n == 0) {
    // No examples: the gradients are zero (or unchanged when accumulating), as on the CPU.
    if (!accumulate) {
      KILN_CUDA_CHECK(cudaMemsetAsync(dw, 0, static_cast<size_t>(wsize) * sizeof(float), stream));
      if (dbias) KILN_CUDA_CHECK(cudaMemsetAsync(dbias, 0, static_cast<size_t>(c.c_out) * sizeof(float), stream));
    }
    return;
  }
  // The weight gradient multiplies rounded x and dy; the bias gradient sums the fp32 dy.
  const auto x_bf16 = bf16_rounded(s, x, c.input_elems()), dy_bf16 = bf16_rounded(s, dy, c.output_elems());
  const float* xr = operand(x_bf16, x);
  const float* dyr = operand(dy_bf16, dy);
  CudnnCall call(s);
  const ConvDescs d(kOp, c, math_for(s));
  cudnnConvolutionBwdFilterAlgoPerf_t perf[kMaxAlgos];
  int found = 0;
  KILN_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithm_v7(call.handle(), d.x.get(), d.y.get(), d.conv, d.w,
                                                                 kMaxAlgos, &found, perf));
  const cudnnConvolutionBwdFilterAlgo_t algo = pick(kOp, perf, found, d.math);
  size_t ws_bytes = 0;
  KILN_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterWorkspaceSize(call.handle(), d.x.get(), d.y.get(), d.conv, d.w,
                                                                  algo, &ws_bytes));
  kiln::cuda::DeviceArray<unsigned char> ws(ws_bytes, stream);
  kiln::cuda::DeviceArray<float> grad(static_cast<size_t>(wsize), stream);  // KRSC
  const float one = 1.0f, zero = 0.0f;
  KILN_CUDNN_CHECK(cudnnConvolutionBackwardFilter(call.handle(), &one, d.x.get(), xr, d.y.get(), dyr, d.conv, algo,
                                                  ws.get(), ws_bytes, &zero, d.w, grad.get()));
  kiln::cuda::launch("transpose_accumulate_kernel", transpose_accumulate_kernel, dim3(elementwise_blocks(wsize)),
                     dim3(kElementwiseThreads), 0, stream, grad.get(), dw, d.k, d.c_out, accumulate);
  if (dbias) {
    const CudnnTensor db(kOp, 1, c.c_out, 1, 1);
    const float beta = accumulate ? 1.0f : 0.0f;
    KILN_CUDNN_CHECK(cudnnConvolutionBackwardBias(call.handle(), &one, d.y.get(), dy, &beta, db.get(), dbias));
  }
}

#else

bool have_cudnn() { return false; }

namespace {

[[noreturn]] void no_cudnn(const char* op) {
  // FP32 convolutions on CUDA always run through cuDNN (kernels/cuda_route.h), whatever the library.
  fail(op, ": this convolution runs through cuDNN (kernel_library VENDOR, or precision FP32 on CUDA), and this "
           "build of kiln has none (cudnn.h and libcudnn were not found when it was configured); set "
           "kernel_library KILN for conv2d and precision TF32 or BF16");
}

}  // namespace

void cudnn_conv2d_forward(const Stream&, const Conv2dShape&, const float*, const float*, const float*, float*,
                          Activation, float) {
  no_cudnn("conv2d_forward");
}
void cudnn_conv2d_backward_data(const Stream&, const Conv2dShape&, const float*, const float*, float*) {
  no_cudnn("conv2d_backward_data");
}
void cudnn_conv2d_backward_weight(const Stream&, const Conv2dShape&, const float*, const float*, float*, float*, bool) {
  no_cudnn("conv2d_backward_weight");
}

#endif

}  // namespace kiln::kernels::cuda
