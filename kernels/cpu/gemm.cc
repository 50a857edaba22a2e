#include "kernels/cpu/gemm.h"
#include "kernels/cpu/precision.h"

#include <dnnl.h>

#include <algorithm>
#include <type_traits>
#include <vector>

#include "core/error.h"
#include "core/thread_pool.h"
#include "kernels/cpu/act_impl.h"

namespace kiln::kernels::cpu {

namespace {

constexpr int64_t kGrain = 4096;  // elements per parallel chunk, at least

// Rows per chunk so that each chunk covers about kGrain elements.
int64_t row_grain(int64_t cols) { return std::max<int64_t>(1, kGrain / std::max<int64_t>(cols, 1)); }

void check_args(const Stream& s, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, int64_t lda, int64_t ldb,
                int64_t ldc) {
  KILN_CHECK(s.device().is_cpu());
  KILN_CHECK(m >= 0 && n >= 0 && k >= 0, "gemm dims ", m, "x", n, "x", k);
  KILN_CHECK(lda >= std::max<int64_t>(1, trans_a ? m : k), "lda ", lda);
  KILN_CHECK(ldb >= std::max<int64_t>(1, trans_b ? k : n), "ldb ", ldb);
  KILN_CHECK(ldc >= std::max<int64_t>(1, n), "ldc ", ldc);
}

// C = act(C + bias) in one pass; a no-op without bias and activation.
template <typename T>
void epilogue(int64_t m, int64_t n, T* c, int64_t ldc, const T* bias, Activation act, float slope) {
  if (!bias && act == Activation::none) return;
  detail::with_activation<T>(act, slope, [&](auto f) {
    parallel_for(m, row_grain(n),
                 [&](int64_t rb, int64_t re) { detail::bias_activation_rows(rb, re, n, c, ldc, bias, f); });
  });
}

// C = beta C, honouring the BLAS rule that beta = 0 never reads C (it may hold NaN).
template <typename T>
void scale_c(int64_t m, int64_t n, T beta, T* c, int64_t ldc) {
  for (int64_t i = 0; i < m; ++i) {
    T* row = c + i * ldc;
    if (beta == T(0)) {
      std::fill(row, row + n, T(0));
    } else {
      for (int64_t j = 0; j < n; ++j) row[j] *= beta;
    }
  }
}

// oneDNN sgemm for f32.
void sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
           const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  // The bias is added in the epilogue, not pre-loaded into C, so beta applies to C alone.
  dnnl_status_t st = dnnl_sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  KILN_CHECK(st == dnnl_success, "dnnl_sgemm failed with status ", static_cast<int>(st));
}

// The f64 reference: each row of C is accumulated in a row buffer so the inner loop runs over
// contiguous memory (a row of B, or a row of B^T dotted with a row of A).
void dgemm_ref(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha, const double* a, int64_t lda,
               const double* b, int64_t ldb, double beta, double* c, int64_t ldc) {
  parallel_for(m, std::max<int64_t>(1, kGrain / std::max<int64_t>(1, n * k)), [&](int64_t rb, int64_t re) {
    std::vector<double> acc(static_cast<size_t>(n));
    for (int64_t i = rb; i < re; ++i) {
      std::fill(acc.begin(), acc.end(), 0.0);
      auto a_at = [&](int64_t p) { return trans_a ? a[p * lda + i] : a[i * lda + p]; };
      if (!trans_b) {
        for (int64_t p = 0; p < k; ++p) {
          const double ap = a_at(p);
          const double* brow = b + p * ldb;
          for (int64_t j = 0; j < n; ++j) acc[j] += ap * brow[j];
        }
      } else {
        for (int64_t j = 0; j < n; ++j) {
          const double* bcol = b + j * ldb;
          double sum = 0.0;
          for (int64_t p = 0; p < k; ++p) sum += a_at(p) * bcol[p];
          acc[j] = sum;
        }
      }
      double* row = c + i * ldc;
      for (int64_t j = 0; j < n; ++j) row[j] = alpha * acc[j] + (beta == 0.0 ? 0.0 : beta * row[j]);
    }
  });
}

}  // namespace

template <typename T>
void gemm(const Stream& s, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha, const T* a,
          int64_t lda, const T* b, int64_t ldb, T beta, T* c, int64_t ldc, const T* bias, Activation act, float slope) {
  check_args(s, trans_a, trans_b, m, n, k, lda, ldb, ldc);
  if (m == 0 || n == 0) return;
  if (rounds<T>(s) && k > 0) {
    const int64_t na = trans_a ? (k - 1) * lda + m : (m - 1) * lda + k;
    const int64_t nb = trans_b ? (n - 1) * ldb + k : (k - 1) * ldb + n;
    return cpu::gemm<T>(Stream::cpu(), trans_a, trans_b, m, n, k, alpha, rounded(s.precision(), a, na, 0), lda,
                        rounded(s.precision(), b, nb, 1), ldb, beta, c, ldc, bias, act, slope);
  }
  if (k == 0 || alpha == T(0)) {
    scale_c(m, n, beta, c, ldc);
  } else if constexpr (std::is_same_v<T, float>) {
    sgemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  } else {
    dgemm_ref(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  }
  epilogue(m, n, c, ldc, bias, act, slope);
}

template void gemm<float>(const Stream&, bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t,
                          const float*, int64_t, float, float*, int64_t, const float*, Activation, float);
template void gemm<double>(const Stream&, bool, bool, int64_t, int64_t, int64_t, double, const double*, int64_t,
                           const double*, int64_t, double, double*, int64_t, const double*, Activation, float);

}  // namespace kiln::kernels::cpu

namespace kiln::kernels {

const char* cpu_gemm_isa() {
  // Compared by value: newer oneDNN releases drop some enumerators (avx512_mic) and add others.
  switch (static_cast<unsigned>(dnnl_get_effective_cpu_isa())) {
    case 0x0: return "all";
    case 0x1: return "sse41";
    case 0x3: return "avx";
    case 0x7: return "avx2";
    case 0x407: return "avx2_vnni";
    case 0x1407: return "avx2_vnni_2";
    case 0xf: return "avx512_mic";
    case 0x1f: return "avx512_mic_4ops";
    case 0x27: return "avx512_core";
    case 0x67: return "avx512_core_vnni";
    case 0xe7: return "avx512_core_bf16";
    case 0x1ef: return "avx512_core_fp16";
    case 0x3e7: return "avx512_core_amx";
    case 0x3ef: return "avx512_core_amx_fp16";
    default: return "unknown";
  }
}

}  // namespace kiln::kernels
