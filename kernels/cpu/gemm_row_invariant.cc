// Batch-invariant inference GEMM (see kernels/gemm.h). Register tiles of 4 rows x 24 columns with
// AVX2 FMAs, or on AVX-512 machines (chosen at run time) up to 6 rows x 64 columns; every output
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

// Full panels load B unmasked; only the right edge pays for masks. The loops are unrolled over
// constants so the 12 accumulators stay in registers.
template <int R, bool Edge>
void tile(int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb, float* c, int64_t ldc,
          const __m256i mask[3]) {
  __m256 acc[R][3];
#pragma GCC unroll 4
  for (int i = 0; i < R; ++i)
#pragma GCC unroll 3
    for (int v = 0; v < 3; ++v) acc[i][v] = _mm256_setzero_ps();
  for (int64_t p = 0; p < k; ++p, b += ldb, ++a) {
    __m256 bv[3];
#pragma GCC unroll 3
    for (int v = 0; v < 3; ++v) bv[v] = Edge ? _mm256_maskload_ps(b + 8 * v, mask[v]) : _mm256_loadu_ps(b + 8 * v);
#pragma GCC unroll 4
    for (int i = 0; i < R; ++i) {
      const __m256 x = _mm256_broadcast_ss(a + i * lda);
#pragma GCC unroll 3
      for (int v = 0; v < 3; ++v) acc[i][v] = _mm256_fmadd_ps(x, bv[v], acc[i][v]);
    }
  }
#pragma GCC unroll 4
  for (int i = 0; i < R; ++i)
#pragma GCC unroll 3
    for (int v = 0; v < 3; ++v) {
      if (Edge)
        _mm256_maskstore_ps(c + i * ldc + 8 * v, mask[v], acc[i][v]);
      else
        _mm256_storeu_ps(c + i * ldc + 8 * v, acc[i][v]);
    }
}

template <bool Edge>
void panel(int64_t r0, int64_t r1, int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb, float* c,
           int64_t ldc, const __m256i mask[3]) {
  int64_t i = r0;
  for (; i + kRows <= r1; i += kRows) tile<kRows, Edge>(k, a + i * lda, lda, b, ldb, c + i * ldc, ldc, mask);
  for (; i < r1; ++i) tile<1, Edge>(k, a + i * lda, lda, b, ldb, c + i * ldc, ldc, mask);
}

// Rows [r0, r1) x columns [j0, j1) of c; panels of 24 columns start at j0.
void sgemm_block(int64_t r0, int64_t r1, int64_t j0, int64_t j1, int64_t k, const float* a, int64_t lda,
                 const float* b, int64_t ldb, float* c, int64_t ldc) {
  __m256i edge[3];
  column_masks(static_cast<int>((j1 - j0) % kCols), edge);
  // Column panels outermost: a panel of B (k x 24 floats) stays in cache across the rows.
  for (int64_t j = j0; j < j1; j += kCols) {
    if (j + kCols <= j1)
      panel<false>(r0, r1, k, a, lda, b + j, ldb, c + j, ldc, edge);
    else
      panel<true>(r0, r1, k, a, lda, b + j, ldb, c + j, ldc, edge);
  }
}

// AVX-512: tiles of up to 6 rows x 4 vectors (64 columns): 24 accumulators, 4 B vectors and a
// broadcast in the 32 zmm registers, so per k step 10 loads feed 24 FMAs. Only the last vector of
// a panel is masked (a 10- or 200-wide layer), and the loops are unrolled over constants so the
// accumulators stay in registers. The same per-element chain as the AVX2 tiles.
constexpr int kRows512 = 6;
constexpr int kVecs512 = 4;

