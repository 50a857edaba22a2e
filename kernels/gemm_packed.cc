// Device dispatch of kernels/gemm_packed.h: CPU only (gemm_row_invariant_packs is false on sim
// and CUDA, where models run the plain row-invariant GEMM).
#include "kernels/gemm_packed.h"

#include "core/error.h"
#include "kernels/cpu/gemm.h"
#include "kernels/dispatch.h"

namespace kiln::kernels {

template <typename T>
bool gemm_row_invariant_packs(const Stream& s, int64_t k, int64_t n) {
  return cpu::gemm_row_invariant_packs<T>(s, k, n);  // which is false off the CPU
}

int64_t packed_b_elems(int64_t k, int64_t n) { return cpu::packed_b_elems(k, n); }

template <typename T>
void pack_b_row_invariant(const Stream& s, int64_t k, int64_t n, const T* b, int64_t ldb, T* packed) {
  if (!s.device().is_cpu()) detail::unknown_device("pack_b_row_invariant", s);
  cpu::pack_b_row_invariant<T>(s, k, n, b, ldb, packed);
}

template <typename T>
void gemm_row_invariant_packed(const Stream& s, int64_t m, int64_t n, int64_t k, const T* a, int64_t lda,
                               const T* packed_b, T* c, int64_t ldc, const T* bias, Activation act, float slope) {
  if (!s.device().is_cpu()) detail::unknown_device("gemm_row_invariant_packed", s);
  cpu::gemm_row_invariant_packed<T>(s, m, n, k, a, lda, packed_b, c, ldc, bias, act, slope);
}

KILN_GEMM_PACKED_INSTANTIATE(float)
KILN_GEMM_PACKED_INSTANTIATE(double)

}  // namespace kiln::kernels
