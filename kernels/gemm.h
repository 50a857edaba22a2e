#pragma once
// Row-major GEMM with a fused epilogue:
//   C[m,n] = act(alpha * op(A)[m,k] * op(B)[k,n] + beta * C[m,n] + bias[n])
// op(X) is X or its transpose. lda/ldb/ldc are row strides of the matrices as stored.
// The f32 CPU path runs oneDNN's sgemm, which dispatches to AVX2/AVX-512/AMX kernels for the CPU
// it finds; the f64 path is a plain reference used by gradient checks.
#include <cstdint>

#include "core/stream.h"
#include "kernels/activation.h"

namespace kiln::kernels {

template <typename T>
void gemm(const Stream& s, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha, const T* a,
          int64_t lda, const T* b, int64_t ldb, T beta, T* c, int64_t ldc, const T* bias = nullptr,
          Activation act = Activation::none, float slope = 0.01f);

// C[m,n] = act(A[m,k] * B[k,n] + bias[n]) where every output row depends on its input row alone,
// through a fixed summation order (k = 0, 1, ... fused multiply-adds from zero): a row's result is
// bit-identical in any batch, at any position and with any thread count. Inference uses it so that
// a served request gets exactly the outputs of evaluation, whatever the dynamic batcher put it
// with (oneDNN picks kernels and blockings by the batch size, which changes the rounding).
template <typename T>
void gemm_row_invariant(const Stream& s, int64_t m, int64_t n, int64_t k, const T* a, int64_t lda, const T* b,
                        int64_t ldb, T* c, int64_t ldc, const T* bias = nullptr, Activation act = Activation::none,
                        float slope = 0.01f);

// The instruction set oneDNN dispatches to on this CPU (e.g. "avx2", "avx512_core").
const char* cpu_gemm_isa();

}  // namespace kiln::kernels
