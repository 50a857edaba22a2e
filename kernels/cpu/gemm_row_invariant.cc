// Batch-invariant inference GEMM (see kernels/gemm.h). Register tiles of 4 rows x 24 columns with
// AVX2 FMAs, or on AVX-512 machines (chosen at run time) up to 8 rows x 48 columns; every output
// element is the same chain fma(a[k], b[k][j], acc) for k = 0..K-1 from zero, whether it sits in a
// full tile, a masked edge tile or a one-row tile, on AVX2 or AVX-512, so neither the tiling (which
// depends on the batch size) nor the machine's vector width can change its bits.
#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/thread_pool.h"
#include "kernels/cpu/act_impl.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/precision.h"

namespace kiln::kernels::cpu {

namespace {

constexpr int kRows = 4;
constexpr int kCols = 24;  // three AVX2 vectors

// Lane masks for the first `valid` of 24 columns.
void column_masks(int valid, __m256i mask[3]) {
  alignas(32) int32_t m[kCols];
  for (int j = 0; j < kCols; ++j) m[j] = j < valid ? -1 : 0;
  for (int v = 0; v < 3; ++v) mask[v] = _mm256_load_si256(reinterpret_cast<const __m256i*>(m + 8 * v));
}

template <int R>
void tile(int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb, float* c, int64_t ldc,
          const __m256i mask[3]) {
  __m256 acc[R][3];
  for (int i = 0; i < R; ++i)
    for (int v = 0; v < 3; ++v) acc[i][v] = _mm256_setzero_ps();
  for (int64_t p = 0; p < k; ++p) {
    const float* bp = b + p * ldb;
    const __m256 b0 = _mm256_maskload_ps(bp, mask[0]);
    const __m256 b1 = _mm256_maskload_ps(bp + 8, mask[1]);
    const __m256 b2 = _mm256_maskload_ps(bp + 16, mask[2]);
    for (int i = 0; i < R; ++i) {
      const __m256 x = _mm256_broadcast_ss(a + i * lda + p);
      acc[i][0] = _mm256_fmadd_ps(x, b0, acc[i][0]);
      acc[i][1] = _mm256_fmadd_ps(x, b1, acc[i][1]);
      acc[i][2] = _mm256_fmadd_ps(x, b2, acc[i][2]);
    }
  }
  for (int i = 0; i < R; ++i)
    for (int v = 0; v < 3; ++v) _mm256_maskstore_ps(c + i * ldc + 8 * v, mask[v], acc[i][v]);
}

void sgemm_rows(int64_t r0, int64_t r1, int64_t n, int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb,
                float* c, int64_t ldc) {
  __m256i full[3], edge[3];
  column_masks(kCols, full);
  const int64_t last = n % kCols;
  column_masks(static_cast<int>(last), edge);
  // Column panels outermost: a panel of B (k x 24 floats) stays in cache across the rows.
  for (int64_t j = 0; j < n; j += kCols) {
    const __m256i* mask = j + kCols <= n ? full : edge;
    int64_t i = r0;
    for (; i + kRows <= r1; i += kRows) tile<kRows>(k, a + i * lda, lda, b + j, ldb, c + i * ldc + j, ldc, mask);
    for (; i < r1; ++i) tile<1>(k, a + i * lda, lda, b + j, ldb, c + i * ldc + j, ldc, mask);
  }
}

// AVX-512: up to 8 rows x 48 columns (24 accumulators and 3 B vectors of the 32 zmm registers),
// and a narrower panel of 1 or 2 vectors at the right edge, so a 10- or 64-wide layer does not
// pay for 48 lanes; the same per-element chain as the AVX2 tiles.
constexpr int kRows512 = 8;

template <int R, int V>
__attribute__((target("avx512f"))) void tile512(int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb,
                                                float* c, int64_t ldc, const __mmask16 mask[V]) {
  __m512 acc[R][V];
  for (int i = 0; i < R; ++i)
    for (int v = 0; v < V; ++v) acc[i][v] = _mm512_setzero_ps();
  for (int64_t p = 0; p < k; ++p) {
    const float* bp = b + p * ldb;
    __m512 bv[V];
    for (int v = 0; v < V; ++v) bv[v] = _mm512_maskz_loadu_ps(mask[v], bp + 16 * v);
    for (int i = 0; i < R; ++i) {
      const __m512 x = _mm512_set1_ps(a[i * lda + p]);
      for (int v = 0; v < V; ++v) acc[i][v] = _mm512_fmadd_ps(x, bv[v], acc[i][v]);
    }
  }
  for (int i = 0; i < R; ++i)
    for (int v = 0; v < V; ++v) _mm512_mask_storeu_ps(c + i * ldc + 16 * v, mask[v], acc[i][v]);
}

template <int V>
__attribute__((target("avx512f"))) void panel512(int64_t r0, int64_t r1, int64_t k, const float* a, int64_t lda,
                                                 const float* b, int64_t ldb, float* c, int64_t ldc,
                                                 const __mmask16 mask[V]) {
  int64_t i = r0;
  for (; i + kRows512 <= r1; i += kRows512) tile512<kRows512, V>(k, a + i * lda, lda, b, ldb, c + i * ldc, ldc, mask);
  for (; i + 4 <= r1; i += 4) tile512<4, V>(k, a + i * lda, lda, b, ldb, c + i * ldc, ldc, mask);
  for (; i < r1; ++i) tile512<1, V>(k, a + i * lda, lda, b, ldb, c + i * ldc, ldc, mask);
}

__attribute__((target("avx512f"))) void sgemm_rows_avx512(int64_t r0, int64_t r1, int64_t n, int64_t k,
                                                          const float* a, int64_t lda, const float* b, int64_t ldb,
                                                          float* c, int64_t ldc) {
  for (int64_t j = 0; j < n;) {
    const int64_t width = std::min<int64_t>(48, n - j);
    __mmask16 mask[3];
    for (int v = 0; v < 3; ++v) {
      const int64_t lanes = std::clamp<int64_t>(width - 16 * v, 0, 16);
      mask[v] = static_cast<__mmask16>((1u << lanes) - 1u);
    }
    const float* bj = b + j;
    float* cj = c + j;
    if (width > 32)
      panel512<3>(r0, r1, k, a, lda, bj, ldb, cj, ldc, mask);
    else if (width > 16)
      panel512<2>(r0, r1, k, a, lda, bj, ldb, cj, ldc, mask);
    else
      panel512<1>(r0, r1, k, a, lda, bj, ldb, cj, ldc, mask);
    j += width;
  }
}

// The double version (gradient checks) keeps the same order with scalar fma.
void dgemm_rows(int64_t r0, int64_t r1, int64_t n, int64_t k, const double* a, int64_t lda, const double* b,
                int64_t ldb, double* c, int64_t ldc) {
  for (int64_t i = r0; i < r1; ++i) {
    double* row = c + i * ldc;
    std::fill(row, row + n, 0.0);
    for (int64_t p = 0; p < k; ++p) {
      const double x = a[i * lda + p];
      const double* bp = b + p * ldb;
      for (int64_t j = 0; j < n; ++j) row[j] = std::fma(x, bp[j], row[j]);
    }
  }
}

}  // namespace

bool row_invariant_avx512_available() {
  static const bool yes = __builtin_cpu_supports("avx512f");
  return yes;
}

void sgemm_row_invariant_isa(bool avx512, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b,
                             int64_t ldb, float* c, int64_t ldc) {
  KILN_CHECK(!avx512 || row_invariant_avx512_available(), "AVX-512 is not available on this CPU");
  if (avx512)
    sgemm_rows_avx512(0, m, n, k, a, lda, b, ldb, c, ldc);
  else
    sgemm_rows(0, m, n, k, a, lda, b, ldb, c, ldc);
}

template <typename T>
void gemm_row_invariant(const Stream& s, int64_t m, int64_t n, int64_t k, const T* a, int64_t lda, const T* b,
                        int64_t ldb, T* c, int64_t ldc, const T* bias, Activation act, float slope) {
  KILN_CHECK(s.device().is_cpu());
  KILN_CHECK(m >= 0 && n >= 0 && k >= 0, "gemm dims ", m, "x", n, "x", k);
  KILN_CHECK(lda >= std::max<int64_t>(1, k) && ldb >= std::max<int64_t>(1, n) && ldc >= std::max<int64_t>(1, n));
  if (m == 0 || n == 0) return;
  if (rounds<T>(s) && k > 0)  // element-wise rounding keeps the rows independent
    return cpu::gemm_row_invariant<T>(Stream::cpu(), m, n, k, rounded(s.precision(), a, (m - 1) * lda + k, 0), lda,
                                      rounded(s.precision(), b, (k - 1) * ldb + n, 1), ldb, c, ldc, bias, act, slope);
  const int64_t grain = std::max<int64_t>(kRows, 16384 / std::max<int64_t>(1, n * k) * kRows);
  detail::with_activation<T>(act, slope, [&](auto f) {
    parallel_for(m, grain, [&](int64_t r0, int64_t r1) {
      if constexpr (std::is_same_v<T, float>) {
        if (row_invariant_avx512_available())
          sgemm_rows_avx512(r0, r1, n, k, a, lda, b, ldb, c, ldc);
        else
          sgemm_rows(r0, r1, n, k, a, lda, b, ldb, c, ldc);
      } else {
        dgemm_rows(r0, r1, n, k, a, lda, b, ldb, c, ldc);
      }
      if (bias || act != Activation::none) detail::bias_activation_rows(r0, r1, n, c, ldc, bias, f);
    });
  });
}

template void gemm_row_invariant<float>(const Stream&, int64_t, int64_t, int64_t, const float*, int64_t, const float*,
                                        int64_t, float*, int64_t, const float*, Activation, float);
template void gemm_row_invariant<double>(const Stream&, int64_t, int64_t, int64_t, const double*, int64_t,
                                         const double*, int64_t, double*, int64_t, const double*, Activation, float);

}  // namespace kiln::kernels::cpu