// `first`: each chain starts from zero; otherwise it continues from the partial sums in c (a later
// block of k), which gives the same bits as one pass.
// Full: the panel is 16V columns wide and nothing is masked (a masked load per k step costs).
template <int R, int V, bool Full>
__attribute__((target("avx512f"))) void tile512(int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb,
                                                float* c, int64_t ldc, __mmask16 last, bool first) {
  __m512 acc[R][V];
#pragma GCC unroll 8
  for (int i = 0; i < R; ++i) {
#pragma GCC unroll 4
    for (int v = 0; v + 1 < V; ++v) acc[i][v] = first ? _mm512_setzero_ps() : _mm512_loadu_ps(c + i * ldc + 16 * v);
    acc[i][V - 1] = first  ? _mm512_setzero_ps()
                    : Full ? _mm512_loadu_ps(c + i * ldc + 16 * (V - 1))
                           : _mm512_maskz_loadu_ps(last, c + i * ldc + 16 * (V - 1));
  }
  for (int64_t p = 0; p < k; ++p, b += ldb, ++a) {
    __m512 bv[V];
#pragma GCC unroll 4
    for (int v = 0; v + 1 < V; ++v) bv[v] = _mm512_loadu_ps(b + 16 * v);
    bv[V - 1] = Full ? _mm512_loadu_ps(b + 16 * (V - 1)) : _mm512_maskz_loadu_ps(last, b + 16 * (V - 1));
#pragma GCC unroll 8
    for (int i = 0; i < R; ++i) {
      const __m512 x = _mm512_set1_ps(a[i * lda]);
#pragma GCC unroll 4
      for (int v = 0; v < V; ++v) acc[i][v] = _mm512_fmadd_ps(x, bv[v], acc[i][v]);
    }
  }
#pragma GCC unroll 8
  for (int i = 0; i < R; ++i) {
#pragma GCC unroll 4
    for (int v = 0; v + 1 < V; ++v) _mm512_storeu_ps(c + i * ldc + 16 * v, acc[i][v]);
    if (Full)
      _mm512_storeu_ps(c + i * ldc + 16 * (V - 1), acc[i][V - 1]);
    else
      _mm512_mask_storeu_ps(c + i * ldc + 16 * (V - 1), last, acc[i][V - 1]);
  }
}

// The rows of a panel over k steps [p0, p0 + kb); `first`: the chains start here.
template <int V, bool Full>
__attribute__((target("avx512f"))) void panel512(int64_t r0, int64_t r1, int64_t p0, int64_t kb, const float* a,
                                                 int64_t lda, const float* b, int64_t ldb, float* c, int64_t ldc,
                                                 __mmask16 last) {
  const bool first = p0 == 0;
  const float* ap = a + p0;
  const float* bp = b + p0 * ldb;
  int64_t i = r0;
  for (; i + kRows512 <= r1; i += kRows512)
    tile512<kRows512, V, Full>(kb, ap + i * lda, lda, bp, ldb, c + i * ldc, ldc, last, first);
  const float* ai = ap + i * lda;
  float* ci = c + i * ldc;
  switch (r1 - i) {
    case 5: return tile512<5, V, Full>(kb, ai, lda, bp, ldb, ci, ldc, last, first);
    case 4: return tile512<4, V, Full>(kb, ai, lda, bp, ldb, ci, ldc, last, first);
    case 3: return tile512<3, V, Full>(kb, ai, lda, bp, ldb, ci, ldc, last, first);
    case 2: return tile512<2, V, Full>(kb, ai, lda, bp, ldb, ci, ldc, last, first);
    case 1: return tile512<1, V, Full>(kb, ai, lda, bp, ldb, ci, ldc, last, first);
    default: return;
  }
}

// k in blocks whose slice of a 64-column panel of B (block x 64 floats) stays in L1 while every
// row tile passes over it, and blocks outermost so the rows' slice of A is read once for all the
// panels: without blocking each 6-row tile would stream the whole k x 64 panel from L2, and with
// panels outermost A would be read once per panel (fc1 of the CNN at batch 64: 800 KB of A, 3.2
// MB of B). A later block continues each chain from the partial sums in c: the same bits.
constexpr int64_t kBlock512 = 96;
constexpr int64_t kPackedPanel = 16 * kVecs512;  // pack_b_row_invariant's panel width

