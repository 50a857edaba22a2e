// Kiln's tensor-core GEMM: the main loop of kernels/cuda/gemm_kernel.cuh over two strided
// matrices, for every transpose combination, in a 128x128 tile for large problems and a 64x64
// tile when the large one would leave multiprocessors idle.
#include "kernels/cuda/gemm.h"

#include <cstdlib>
#include <cstring>
#include <atomic>

#include "core/cuda/launch.cuh"
#include "core/cuda/stream.h"
#include "core/error.h"
#include "kernels/cuda/device_info.h"
#include "kernels/cuda/gemm_kernel.cuh"

namespace kiln::kernels::cuda {

namespace {

template <int kElemBytes>
using LargeTile = GemmTile<kElemBytes, 128, 128, 64, 32, 4>;
template <int kElemBytes>
using SmallTile = GemmTile<kElemBytes, 64, 64, 32, 32, 4>;

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

template <class Cfg, typename E, bool kAK, bool kBK>
void launch_gemm(cudaStream_t stream, int64_t m, int64_t n, int64_t k, const E* a, int64_t lda, const E* b,
                 int64_t ldb, const GemmEpilogue& ep) {
  using OpA = StridedOperand<E, kAK>;
  using OpB = StridedOperand<E, kBK>;
  const bool vec_a = aligned16(a) && (lda * static_cast<int64_t>(sizeof(E))) % 16 == 0;
  const bool vec_b = aligned16(b) && (ldb * static_cast<int64_t>(sizeof(E))) % 16 == 0;
  // A k-contiguous A is [m][k] as stored (outer m, inner k); otherwise A^T is stored, [k][m].
  const OpA op_a{a, lda, kAK ? m : k, kAK ? k : m, vec_a};
  // A k-contiguous B is B^T as stored, [n][k]; otherwise B itself, [k][n].
  const OpB op_b{b, ldb, kBK ? n : k, kBK ? k : n, vec_b};
  const int64_t tiles = ceil_div(m, Cfg::kBM) * ceil_div(n, Cfg::kBN);
  KILN_CHECK(tiles <= INT32_MAX, "gemm of ", m, "x", n, " has too many tiles");
  const size_t smem = Cfg::smem_bytes(kAK, kBK);
  kiln::cuda::launch("mma_gemm_kernel", mma_gemm_kernel<Cfg, E, OpA, OpB>, dim3(static_cast<unsigned>(tiles)),
                     dim3(Cfg::kThreads), smem, stream, op_a, op_b, ep, m, n, k);
}

template <class Cfg, typename E>
void dispatch_layout(cudaStream_t stream, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const E* a,
                     int64_t lda, const E* b, int64_t ldb, const GemmEpilogue& ep) {
  // A is k-contiguous when not transposed; B when transposed.
  if (!trans_a && !trans_b) launch_gemm<Cfg, E, true, false>(stream, m, n, k, a, lda, b, ldb, ep);
  else if (!trans_a && trans_b) launch_gemm<Cfg, E, true, true>(stream, m, n, k, a, lda, b, ldb, ep);
  else if (trans_a && !trans_b) launch_gemm<Cfg, E, false, false>(stream, m, n, k, a, lda, b, ldb, ep);
  else launch_gemm<Cfg, E, false, true>(stream, m, n, k, a, lda, b, ldb, ep);
}

void check_args(const Stream& s, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, int64_t lda, int64_t ldb,
                int64_t ldc) {
  KILN_CHECK(s.device().is_cuda(), "CUDA gemm on a ", s.device().to_string(), " stream");
  KILN_CHECK(m >= 0 && n >= 0 && k >= 0, "gemm dims ", m, "x", n, "x", k);
  KILN_CHECK(lda >= std::max<int64_t>(1, trans_a ? m : k), "lda ", lda);
  KILN_CHECK(ldb >= std::max<int64_t>(1, trans_b ? k : n), "ldb ", ldb);
  KILN_CHECK(ldc >= std::max<int64_t>(1, n), "ldc ", ldc);
}

std::atomic<int>& backend_state() {
  static std::atomic<int> state = [] {
    const char* v = std::getenv("KILN_GEMM_BACKEND");
    return static_cast<int>(v && std::strcmp(v, "cublaslt") == 0 ? GemmBackend::cublaslt : GemmBackend::kiln);
  }();
  return state;
}

}  // namespace

GemmBackend gemm_backend() { return static_cast<GemmBackend>(backend_state().load()); }
void set_gemm_backend(GemmBackend backend) { backend_state().store(static_cast<int>(backend)); }

template <typename E>
void gemm_kiln(const Stream& s, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const E* a,
               int64_t lda, const E* b, int64_t ldb, float beta, float* c, int64_t ldc, const float* bias,
               Activation act, float slope) {
  check_args(s, trans_a, trans_b, m, n, k, lda, ldb, ldc);
  if (m == 0 || n == 0) return;
  // alpha = 0 must not read A or B (BLAS rule; they may hold NaN): run with no K steps.
  if (alpha == 0.0f) k = 0;
  const GemmEpilogue ep{c, ldc, alpha, beta, bias, act, slope,
                        reinterpret_cast<uintptr_t>(c) % 8 == 0 && ldc % 2 == 0};
  constexpr int kBytes = static_cast<int>(sizeof(E));
  const cudaStream_t stream = kiln::cuda::raw(s);
  if (use_large_tile(m, n, sm_count()))
    dispatch_layout<LargeTile<kBytes>, E>(stream, trans_a, trans_b, m, n, k, a, lda, b, ldb, ep);
  else
    dispatch_layout<SmallTile<kBytes>, E>(stream, trans_a, trans_b, m, n, k, a, lda, b, ldb, ep);
}

template <typename E>
void gemm_row_invariant(const Stream& s, int64_t m, int64_t n, int64_t k, const E* a, int64_t lda, const E* b,
                        int64_t ldb, float* c, int64_t ldc, const float* bias, Activation act, float slope) {
  check_args(s, false, false, m, n, k, lda, ldb, ldc);
  if (m == 0 || n == 0) return;
  const GemmEpilogue ep{c, ldc, 1.0f, 0.0f, bias, act, slope, reinterpret_cast<uintptr_t>(c) % 8 == 0 && ldc % 2 == 0};
  constexpr int kBytes = static_cast<int>(sizeof(E));
  dispatch_layout<SmallTile<kBytes>, E>(kiln::cuda::raw(s), false, false, m, n, k, a, lda, b, ldb, ep);
}

template <typename E>
void gemm(const Stream& s, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const E* a,
          int64_t lda, const E* b, int64_t ldb, float beta, float* c, int64_t ldc, const float* bias, Activation act,
          float slope) {
  if (gemm_backend() == GemmBackend::cublaslt)
    gemm_cublaslt<E>(s, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, bias, act, slope);
  else
    gemm_kiln<E>(s, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, bias, act, slope);
}

#define KILN_INSTANTIATE(E)                                                                                         \
  template void gemm<E>(const Stream&, bool, bool, int64_t, int64_t, int64_t, float, const E*, int64_t, const E*,    \
                        int64_t, float, float*, int64_t, const float*, Activation, float);                           \
  template void gemm_kiln<E>(const Stream&, bool, bool, int64_t, int64_t, int64_t, float, const E*, int64_t,         \
                             const E*, int64_t, float, float*, int64_t, const float*, Activation, float);   \
  template void gemm_row_invariant<E>(const Stream&, int64_t, int64_t, int64_t, const E*, int64_t, const E*, int64_t, \
                                      float*, int64_t, const float*, Activation, float);
KILN_INSTANTIATE(float)
KILN_INSTANTIATE(__nv_bfloat16)
#undef KILN_INSTANTIATE

}  // namespace kiln::kernels::cuda
