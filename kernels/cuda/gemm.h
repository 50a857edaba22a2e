#pragma once
// GEMM on the GPU, row-major, with the CPU path's fused epilogue (kernels/gemm.h):
//   C[m,n] = act(alpha * op(A)[m,k] * op(B)[k,n] + beta * C[m,n] + bias[n])
// E is the input type: float inputs run on the tensor cores as TF32 (rounded to nearest),
// __nv_bfloat16 inputs as BF16; both accumulate and write fp32. Every transpose combination is
// supported (NN forward, NT data gradient, TN weight gradient, TT), any m, n, k (edges are
// predicated; rows that are not 16-byte aligned take a slower element-load path). All pointers
// are device pointers; the call is asynchronous on `s`.
#include <cuda_bf16.h>

#include <cstdint>

#include "core/stream.h"
#include "kernels/activation.h"

namespace kiln::kernels::cuda {

enum class GemmBackend : uint8_t { kiln, cublaslt };

// The backend gemm() uses: Kiln's own kernels by default; KILN_GEMM_BACKEND=cublaslt in the
// environment or set_gemm_backend() switches to cuBLASLt, for comparison.
GemmBackend gemm_backend();
void set_gemm_backend(GemmBackend backend);

template <typename E>
void gemm(const Stream& s, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const E* a,
          int64_t lda, const E* b, int64_t ldb, float beta, float* c, int64_t ldc, const float* bias = nullptr,
          Activation act = Activation::none, float slope = 0.01f);

// The two backends, callable directly (benchmarks, tests).
template <typename E>
void gemm_kiln(const Stream& s, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const E* a,
               int64_t lda, const E* b, int64_t ldb, float beta, float* c, int64_t ldc, const float* bias,
               Activation act, float slope);
template <typename E>
void gemm_cublaslt(const Stream& s, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                   const E* a, int64_t lda, const E* b, int64_t ldb, float beta, float* c, int64_t ldc,
                   const float* bias, Activation act, float slope);

// C = act(A B + bias), A [m, k], B [k, n], on Kiln's kernel with one tile shape whatever m: a row
// of C is computed by the same instructions in the same order in a batch of any size, so
// inference answers do not depend on how requests were batched (kernels::gemm_row_invariant).
template <typename E>
void gemm_row_invariant(const Stream& s, int64_t m, int64_t n, int64_t k, const E* a, int64_t lda, const E* b,
                        int64_t ldb, float* c, int64_t ldc, const float* bias, Activation act, float slope);

// c[i, j] = act(c[i, j] + bias[j]) over an m x n block (bias may be null): the epilogue of the
// cuBLASLt path and of anything else that produced C without one.
void bias_activation(const Stream& s, int64_t m, int64_t n, float* c, int64_t ldc, const float* bias, Activation act,
                     float slope);

}  // namespace kiln::kernels::cuda