// Rows [r0, r1) x columns [j0, j1) of c; panels of 64 columns start at j0.
// `packed`: b holds B in 64-column panels, [panel][k][64] (pack_b_row_invariant), and j0 is a
// multiple of 64: panel j starts at b + (j / 64) * k * 64 with rows 64 apart.
__attribute__((target("avx512f"))) void sgemm_block_avx512(int64_t r0, int64_t r1, int64_t j0, int64_t j1, int64_t k,
                                                           const float* a, int64_t lda, const float* b, int64_t ldb,
                                                           float* c, int64_t ldc, bool packed = false) {
  for (int64_t p0 = 0; p0 < std::max<int64_t>(k, 1); p0 += kBlock512) {
    const int64_t kb = std::min(kBlock512, k - p0);
    for (int64_t j = j0; j < j1; j += 16 * kVecs512) {
      const int64_t width = std::min<int64_t>(16 * kVecs512, j1 - j);
      const int vecs = static_cast<int>((width + 15) / 16);
      const auto last = static_cast<__mmask16>((1u << (width - 16 * (vecs - 1))) - 1u);
      const bool full = width == 16 * vecs;
      const float* bj = packed ? b + j / kPackedPanel * k * kPackedPanel : b + j;
      const int64_t ldbj = packed ? kPackedPanel : ldb;
      switch (vecs * 2 + full) {
        case 9: panel512<4, true>(r0, r1, p0, kb, a, lda, bj, ldbj, c + j, ldc, last); break;
        case 8: panel512<4, false>(r0, r1, p0, kb, a, lda, bj, ldbj, c + j, ldc, last); break;
        case 7: panel512<3, true>(r0, r1, p0, kb, a, lda, bj, ldbj, c + j, ldc, last); break;
        case 6: panel512<3, false>(r0, r1, p0, kb, a, lda, bj, ldbj, c + j, ldc, last); break;
        case 5: panel512<2, true>(r0, r1, p0, kb, a, lda, bj, ldbj, c + j, ldc, last); break;
        case 4: panel512<2, false>(r0, r1, p0, kb, a, lda, bj, ldbj, c + j, ldc, last); break;
        case 3: panel512<1, true>(r0, r1, p0, kb, a, lda, bj, ldbj, c + j, ldc, last); break;
        default: panel512<1, false>(r0, r1, p0, kb, a, lda, bj, ldbj, c + j, ldc, last); break;
      }
    }
  }
}

