// Device dispatch of kernels/gemm.h (kernels/dispatch.h).
#include "kernels/gemm.h"

#include "kernels/cpu/gemm.h"
#include "kernels/cuda_route.h"
#include "kernels/dispatch.h"
#include "kernels/kernel_library.h"
#if KILN_HAVE_CUDA
#include "kernels/cuda/gemm.h"
#include "kernels/cuda/precision.h"
#include "kernels/cuda/reference.h"
#endif

namespace kiln::kernels {

using detail::matrix_extent;
using detail::sim_arg;

template <typename T>
void gemm(const Stream& s, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha, const T* a,
          int64_t lda, const T* b, int64_t ldb, T beta, T* c, int64_t ldc, const T* bias, Activation act, float slope) {
  constexpr const char* kOp = "gemm";
  switch (s.device().kind) {
    case Device::Kind::cpu:
      return cpu::gemm(s, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, bias, act, slope);
    case Device::Kind::sim:
      // A is stored [m, k] or, transposed, [k, m]; B [k, n] or [n, k].
      return detail::sim_launch(
          s, [=, a = sim_arg(kOp, "a", a, trans_a ? matrix_extent(k, m, lda) : matrix_extent(m, k, lda)),
              b = sim_arg(kOp, "b", b, trans_b ? matrix_extent(n, k, ldb) : matrix_extent(k, n, ldb)),
              c = sim_arg(kOp, "c", c, matrix_extent(m, n, ldc)), bias = sim_arg(kOp, "bias", bias, n)] {
            cpu::gemm(Stream::cpu().with_precision(s.precision()), trans_a, trans_b, m, n, k, alpha, a.get(), lda,
                      b.get(), ldb, beta, c.get(), ldc, bias.get(), act, slope);
          });
    case Device::Kind::cuda:
      // kernels/cuda_route.h: cuBLASLt at FP32 (no tensor-op math) and under VENDOR, else Kiln's
      // kernels, each at the stream's precision.
      KILN_CUDA_F32(kOp, T, s,
                    cuda_gemm_impl(s.precision(), use_vendor("gemm")) == CudaImpl::cublaslt
                        ? cuda::gemm_cublaslt_at_precision(s, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta,
                                                           c, ldc, bias, act, slope)
                        : cuda::gemm_at_precision(s, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc,
                                                  bias, act, slope));
  }
  detail::unknown_device(kOp, s);
}

template <typename T>
void gemm_row_invariant(const Stream& s, int64_t m, int64_t n, int64_t k, const T* a, int64_t lda, const T* b,
                        int64_t ldb, T* c, int64_t ldc, const T* bias, Activation act, float slope) {
  constexpr const char* kOp = "gemm_row_invariant";
  switch (s.device().kind) {
    case Device::Kind::cpu: return cpu::gemm_row_invariant(s, m, n, k, a, lda, b, ldb, c, ldc, bias, act, slope);
    case Device::Kind::sim:
      return detail::sim_launch(
          s, [=, a = sim_arg(kOp, "a", a, matrix_extent(m, k, lda)), b = sim_arg(kOp, "b", b, matrix_extent(k, n, ldb)),
              c = sim_arg(kOp, "c", c, matrix_extent(m, n, ldc)), bias = sim_arg(kOp, "bias", bias, n)] {
            cpu::gemm_row_invariant(Stream::cpu().with_precision(s.precision()), m, n, k, a.get(), lda, b.get(), ldb,
                                    c.get(), ldc, bias.get(), act, slope);
          });
    case Device::Kind::cuda:
      // Never cuBLASLt (it may pick its algorithm by m, and a row's answer must not depend on the
      // batch size): Kiln's kernel (one tile shape whatever m), or the reference kernel at FP32 and
      // under VENDOR.
      KILN_CUDA_F32(kOp, T, s,
                    cuda_gemm_row_invariant_impl(s.precision(), use_vendor("gemm")) == CudaImpl::reference
                        ? cuda::reference::gemm_row_invariant(s, m, n, k, a, lda, b, ldb, c, ldc, bias, act, slope)
                        : cuda::gemm_row_invariant_at_precision(s, m, n, k, a, lda, b, ldb, c, ldc, bias, act, slope));
  }
  detail::unknown_device(kOp, s);
}

template void gemm<float>(const Stream&, bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t,
                          const float*, int64_t, float, float*, int64_t, const float*, Activation, float);
template void gemm<double>(const Stream&, bool, bool, int64_t, int64_t, int64_t, double, const double*, int64_t,
                           const double*, int64_t, double, double*, int64_t, const double*, Activation, float);
template void gemm_row_invariant<float>(const Stream&, int64_t, int64_t, int64_t, const float*, int64_t, const float*,
                                        int64_t, float*, int64_t, const float*, Activation, float);
template void gemm_row_invariant<double>(const Stream&, int64_t, int64_t, int64_t, const double*, int64_t,
                                         const double*, int64_t, double*, int64_t, const double*, Activation, float);

}  // namespace kiln::kernels
