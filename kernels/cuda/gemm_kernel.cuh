#pragma once
// The tensor-core GEMM main loop, shared by the matrix product (kernels/cuda/gemm.cu) and the
// implicit-GEMM convolutions (kernels/cuda/conv.cu). It computes
//   C[m, n] = epilogue(sum_k A(m, k) B(k, n))
// where A and B are "operands": objects that say where element (outer, inner) of their shared-
// memory tile comes from. An operand is k-contiguous (its tile is [m or n][k]) or m/n-contiguous
// ([k][m or n]); a plain matrix, an im2col view of an NHWC image or a transposed weight are all
// operands, which is how one main loop serves GEMM and convolution.
//
// Per CTA: a kStages-deep ring of shared-memory tiles filled by cp.async (16-byte chunks,
// zero-filled past the matrix edges), one __syncthreads per K step, fragments through ldmatrix
// (bf16) or conflict-free scalar loads (tf32), mma.sync into fp32 registers, and an epilogue
// that applies alpha, beta, bias and the activation with predicated stores. Operands whose rows
// are not 16-byte aligned fall back to element loads into the same ring.
#include <cuda_bf16.h>

#include <cstdint>
#include <type_traits>

#include "kernels/activation.h"
#include "kernels/cuda/act.cuh"
#include "kernels/cuda/gemm_tiling.h"
#include "kernels/cuda/mma.cuh"

namespace kiln::kernels::cuda {

// Raw bits of one element, for copies that must not interpret the value.
template <typename E>
using bits_t = std::conditional_t<sizeof(E) == 2, uint16_t, uint32_t>;

// A row-major matrix seen as an operand: element (outer, inner) is ptr[outer * ld + inner].
template <typename E, bool kKContiguous>
struct StridedOperand {
  static constexpr bool k_contiguous = kKContiguous;
  const E* ptr;
  int64_t ld;
  int64_t outer_extent, inner_extent;
  bool vec_ok;  // ptr 16-byte aligned and ld * sizeof(E) a multiple of 16

  __device__ bool vectorized() const { return vec_ok; }
  __device__ const E* base() const { return ptr; }
  // Source of the 16-byte chunk at (outer, inner) and how many of its elements exist (0..vec).
  __device__ int chunk(int64_t outer, int64_t inner, int vec, const E** src) const {
    if (outer >= outer_extent) return 0;
    *src = ptr + outer * ld + inner;
    return chunk_valid(inner, inner_extent, vec);
  }
  __device__ const E* element(int64_t outer, int64_t inner) const {
    return outer < outer_extent && inner < inner_extent ? ptr + outer * ld + inner : nullptr;
  }
};

// C = act(alpha * acc + beta * C + bias[n]); beta == 0 never reads C (it may hold NaN).
struct GemmEpilogue {
  float* c;
  int64_t ldc;
  float alpha, beta;
  const float* bias;
  Activation act;
  float slope;
  bool pair_ok;  // c 8-byte aligned and ldc even: two adjacent columns are one float2 store

