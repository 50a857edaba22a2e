// The reference row-invariant GEMM (kernels/cuda/reference.h): one thread per element of C, its
// k products added in order, then bias and activation. A row's result is the same instructions
// in the same order whatever m is, so it does not depend on the batch size.
#include "core/error.h"
#include "kernels/cuda/act.cuh"
#include "kernels/cuda/reference.h"
#include "kernels/cuda/reference_launch.cuh"
#include "kernels/cuda/reference_rounding.cuh"

namespace kiln::kernels::cuda::reference {

namespace {

__global__ void ref_gemm_row_invariant(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b,
                                       int64_t ldb, float* c, int64_t ldc, const float* bias, Activation act,
                                       float slope, MathPrecision p) {
  KILN_GRID_STRIDE(idx, m * n) {
    const int64_t i = idx / n, j = idx % n;
    float acc = 0.0f;
    for (int64_t q = 0; q < k; ++q) acc += round_operand(a[i * lda + q], p) * round_operand(b[q * ldb + j], p);
    if (bias) acc += bias[j];
    c[i * ldc + j] = activate(act, slope, acc);
  }
}

}  // namespace

void gemm_row_invariant(const Stream& s, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b,
                        int64_t ldb, float* c, int64_t ldc, const float* bias, Activation act, float slope) {
  KILN_CHECK(s.device().is_cuda() && m >= 0 && n >= 0 && k >= 0);
  launch_per_output(s, "ref_gemm_row_invariant", ref_gemm_row_invariant, m * n, m, n, k, a, lda, b, ldb, c, ldc, bias,
                    act, slope, s.precision());
}

}  // namespace kiln::kernels::cuda::reference
