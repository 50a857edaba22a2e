#pragma once
// Tiling arithmetic of the tensor-core GEMM, shared by the kernels and the host code that sizes
// their launches. Plain C++ (host and device), so it is unit-tested on any machine.
#include <cstddef>
#include <cstdint>

#if defined(__CUDACC__)
#define KILN_TILING_FN __host__ __device__ constexpr
#else
#define KILN_TILING_FN constexpr
#endif

namespace kiln::kernels::cuda {

// One CTA tile configuration. kElemBytes is 2 (bf16) or 4 (fp32 data computed as tf32). A CTA of
// (kBM / kWM) x (kBN / kWN) warps computes a kBM x kBN tile of C, each warp a kWM x kWN block of
// 16x8 mma tiles, walking K in steps of kBK through a kStages-deep cp.async ring.
template <int kElemBytes_, int kBM_, int kBN_, int kWM_, int kWN_, int kStages_>
struct GemmTile {
  static constexpr int kElemBytes = kElemBytes_;
  static constexpr int kBM = kBM_, kBN = kBN_, kWM = kWM_, kWN = kWN_, kStages = kStages_;
  static constexpr int kBK = 64 / kElemBytes;         // 64 bytes of K per stage: 32 bf16 or 16 fp32
  static constexpr int kMmaK = kElemBytes == 2 ? 16 : 8;  // m16n8k16 (bf16) or m16n8k8 (tf32)
  static constexpr int kVec = 16 / kElemBytes;        // elements per 16-byte cp.async
  static constexpr int kWarpsM = kBM / kWM, kWarpsN = kBN / kWN;
  static constexpr int kThreads = kWarpsM * kWarpsN * 32;
  static constexpr int kMmaM = kWM / 16, kMmaN = kWN / 8;  // mma tiles per warp
  // Shared-memory row strides (elements). A k-contiguous tile [rows][kBK] is padded by 16 bytes, an
  // m/n-contiguous tile [kBK][cols] by 8 elements: ldmatrix's eight 16-byte rows and the tf32
  // path's scalar fragment loads then hit 32 distinct banks.
  static constexpr int kPadK = 16 / kElemBytes;
  static constexpr int kPadMN = 8;
  static constexpr int stride(bool k_contiguous, int mn) { return k_contiguous ? kBK + kPadK : mn + kPadMN; }
  static constexpr int tile_elems(bool k_contiguous, int mn) { return k_contiguous ? mn * (kBK + kPadK) : kBK * (mn + kPadMN); }
  static constexpr size_t smem_bytes(bool a_k_contiguous, bool b_k_contiguous) {
    return static_cast<size_t>(kStages) * (tile_elems(a_k_contiguous, kBM) + tile_elems(b_k_contiguous, kBN)) *
           kElemBytes;
  }
  static_assert(kBM % kWM == 0 && kBN % kWN == 0 && kWM % 16 == 0 && kWN % 16 == 0, "warp tiling");
  static_assert(kBK % kMmaK == 0 && kStages >= 2, "k tiling");
};

// The CTA tile (m, n) of linear program id `pid`, visiting tiles in groups of `group` tile rows
// column by column, so consecutive CTAs share A rows and B columns in L2.
struct TileCoord {
  int64_t m, n;
};
KILN_TILING_FN TileCoord grouped_tile(int64_t pid, int64_t tiles_m, int64_t tiles_n, int64_t group) {
  const int64_t per_group = group * tiles_n;
  const int64_t first_m = pid / per_group * group;
  const int64_t rows = tiles_m - first_m < group ? tiles_m - first_m : group;
  const int64_t in_group = pid % per_group;
  return {first_m + in_group % rows, in_group / rows};
}

KILN_TILING_FN int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Which tile configuration a problem gets: the large 128x128 tile when it yields at least one
// wave of CTAs on `sms` multiprocessors, the small 64x64 one otherwise.
KILN_TILING_FN bool use_large_tile(int64_t m, int64_t n, int sms) {
  return ceil_div(m, 128) * ceil_div(n, 128) >= sms;
}

// Elements of a 16-byte chunk starting at `inner` that lie inside [0, extent): 0..vec.
KILN_TILING_FN int chunk_valid(int64_t inner, int64_t extent, int vec) {
  return inner >= extent ? 0 : (extent - inner < vec ? static_cast<int>(extent - inner) : vec);
}

}  // namespace kiln::kernels::cuda