// The double version (gradient checks) keeps the same order with scalar fma.
void dgemm_rows(int64_t r0, int64_t r1, int64_t j0, int64_t j1, int64_t k, const double* a, int64_t lda,
                const double* b, int64_t ldb, double* c, int64_t ldc) {
  for (int64_t i = r0; i < r1; ++i) {
    double* row = c + i * ldc;
    std::fill(row + j0, row + j1, 0.0);
    for (int64_t p = 0; p < k; ++p) {
      const double x = a[i * lda + p];
      const double* bp = b + p * ldb;
      for (int64_t j = j0; j < j1; ++j) row[j] = std::fma(x, bp[j], row[j]);
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
    sgemm_block_avx512(0, m, 0, n, k, a, lda, b, ldb, c, ldc);
  else
    sgemm_block(0, m, 0, n, k, a, lda, b, ldb, c, ldc);
}

namespace {

// The GEMM over a plain B (ldb) or, `packed`, the 64-column panels of pack_b_row_invariant (float,
// AVX-512 only: the panels are the AVX-512 tiles' width).
template <typename T>
void row_invariant(const Stream& s, int64_t m, int64_t n, int64_t k, const T* a, int64_t lda, const T* b, int64_t ldb,
                   bool packed, T* c, int64_t ldc, const T* bias, Activation act, float slope) {
  KILN_CHECK(s.device().is_cpu());
  KILN_CHECK(m >= 0 && n >= 0 && k >= 0, "gemm dims ", m, "x", n, "x", k);
  KILN_CHECK(lda >= std::max<int64_t>(1, k) && (packed || ldb >= std::max<int64_t>(1, n)) &&
             ldc >= std::max<int64_t>(1, n));
  if (m == 0 || n == 0) return;
  if (rounds<T>(s) && k > 0) {  // element-wise rounding keeps the rows independent
    KILN_CHECK(!packed, "packed row-invariant GEMM at ", precision_name(s.precision()), ": only fp32");
    return row_invariant<T>(Stream::cpu(), m, n, k, rounded(s.precision(), a, (m - 1) * lda + k, 0), lda,
                            rounded(s.precision(), b, (k - 1) * ldb + n, 1), ldb, false, c, ldc, bias, act, slope);
  }
  detail::with_activation<T>(act, slope, [&](auto f) {
    // c[r0:r1, j0:j1] and its epilogue; every element's chain is the same whichever block it is in.
    auto block = [&](int64_t r0, int64_t r1, int64_t j0, int64_t j1) {
      if constexpr (std::is_same_v<T, float>) {
        if (row_invariant_avx512_available())
          sgemm_block_avx512(r0, r1, j0, j1, k, a, lda, b, ldb, c, ldc, packed);
        else
          sgemm_block(r0, r1, j0, j1, k, a, lda, b, ldb, c, ldc);
      } else {
        dgemm_rows(r0, r1, j0, j1, k, a, lda, b, ldb, c, ldc);
      }
      if (bias || act != Activation::none)
        detail::bias_activation_rows(r0, r1, j1 - j0, c + j0, ldc, bias ? bias + j0 : nullptr, f);
    };
    // Fewer rows than columns (a dense layer at a small batch): the threads split the columns, so
    // each reads only its share of B (which then can stay in its core's cache across calls) and a
    // batch of one row still uses every thread.
    const int64_t panel = row_invariant_avx512_available() ? 64 : 48;
    const int64_t panels = (n + panel - 1) / panel;
    if (m < n && panels >= 2 && m * n * k >= (int64_t{1} << 16)) {
      parallel_for(panels, 1, [&](int64_t p0, int64_t p1) { block(0, m, p0 * panel, std::min(n, p1 * panel)); });
      return;
    }
    const int64_t grain = std::max<int64_t>(kRows, 16384 / std::max<int64_t>(1, n * k) * kRows);
    parallel_for(m, grain, [&](int64_t r0, int64_t r1) { block(r0, r1, 0, n); });
  });
}

}  // namespace

template <typename T>
void gemm_row_invariant(const Stream& s, int64_t m, int64_t n, int64_t k, const T* a, int64_t lda, const T* b,
                        int64_t ldb, T* c, int64_t ldc, const T* bias, Activation act, float slope) {
  row_invariant<T>(s, m, n, k, a, lda, b, ldb, false, c, ldc, bias, act, slope);
}

template <typename T>
bool gemm_row_invariant_packs(const Stream& s, int64_t k, int64_t n) {
  // Worth a second copy of the weights only where a panel's rows are not contiguous already.
  return std::is_same_v<T, float> && s.device().is_cpu() && s.precision() == MathPrecision::fp32 &&
         row_invariant_avx512_available() && n > kPackedPanel && k > 0;
}

int64_t packed_b_elems(int64_t k, int64_t n) { return (n + kPackedPanel - 1) / kPackedPanel * k * kPackedPanel; }

template <typename T>
void pack_b_row_invariant(const Stream& s, int64_t k, int64_t n, const T* b, int64_t ldb, T* packed) {
  KILN_CHECK(s.device().is_cpu() && ldb >= n);
  for (int64_t j = 0, p = 0; j < n; j += kPackedPanel, ++p) {
    const int64_t width = std::min(kPackedPanel, n - j);
    T* panel = packed + p * k * kPackedPanel;
    for (int64_t r = 0; r < k; ++r) {
      std::copy(b + r * ldb + j, b + r * ldb + j + width, panel + r * kPackedPanel);
      std::fill(panel + r * kPackedPanel + width, panel + (r + 1) * kPackedPanel, T(0));
    }
  }
}

template <typename T>
void gemm_row_invariant_packed(const Stream& s, int64_t m, int64_t n, int64_t k, const T* a, int64_t lda,
                               const T* packed_b, T* c, int64_t ldc, const T* bias, Activation act, float slope) {
  KILN_CHECK(gemm_row_invariant_packs<T>(s, k, n), "gemm_row_invariant_packed: not on this stream or CPU");
  row_invariant<T>(s, m, n, k, a, lda, packed_b, kPackedPanel, true, c, ldc, bias, act, slope);
}

KILN_GEMM_PACKED_INSTANTIATE(float)
KILN_GEMM_PACKED_INSTANTIATE(double)

template void gemm_row_invariant<float>(const Stream&, int64_t, int64_t, int64_t, const float*, int64_t, const float*,
                                        int64_t, float*, int64_t, const float*, Activation, float);
template void gemm_row_invariant<double>(const Stream&, int64_t, int64_t, int64_t, const double*, int64_t,
                                         const double*, int64_t, double*, int64_t, const double*, Activation, float);

}  // namespace kiln::kernels::cpu
