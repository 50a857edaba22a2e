#pragma once
// The GEMM and convolution entry points the dispatch calls on CUDA, at the stream's precision
// (Stream::precision()): tf32 runs Kiln's kernels on the fp32 data (they round to TF32 as they
// load it); bf16 rounds A and B (x and w, dy and w, x and dy) to bf16 copies first and runs the
// bf16 kernels, accumulating and writing fp32 as before. fp32 throws a kiln::Error: these kernels
// run on tensor cores only, and the dispatch sends fp32 elsewhere (kernels/cuda_route.h).
#include <cstdint>

#include "core/stream.h"
#include "kernels/activation.h"
#include "kernels/conv.h"

namespace kiln::kernels::cuda {

void gemm_at_precision(const Stream& s, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                       const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc,
                       const float* bias, Activation act, float slope);
// cuBLASLt (the VENDOR and FP32 GEMM): fp32 inputs at FP32 (CUBLAS_COMPUTE_32F) or TF32, bf16
// copies of A and B at BF16 (fp32 accumulation and output).
void gemm_cublaslt_at_precision(const Stream& s, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k,
                                float alpha, const float* a, int64_t lda, const float* b, int64_t ldb, float beta,
                                float* c, int64_t ldc, const float* bias, Activation act, float slope);
void gemm_row_invariant_at_precision(const Stream& s, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda,
                                     const float* b, int64_t ldb, float* c, int64_t ldc, const float* bias,
                                     Activation act, float slope);
void conv2d_forward_at_precision(const Stream& s, const Conv2dShape& shape, const float* x, const float* w,
                                 const float* bias, float* y, Activation act, float slope);
void conv2d_backward_data_at_precision(const Stream& s, const Conv2dShape& shape, const float* dy, const float* w,
                                       float* dx);
void conv2d_backward_weight_at_precision(const Stream& s, const Conv2dShape& shape, const float* x, const float* dy,
                                         float* dw, float* dbias, bool accumulate);

}  // namespace kiln::kernels::cuda
