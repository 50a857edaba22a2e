#pragma once
// The CPU implementations of kernels/gemm.h: the host path and what the sim device runs, called by
// the dispatch in kernels/gemm.cc with a cpu stream (kernels/dispatch.h).
#include <cstdint>

#include "core/stream.h"
#include "kernels/gemm.h"

namespace kiln::kernels::cpu {

template <typename T>
void gemm(const Stream& s, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha, const T* a,
          int64_t lda, const T* b, int64_t ldb, T beta, T* c, int64_t ldc, const T* bias = nullptr,
          Activation act = Activation::none, float slope = 0.01f);
template <typename T>
void gemm_row_invariant(const Stream& s, int64_t m, int64_t n, int64_t k, const T* a, int64_t lda, const T* b,
                        int64_t ldb, T* c, int64_t ldc, const T* bias = nullptr, Activation act = Activation::none,
                        float slope = 0.01f);
// kernels/gemm_packed.h (implemented beside gemm_row_invariant).
template <typename T>
bool gemm_row_invariant_packs(const Stream& s, int64_t k, int64_t n);
int64_t packed_b_elems(int64_t k, int64_t n);
template <typename T>
void pack_b_row_invariant(const Stream& s, int64_t k, int64_t n, const T* b, int64_t ldb, T* packed);
template <typename T>
void gemm_row_invariant_packed(const Stream& s, int64_t m, int64_t n, int64_t k, const T* a, int64_t lda,
                               const T* packed_b, T* c, int64_t ldc, const T* bias, Activation act, float slope);
// Whether this CPU runs the row-invariant GEMM's AVX-512 tiles (chosen at run time; else AVX2).
bool row_invariant_avx512_available();
// The bare product c = a b (no bias, one thread) with the AVX-512 or the AVX2 tiles, for tests
// that check the two give the same bits.
void sgemm_row_invariant_isa(bool avx512, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b,
                             int64_t ldb, float* c, int64_t ldc);

}  // namespace kiln::kernels::cpu

// Explicit instantiations of kernels/gemm_packed.h's family for T in the enclosing namespace: the
// CPU code (kernels::cpu) and the dispatch (kernels) are built for the same element types.
#define KILN_GEMM_PACKED_INSTANTIATE(T)                                                                          \
  template bool gemm_row_invariant_packs<T>(const Stream&, int64_t, int64_t);                                    \
  template void pack_b_row_invariant<T>(const Stream&, int64_t, int64_t, const T*, int64_t, T*);                 \
  template void gemm_row_invariant_packed<T>(const Stream&, int64_t, int64_t, int64_t, const T*, int64_t, const T*, \
                                             T*, int64_t, const T*, Activation, float);
