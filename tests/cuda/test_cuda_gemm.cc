// The tensor-core GEMM (Kiln's kernels and the cuBLASLt switch) against a double reference on
// odd shapes, every transpose, aligned and unaligned leading dimensions, with bias, activation
// and beta; outputs poisoned before each run. Inputs are rounded on the host to what the tensor
// cores multiply (bf16 or tf32), so each element is checked to 1e-5 (cuda_test_util.h). Every
// case runs on a created stream, not the legacy default one.
#include <gtest/gtest.h>

#include <algorithm>
#include <tuple>

#include "core/cuda/stream.h"
#include "core/stream.h"
#include "kernels/cuda/device_info.h"
#include "kernels/cuda/gemm.h"
#include "kernels/cuda/gemm_tiling.h"
#include "tests/cuda/cuda_test_util.h"
#include "tests/kernels/test_util.h"

namespace kiln {
namespace {

using kernels::Activation;
using namespace cuda_test;

struct Case {
  int64_t m, n, k;
  bool ta, tb;
  int64_t pad;  // extra leading-dimension elements (odd -> the unaligned path)
  float alpha, beta;
  bool bias;
  Activation act;
  int64_t offset = 0;  // elements between each buffer's (256-byte aligned) start and A, B, C
};

// C = act(alpha op(A) op(B) + beta C0 + bias) in double from the values the GPU sees. op(A) and
// op(B)^T are first copied to contiguous [m][k] and [n][k] arrays, so the dot products stream
// (the 128-tile test's shapes take seconds, not minutes).
std::vector<double> reference(const Case& c, const std::vector<float>& a, int64_t lda, const std::vector<float>& b,
                              int64_t ldb, const std::vector<float>& c0, int64_t ldc, const std::vector<float>& bias) {
  std::vector<double> at(static_cast<size_t>(c.m * c.k)), bt(static_cast<size_t>(c.n * c.k));
  for (int64_t i = 0; i < c.m; ++i)
    for (int64_t p = 0; p < c.k; ++p) at[i * c.k + p] = c.ta ? a[p * lda + i] : a[i * lda + p];
  for (int64_t j = 0; j < c.n; ++j)
    for (int64_t p = 0; p < c.k; ++p) bt[j * c.k + p] = c.tb ? b[j * ldb + p] : b[p * ldb + j];
  std::vector<double> out(static_cast<size_t>(c.m * ldc), 0.0);
  for (int64_t i = 0; i < c.m; ++i)
    for (int64_t j = 0; j < c.n; ++j) {
      const double* ai = at.data() + i * c.k;
      const double* bj = bt.data() + j * c.k;
      double s = 0.0;
      for (int64_t p = 0; p < c.k; ++p) s += ai[p] * bj[p];
      double v = c.alpha * s + (c.beta != 0.0f ? c.beta * c0[i * ldc + j] : 0.0) + (c.bias ? bias[j] : 0.0);
      out[i * ldc + j] = test::ref_activation(c.act, 0.01, v);
    }
  return out;
}

template <typename E>
void run_case(const Case& c, bool cublas, uint64_t seed) {
  // Leading dimensions at least 1 (BLAS rule; check_args rejects 0 even when k = 0).
  const int64_t lda = std::max<int64_t>(1, c.ta ? c.m : c.k) + c.pad,
                ldb = std::max<int64_t>(1, c.tb ? c.k : c.n) + c.pad, ldc = c.n + c.pad;
  const int64_t a_rows = c.ta ? c.k : c.m, b_rows = c.tb ? c.n : c.k;
  const size_t off = static_cast<size_t>(c.offset);
  std::vector<float> a = random_floats(static_cast<size_t>(a_rows * lda), seed);
  std::vector<float> b = random_floats(static_cast<size_t>(b_rows * ldb), seed + 1);
  std::vector<float> c0 = random_floats(static_cast<size_t>(c.m * ldc), seed + 2);
  std::vector<float> bias = random_floats(static_cast<size_t>(c.n), seed + 3);
  const bool bf16 = sizeof(E) == 2;
  // What the tensor cores multiply, so the double reference sees the same operands.
  if (bf16) round_bf16_inplace(a), round_bf16_inplace(b);
  else round_tf32_inplace(a), round_tf32_inplace(b);
  cuda::CudaStream stream(0);
  const Stream s = stream.view();
  std::vector<E> ha(off + a.size()), hb(off + b.size());
  for (size_t i = 0; i < a.size(); ++i) ha[off + i] = E(a[i]);
  for (size_t i = 0; i < b.size(); ++i) hb[off + i] = E(b[i]);
  std::vector<float> hc(off + c0.size(), 0.0f);
  std::copy(c0.begin(), c0.end(), hc.begin() + c.offset);
  DeviceBuffer<E> dA(ha), dB(hb);
  DeviceBuffer<float> dC(hc.size()), dBias(bias);
  if (c.beta != 0.0f) dC.upload(hc);  // else C stays NaN-poisoned: beta = 0 must not read it
  const E* pa = dA.get() + off;
  const E* pb = dB.get() + off;
  float* pc = dC.get() + off;
  if (cublas)
    kernels::cuda::gemm_cublaslt<E>(s, c.ta, c.tb, c.m, c.n, c.k, c.alpha, pa, lda, pb, ldb, c.beta, pc, ldc,
                                    c.bias ? dBias.get() : nullptr, c.act, 0.01f);
  else
    kernels::cuda::gemm_kiln<E>(s, c.ta, c.tb, c.m, c.n, c.k, c.alpha, pa, lda, pb, ldb, c.beta, pc, ldc,
                                c.bias ? dBias.get() : nullptr, c.act, 0.01f);
  stream.synchronize();
  std::vector<float> got = dC.download();
  std::vector<double> want = reference(c, a, lda, b, ldb, c0, ldc, bias);
  // Compare the m x n block only (the padding columns are not part of C).
  std::vector<float> g;
  std::vector<double> w;
  for (int64_t i = 0; i < c.m; ++i)
    for (int64_t j = 0; j < c.n; ++j) {
      g.push_back(got[off + i * ldc + j]);
      w.push_back(want[i * ldc + j]);
    }
  const double tol = bf16 ? kTolBf16 : kTolTf32;
  EXPECT_TRUE(close_elementwise(g, w, tol))
      << (cublas ? "cuBLASLt " : "kiln ") << (bf16 ? "bf16 " : "tf32 ") << c.m << "x" << c.n << "x" << c.k
      << " ta=" << c.ta << " tb=" << c.tb << " pad=" << c.pad << " offset=" << c.offset << " alpha=" << c.alpha
      << " beta=" << c.beta << " act=" << static_cast<int>(c.act);
}

std::vector<Case> cases() {
  std::vector<Case> out;
  const std::vector<std::tuple<int64_t, int64_t, int64_t>> shapes = {
      {37, 53, 71}, {128, 128, 64}, {1, 200, 33}, {257, 129, 300}, {16, 8, 16}, {300, 700, 520}};
  for (auto [m, n, k] : shapes)
    for (bool ta : {false, true})
      for (bool tb : {false, true})
        for (int64_t pad : {int64_t{0}, int64_t{8}, int64_t{3}}) out.push_back({m, n, k, ta, tb, pad, 1.0f, 0.0f, false, Activation::none});
  // Epilogues.
  for (Activation act : test::all_activations()) out.push_back({45, 67, 89, false, false, 0, 1.0f, 0.0f, true, act});
  out.push_back({64, 96, 40, false, true, 0, 0.5f, 0.75f, true, Activation::relu});
  out.push_back({33, 17, 9, true, false, 1, -1.5f, 2.0f, false, Activation::tanh});
  return out;
}

TEST(CudaGemm, Tf32MatchesDoubleReference) {
  KILN_REQUIRE_GPU();
  uint64_t seed = 1;
  for (const Case& c : cases()) run_case<float>(c, false, seed += 7);
}

TEST(CudaGemm, Bf16MatchesDoubleReference) {
  KILN_REQUIRE_GPU();
  uint64_t seed = 1000;
  for (const Case& c : cases()) run_case<__nv_bfloat16>(c, false, seed += 7);
}

TEST(CudaGemm, CublasLtBackendMatchesDoubleReference) {
  KILN_REQUIRE_GPU();
  uint64_t seed = 5000;
  for (const Case& c : cases()) {
    if (c.pad % 2 == 1) continue;  // the baseline runs aligned layouts; odd ones test Kiln's element path
    run_case<float>(c, true, seed += 7);
    run_case<__nv_bfloat16>(c, true, seed += 7);
  }
}

// A few small problems through every layout, both precisions, aligned and odd leading
// dimensions: the main loop (cp.async ring, barriers, fragments) in seconds, for the
// compute-sanitizer race, sync and init checks of scripts/gpu_check.sh tier 2.
TEST(CudaGemm, SmallEveryLayout) {
  KILN_REQUIRE_GPU();
  uint64_t seed = 900;
  for (auto [m, n, k] : std::vector<std::tuple<int64_t, int64_t, int64_t>>{{37, 53, 71}, {70, 130, 99}})
    for (bool ta : {false, true})
      for (bool tb : {false, true})
        for (int64_t pad : {int64_t{0}, int64_t{3}}) {
          const Case c{m, n, k, ta, tb, pad, 1.0f, 0.5f, true, Activation::relu};
          run_case<float>(c, false, seed += 7);
          run_case<__nv_bfloat16>(c, false, seed += 7);
        }
}

TEST(CudaGemm, KZeroAndAlphaZeroOnlyScaleC) {
  KILN_REQUIRE_GPU();
  // k = 0 with lda = ldb = 1 (was lda = 0, which check_args rejects), both layouts of A.
  run_case<float>({19, 23, 0, false, false, 0, 1.0f, 0.5f, true, Activation::none}, false, 77);
  run_case<float>({19, 23, 0, true, true, 0, 1.0f, 0.5f, false, Activation::none}, false, 79);
  run_case<float>({19, 23, 31, false, false, 0, 0.0f, 0.5f, false, Activation::none}, false, 78);
}

// The 128x128 tile is chosen when it gives at least one CTA per multiprocessor (132 on an H100
// SXM). Odd m, n, k (edge tiles in both directions, a K tail), every transpose, leading
// dimensions unpadded (odd: the element-load path) and padded, alpha and beta not 1 or 0, bias.
TEST(CudaGemm, Tile128OnOddShapesEveryLayout) {
  KILN_REQUIRE_GPU();
  const int64_t m = 1409, n = 1427, k = 99;  // 12 x 12 = 144 tiles of 128
  ASSERT_TRUE(kernels::cuda::use_large_tile(m, n, kernels::cuda::sm_count()))
      << "this GPU has " << kernels::cuda::sm_count() << " SMs: grow m, n to reach the 128x128 tile";
  uint64_t seed = 300;
  for (bool ta : {false, true})
    for (bool tb : {false, true})
      for (int64_t pad : {int64_t{0}, int64_t{5}}) {
        const Case c{m, n, k, ta, tb, pad, -0.75f, 0.5f, true, Activation::none};
        run_case<float>(c, false, seed += 7);
        run_case<__nv_bfloat16>(c, false, seed += 7);
      }
}

// cuBLASLt plans are chosen for the pointers' alignment: a plan made for 256-byte aligned
// operands must not be reused for sub-matrices that start 1 or 2 elements in (the alignment is
// in the plan key and in the preference). Aligned first, so the aligned plan is in the cache.
TEST(CudaGemm, CublasLtOffsetSubMatrices) {
  KILN_REQUIRE_GPU();
  uint64_t seed = 700;
  for (int64_t offset : {int64_t{0}, int64_t{1}, int64_t{2}, int64_t{0}}) {
    Case c{96, 80, 64, false, true, 8, 1.0f, 0.5f, true, Activation::relu};
    c.offset = offset;
    run_case<float>(c, true, seed += 7);
    run_case<__nv_bfloat16>(c, true, seed += 7);
    run_case<float>(c, false, seed += 7);  // Kiln's kernels on the same offsets
  }
}

TEST(CudaGemm, LargeSquareAgreesWithCublasLt) {
  KILN_REQUIRE_GPU();
  // Exercises the 128x128 tile (enough CTAs for every multiprocessor) on a compute-bound size.
  run_case<__nv_bfloat16>({2048, 2048, 512, false, false, 0, 1.0f, 0.0f, false, Activation::none}, false, 91);
  run_case<float>({2048, 1536, 256, false, true, 0, 1.0f, 0.0f, true, Activation::gelu}, false, 92);
}

TEST(CudaGemm, BackendSwitch) {
  KILN_REQUIRE_GPU();
  const auto saved = kernels::cuda::gemm_backend();
  kernels::cuda::set_gemm_backend(kernels::cuda::GemmBackend::cublaslt);
  EXPECT_EQ(kernels::cuda::gemm_backend(), kernels::cuda::GemmBackend::cublaslt);
  kernels::cuda::set_gemm_backend(saved);
}

}  // namespace
}  // namespace kiln
