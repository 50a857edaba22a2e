#include "kernels/cuda/precision.h"

#include <cuda_bf16.h>

#include "core/cuda/launch.cuh"
#include "core/cuda/memory.h"
#include "core/cuda/stream.h"
#include "core/error.h"
#include "kernels/cuda/conv.h"
#include "kernels/cuda/gemm.h"

namespace kiln::kernels::cuda {

namespace {

constexpr int kThreads = 256;

__global__ void to_bf16_kernel(const float* x, __nv_bfloat16* y, int64_t n) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    y[i] = __float2bfloat16(x[i]);  // round to nearest even, as kernels/cpu/precision.h emulates
}

// `n` elements of x as bf16, in a block of the caching allocator ordered on s.
kiln::cuda::DeviceArray<__nv_bfloat16> bf16_copy(const Stream& s, const float* x, int64_t n) {
  kiln::cuda::DeviceArray<__nv_bfloat16> y(static_cast<size_t>(n > 0 ? n : 1), kiln::cuda::raw(s));
  if (n > 0) {
    const int64_t blocks = std::min<int64_t>((n + kThreads - 1) / kThreads, 4096);
    kiln::cuda::launch("to_bf16_kernel", to_bf16_kernel, dim3(static_cast<unsigned>(blocks)), dim3(kThreads), 0,
                       kiln::cuda::raw(s), x, y.get(), n);
  }
  return y;
}

// The dispatch (kernels/cuda_route.h) sends FP32 to cuBLASLt, cuDNN or the reference kernels.
[[noreturn]] void no_fp32(const char* op) {
  fail(op, " at precision fp32: Kiln's CUDA kernels run on tensor cores (TF32 or BF16) only; FP32 runs through ",
       "cuBLASLt, cuDNN or the reference kernels (kernels/cuda_route.h)");
}

int64_t extent(bool trans, int64_t rows, int64_t cols, int64_t ld) {
  return rows <= 0 || cols <= 0 ? 0 : trans ? (cols - 1) * ld + rows : (rows - 1) * ld + cols;
}

}  // namespace

void gemm_at_precision(const Stream& s, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                       const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc,
                       const float* bias, Activation act, float slope) {
  switch (s.precision()) {
    case MathPrecision::fp32: no_fp32("gemm");
    case MathPrecision::tf32:
      return cuda::gemm<float>(s, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, bias, act, slope);
    case MathPrecision::bf16: {
      const auto a16 = bf16_copy(s, a, extent(trans_a, m, k, lda));
      const auto b16 = bf16_copy(s, b, extent(trans_b, k, n, ldb));
      return cuda::gemm<__nv_bfloat16>(s, trans_a, trans_b, m, n, k, alpha, a16.get(), lda, b16.get(), ldb, beta, c, ldc,
                                 bias, act, slope);
    }
  }
}

void gemm_cublaslt_at_precision(const Stream& s, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k,
                                float alpha, const float* a, int64_t lda, const float* b, int64_t ldb, float beta,
                                float* c, int64_t ldc, const float* bias, Activation act, float slope) {
  if (s.precision() != MathPrecision::bf16)
    return cuda::gemm_cublaslt<float>(s, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, bias, act,
                                      slope);
  const auto a16 = bf16_copy(s, a, extent(trans_a, m, k, lda));
  const auto b16 = bf16_copy(s, b, extent(trans_b, k, n, ldb));
  return cuda::gemm_cublaslt<__nv_bfloat16>(s, trans_a, trans_b, m, n, k, alpha, a16.get(), lda, b16.get(), ldb, beta,
                                            c, ldc, bias, act, slope);
}

void gemm_row_invariant_at_precision(const Stream& s, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda,
                                     const float* b, int64_t ldb, float* c, int64_t ldc, const float* bias,
                                     Activation act, float slope) {
  switch (s.precision()) {
    case MathPrecision::fp32: no_fp32("gemm_row_invariant");
    case MathPrecision::tf32: return cuda::gemm_row_invariant<float>(s, m, n, k, a, lda, b, ldb, c, ldc, bias, act, slope);
    case MathPrecision::bf16: {
      const auto a16 = bf16_copy(s, a, extent(false, m, k, lda));
      const auto b16 = bf16_copy(s, b, extent(false, k, n, ldb));
      return cuda::gemm_row_invariant<__nv_bfloat16>(s, m, n, k, a16.get(), lda, b16.get(), ldb, c, ldc, bias, act, slope);
    }
  }
}

void conv2d_forward_at_precision(const Stream& s, const Conv2dShape& shape, const float* x, const float* w,
                                 const float* bias, float* y, Activation act, float slope) {
  switch (s.precision()) {
    case MathPrecision::fp32: no_fp32("conv2d_forward");
    case MathPrecision::tf32: return cuda::conv2d_forward<float>(s, shape, x, w, bias, y, act, slope);
    case MathPrecision::bf16: {
      const auto x16 = bf16_copy(s, x, shape.input_elems());
      const auto w16 = bf16_copy(s, w, shape.weight_elems());
      return cuda::conv2d_forward<__nv_bfloat16>(s, shape, x16.get(), w16.get(), bias, y, act, slope);
    }
  }
}

void conv2d_backward_data_at_precision(const Stream& s, const Conv2dShape& shape, const float* dy, const float* w,
                                       float* dx) {
  switch (s.precision()) {
    case MathPrecision::fp32: no_fp32("conv2d_backward_data");
    case MathPrecision::tf32: return cuda::conv2d_backward_data<float>(s, shape, dy, w, dx);
    case MathPrecision::bf16: {
      const auto dy16 = bf16_copy(s, dy, shape.output_elems());
      const auto w16 = bf16_copy(s, w, shape.weight_elems());
      return cuda::conv2d_backward_data<__nv_bfloat16>(s, shape, dy16.get(), w16.get(), dx);
    }
  }
}

void conv2d_backward_weight_at_precision(const Stream& s, const Conv2dShape& shape, const float* x, const float* dy,
                                         float* dw, float* dbias, bool accumulate) {
  switch (s.precision()) {
    case MathPrecision::fp32: no_fp32("conv2d_backward_weight");
    case MathPrecision::tf32: return cuda::conv2d_backward_weight<float>(s, shape, x, dy, dw, dy, dbias, accumulate);
    case MathPrecision::bf16: {
      // The bias gradient reads the fp32 dy.
      const auto x16 = bf16_copy(s, x, shape.input_elems());
      const auto dy16 = bf16_copy(s, dy, shape.output_elems());
      return cuda::conv2d_backward_weight<__nv_bfloat16>(s, shape, x16.get(), dy16.get(), dw, dy, dbias, accumulate);
    }
  }
}

}  // namespace kiln::kernels::cuda
