#pragma once
// The row-invariant GEMM (kernels/gemm.h) over a B packed once into 64-column panels, [panel][k][64]
// with the last panel zero-padded: a served model packs its frozen dense weights at load, so each
// thread's panels stream contiguously instead of as 256-byte pieces of longer rows (fc1 of the
// Fashion-MNIST CNN at batch 1, 3.2 MB of weights, 2 threads: ~20-24 -> ~16 us). The same chains,
// so the same bits as gemm_row_invariant. The CPU with AVX-512 at fp32 only; elsewhere
// gemm_row_invariant_packs says no and the plain GEMM runs.
#include <cstdint>

#include "core/stream.h"
#include "kernels/activation.h"

namespace kiln::kernels {

// Whether this stream packs a k x n B: the CPU with AVX-512 at fp32, B wider than one panel.
template <typename T>
bool gemm_row_invariant_packs(const Stream& s, int64_t k, int64_t n);

// Elements of a packed k x n B.
int64_t packed_b_elems(int64_t k, int64_t n);

template <typename T>
void pack_b_row_invariant(const Stream& s, int64_t k, int64_t n, const T* b, int64_t ldb, T* packed);

// gemm_row_invariant with B from pack_b_row_invariant.
template <typename T>
void gemm_row_invariant_packed(const Stream& s, int64_t m, int64_t n, int64_t k, const T* a, int64_t lda,
                               const T* packed_b, T* c, int64_t ldc, const T* bias = nullptr,
                               Activation act = Activation::none, float slope = 0.01f);

}  // namespace kiln::kernels