  __device__ float value(int64_t r, int64_t col, float acc) const {
    float v = alpha * acc;
    if (beta != 0.0f) v += beta * c[r * ldc + col];
    if (bias) v += bias[col];
    return activate(act, slope, v);
  }
  // Columns col and col + 1 of row r (col is even), each only if inside the matrix.
  __device__ void store_pair(int64_t r, int64_t col, float a0, float a1, int64_t m, int64_t n) const {
    if (r >= m || col >= n) return;
    if (pair_ok && col + 1 < n) {
      float2 v;
      if (beta != 0.0f) {
        const float2 old = *reinterpret_cast<const float2*>(c + r * ldc + col);
        v.x = alpha * a0 + beta * old.x;
        v.y = alpha * a1 + beta * old.y;
      } else {
        v.x = alpha * a0;
        v.y = alpha * a1;
      }
      if (bias) v.x += bias[col], v.y += bias[col + 1];
      v.x = activate(act, slope, v.x);
      v.y = activate(act, slope, v.y);
      *reinterpret_cast<float2*>(c + r * ldc + col) = v;
      return;
    }
    c[r * ldc + col] = value(r, col, a0);
    if (col + 1 < n) c[r * ldc + col + 1] = value(r, col + 1, a1);
  }
};

// Fills one shared-memory tile [kRows][kCols] (row stride `stride`) from `op`, whose tile origin
// is (outer0, inner0). Vectorized operands go through cp.async; the others through registers.
template <int kRows, int kCols, int kThreads, typename E, typename Op>
__device__ __forceinline__ void load_tile(E* s, int stride, const Op& op, int64_t outer0, int64_t inner0, int tid) {
  constexpr int kVec = 16 / static_cast<int>(sizeof(E));
  constexpr int kChunksPerRow = kCols / kVec;
  constexpr int kChunks = kRows * kChunksPerRow;
  static_assert(kCols % kVec == 0, "tile width");
  constexpr int kIters = (kChunks + kThreads - 1) / kThreads;
  if (op.vectorized()) {
#pragma unroll
    for (int it = 0; it < kIters; ++it) {
      const int i = tid + it * kThreads;
      if (kChunks % kThreads != 0 && i >= kChunks) break;
      const int r = i / kChunksPerRow, c = (i % kChunksPerRow) * kVec;
      const E* src = op.base();
      const int valid = op.chunk(outer0 + r, inner0 + c, kVec, &src);
      ptx::cp_async_16(s + r * stride + c, valid > 0 ? src : op.base(), valid * static_cast<int>(sizeof(E)));
    }
  } else {
    using B = bits_t<E>;
#pragma unroll
    for (int it = 0; it < kIters; ++it) {
      const int i = tid + it * kThreads;
      if (kChunks % kThreads != 0 && i >= kChunks) break;
      const int r = i / kChunksPerRow, c = (i % kChunksPerRow) * kVec;
      B* dst = reinterpret_cast<B*>(s + r * stride + c);
#pragma unroll
      for (int v = 0; v < kVec; ++v) {
        const E* p = op.element(outer0 + r, inner0 + c + v);
        dst[v] = p ? *reinterpret_cast<const B*>(p) : B(0);
      }
    }
  }
}

// Loads the fragments of one k-step (kMmaK wide, at column kk of the stage) and issues the mmas.
template <class Cfg, typename E, bool kAK, bool kBK>
__device__ __forceinline__ void mma_step(const E* sa, const E* sb, int kk, int wm0, int wn0, int lane,
                                         float (&acc)[Cfg::kMmaM][Cfg::kMmaN][4]) {
  constexpr int kSA = Cfg::stride(kAK, Cfg::kBM), kSB = Cfg::stride(kBK, Cfg::kBN);
  uint32_t af[Cfg::kMmaM][4];
  uint32_t bfr[Cfg::kMmaN][2];
  if constexpr (sizeof(E) == 2) {
    // bf16: ldmatrix. Lane l addresses row (l % 8) of 8x8 matrix l / 8.
    const int r8 = lane & 7, q = lane >> 3;
#pragma unroll
    for (int i = 0; i < Cfg::kMmaM; ++i) {
      // Matrices: (m 0-7, k 0-7), (m 8-15, k 0-7), (m 0-7, k 8-15), (m 8-15, k 8-15) = a0..a3.
      const int m = wm0 + i * 16 + (q & 1) * 8, k = kk + (q >> 1) * 8;
      if constexpr (kAK)
        ptx::ldmatrix_x4(af[i], sa + (m + r8) * kSA + k);
      else
        ptx::ldmatrix_x4_trans(af[i], sa + (k + r8) * kSA + m);
    }
#pragma unroll
    for (int p = 0; p < Cfg::kMmaN / 2; ++p) {
      // Matrices: (n 0-7, k 0-7), (n 0-7, k 8-15), (n 8-15, k 0-7), (n 8-15, k 8-15)
      //         = b0b1 and b2b3 of n-tile 2p, then of n-tile 2p + 1.
      const int n = wn0 + p * 16 + (q >> 1) * 8, k = kk + (q & 1) * 8;
      uint32_t r[4];
      if constexpr (kBK)
        ptx::ldmatrix_x4(r, sb + (n + r8) * kSB + k);
      else
        ptx::ldmatrix_x4_trans(r, sb + (k + r8) * kSB + n);
      bfr[2 * p][0] = r[0];
      bfr[2 * p][1] = r[1];
      bfr[2 * p + 1][0] = r[2];
      bfr[2 * p + 1][1] = r[3];
    }
#pragma unroll
    for (int i = 0; i < Cfg::kMmaM; ++i)
#pragma unroll
      for (int j = 0; j < Cfg::kMmaN; ++j) ptx::mma_bf16_16816(acc[i][j], af[i], bfr[j]);
  } else {
    // tf32: a0 (g, t), a1 (g + 8, t), a2 (g, t + 4), a3 (g + 8, t + 4); b0 (k t, n g), b1 (k t + 4).
    const int g = lane >> 2, t = lane & 3;
    auto at = [&](int m, int k) { return kAK ? sa[m * kSA + k] : sa[k * kSA + m]; };
    auto bt = [&](int k, int n) { return kBK ? sb[n * kSB + k] : sb[k * kSB + n]; };
#pragma unroll
    for (int i = 0; i < Cfg::kMmaM; ++i) {
      const int m = wm0 + i * 16 + g;
      af[i][0] = ptx::to_tf32(at(m, kk + t));
      af[i][1] = ptx::to_tf32(at(m + 8, kk + t));
      af[i][2] = ptx::to_tf32(at(m, kk + t + 4));
      af[i][3] = ptx::to_tf32(at(m + 8, kk + t + 4));
    }
#pragma unroll
    for (int j = 0; j < Cfg::kMmaN; ++j) {
      const int n = wn0 + j * 8 + g;
      bfr[j][0] = ptx::to_tf32(bt(kk + t, n));
      bfr[j][1] = ptx::to_tf32(bt(kk + t + 4, n));
    }
#pragma unroll
    for (int i = 0; i < Cfg::kMmaM; ++i)
#pragma unroll
      for (int j = 0; j < Cfg::kMmaN; ++j) ptx::mma_tf32_1688(acc[i][j], af[i], bfr[j]);
  }
}

// C[m, n] over an M x N x K problem; one CTA per kBM x kBN tile, tiles in grouped order.
template <class Cfg, typename E, class OpA, class OpB>
__global__ void __launch_bounds__(Cfg::kThreads) mma_gemm_kernel(OpA a, OpB b, GemmEpilogue ep, int64_t m, int64_t n,
                                                                 int64_t k) {
  static_assert(sizeof(E) == Cfg::kElemBytes, "element size");
  constexpr bool kAK = OpA::k_contiguous, kBK = OpB::k_contiguous;
  constexpr int kBM = Cfg::kBM, kBN = Cfg::kBN, kBKs = Cfg::kBK, kStages = Cfg::kStages, kThreads = Cfg::kThreads;
  constexpr int kSA = Cfg::stride(kAK, kBM), kSB = Cfg::stride(kBK, kBN);
  constexpr int kTileA = Cfg::tile_elems(kAK, kBM), kTileB = Cfg::tile_elems(kBK, kBN);

  extern __shared__ __align__(16) unsigned char smem_raw[];
  E* sa = reinterpret_cast<E*>(smem_raw);
  E* sb = sa + kStages * kTileA;

  const int64_t tiles_m = ceil_div(m, kBM), tiles_n = ceil_div(n, kBN);
  const TileCoord tile = grouped_tile(blockIdx.x, tiles_m, tiles_n, 8);
  const int64_t m0 = tile.m * kBM, n0 = tile.n * kBN;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int wm0 = (warp / Cfg::kWarpsN) * Cfg::kWM, wn0 = (warp % Cfg::kWarpsN) * Cfg::kWN;

  auto load_stage = [&](int stage, int64_t kt) {
    const int64_t k0 = kt * kBKs;
    E* ta = sa + stage * kTileA;
    E* tb = sb + stage * kTileB;
    if constexpr (kAK)
      load_tile<kBM, kBKs, kThreads>(ta, kSA, a, m0, k0, tid);
    else
      load_tile<kBKs, kBM, kThreads>(ta, kSA, a, k0, m0, tid);
    if constexpr (kBK)
      load_tile<kBN, kBKs, kThreads>(tb, kSB, b, n0, k0, tid);
    else
      load_tile<kBKs, kBN, kThreads>(tb, kSB, b, k0, n0, tid);
  };

  float acc[Cfg::kMmaM][Cfg::kMmaN][4];
#pragma unroll
  for (int i = 0; i < Cfg::kMmaM; ++i)
#pragma unroll
    for (int j = 0; j < Cfg::kMmaN; ++j)
#pragma unroll
      for (int r = 0; r < 4; ++r) acc[i][j][r] = 0.0f;

  const int64_t k_tiles = ceil_div(k, kBKs);
  // Prologue: stages 0 .. kStages-2 in flight; every iteration commits exactly one group (empty
  // past the end) so wait_group's count stays in step with the tile index.
#pragma unroll
  for (int s = 0; s < kStages - 1; ++s) {
    if (s < k_tiles) load_stage(s, s);
    ptx::cp_async_commit();
  }
  for (int64_t kt = 0; kt < k_tiles; ++kt) {
    ptx::cp_async_wait<kStages - 2>();  // tile kt has landed (this thread's copies)
    __syncthreads();                    // ... everyone's; and stage (kt - 1) % kStages is free
    const int64_t next = kt + kStages - 1;
    if (next < k_tiles) load_stage(static_cast<int>(next % kStages), next);
    ptx::cp_async_commit();
    const int stage = static_cast<int>(kt % kStages);
    const E* ta = sa + stage * kTileA;
    const E* tb = sb + stage * kTileB;
#pragma unroll
    for (int kk = 0; kk < kBKs; kk += Cfg::kMmaK) mma_step<Cfg, E, kAK, kBK>(ta, tb, kk, wm0, wn0, lane, acc);
  }
  ptx::cp_async_wait<0>();

  // Accumulator (i, j): c0 c1 at (g, 2t + {0, 1}), c2 c3 at (g + 8, 2t + {0, 1}).
  const int g = lane >> 2, t = lane & 3;
#pragma unroll
  for (int i = 0; i < Cfg::kMmaM; ++i) {
#pragma unroll
    for (int j = 0; j < Cfg::kMmaN; ++j) {
      const int64_t r = m0 + wm0 + i * 16 + g;
      const int64_t col = n0 + wn0 + j * 8 + 2 * t;
      ep.store_pair(r, col, acc[i][j][0], acc[i][j][1], m, n);
      ep.store_pair(r + 8, col, acc[i][j][2], acc[i][j][3], m, n);
    }
  }
}

}  // namespace kiln::kernels::cuda
