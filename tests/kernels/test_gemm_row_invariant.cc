// The inference GEMM: correct against a double reference, and each row's bits independent of the
// batch around it, of its position and of the thread count.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>

#include "core/stream.h"
#include "kernels/cpu/gemm.h"
#include "kernels/gemm.h"
#include "kernels/gemm_packed.h"
#include "tests/kernels/test_util.h"

namespace kiln {
namespace {

using kernels::Activation;

struct Case {
  int64_t m, n, k;
};

std::vector<float> run(const std::vector<float>& a, const std::vector<float>& b, const std::vector<float>& bias,
                       int64_t m, int64_t n, int64_t k, int64_t row0, Activation act) {
  std::vector<float> c = test::poisoned<float>(static_cast<size_t>(m * (n + 3)));
  kernels::gemm_row_invariant<float>(test::cpu(), m, n, k, a.data() + row0 * k, k, b.data(), n, c.data(), n + 3,
                                     bias.data(), act);
  return c;
}

TEST(GemmRowInvariant, MatchesDoubleReference) {
  for (Case cs : {Case{1, 1, 1}, Case{37, 53, 29}, Case{4, 24, 7}, Case{5, 25, 300}, Case{64, 257, 33}}) {
    auto a = test::random_vec<float>(static_cast<size_t>(cs.m * cs.k), 1);
    auto b = test::random_vec<float>(static_cast<size_t>(cs.k * cs.n), 2);
    auto bias = test::random_vec<float>(static_cast<size_t>(cs.n), 3);
    std::vector<float> c = run(a, b, bias, cs.m, cs.n, cs.k, 0, Activation::relu);
    for (int64_t i = 0; i < cs.m; ++i)
      for (int64_t j = 0; j < cs.n; ++j) {
        double want = bias[static_cast<size_t>(j)];
        for (int64_t p = 0; p < cs.k; ++p) want += double(a[static_cast<size_t>(i * cs.k + p)]) * b[static_cast<size_t>(p * cs.n + j)];
        want = std::max(want, 0.0);
        EXPECT_NEAR(c[static_cast<size_t>(i * (cs.n + 3) + j)], want, 1e-5 * (1 + std::abs(want)) * std::sqrt(cs.k))
            << cs.m << "x" << cs.n << "x" << cs.k << " at " << i << "," << j;
      }
  }
}

// The AVX-512 tiles (6 x 64, used where the CPU has AVX-512) give the AVX2 tiles' bits and the
// scalar chain fma(a, b, acc) in k order, for every tile shape and edge: a servable answers the
// same on an AVX2 and an AVX-512 machine.
TEST(GemmRowInvariant, Avx512AndAvx2TilesGiveTheSameBits) {
  std::printf("this CPU: %s\n", kernels::cpu::row_invariant_avx512_available() ? "AVX-512 (6 x 64 tiles)" : "AVX2 (4 x 24 tiles)");
  for (Case cs : {Case{1, 1, 1}, Case{8, 48, 5}, Case{13, 97, 31}, Case{61, 83, 45}, Case{3, 200, 784}, Case{64, 10, 256}}) {
    auto a = test::random_vec<float>(static_cast<size_t>(cs.m * cs.k), 7);
    auto b = test::random_vec<float>(static_cast<size_t>(cs.k * cs.n), 8);
    std::vector<float> chain(static_cast<size_t>(cs.m * cs.n));
    for (int64_t i = 0; i < cs.m; ++i)
      for (int64_t j = 0; j < cs.n; ++j) {
        float acc = 0;
        for (int64_t p = 0; p < cs.k; ++p)
          acc = std::fma(a[static_cast<size_t>(i * cs.k + p)], b[static_cast<size_t>(p * cs.n + j)], acc);
        chain[static_cast<size_t>(i * cs.n + j)] = acc;
      }
    std::vector<float> avx2 = test::poisoned<float>(chain.size());
    kernels::cpu::sgemm_row_invariant_isa(false, cs.m, cs.n, cs.k, a.data(), cs.k, b.data(), cs.n, avx2.data(), cs.n);
    EXPECT_EQ(std::memcmp(avx2.data(), chain.data(), chain.size() * 4), 0) << "AVX2 " << cs.m << "x" << cs.n << "x" << cs.k;
    if (!kernels::cpu::row_invariant_avx512_available()) continue;
    std::vector<float> avx512 = test::poisoned<float>(chain.size());
    kernels::cpu::sgemm_row_invariant_isa(true, cs.m, cs.n, cs.k, a.data(), cs.k, b.data(), cs.n, avx512.data(), cs.n);
    EXPECT_EQ(std::memcmp(avx512.data(), chain.data(), chain.size() * 4), 0)
        << "AVX-512 " << cs.m << "x" << cs.n << "x" << cs.k;
  }
}

TEST(GemmRowInvariant, EveryRowIsTheSameInAnyBatch) {
  const int64_t m = 61, n = 83, k = 45;  // odd: full and edge tiles in both directions
  auto a = test::random_vec<float>(static_cast<size_t>(m * k), 4);
  auto b = test::random_vec<float>(static_cast<size_t>(k * n), 5);
  auto bias = test::random_vec<float>(static_cast<size_t>(n), 6);
  const std::vector<float> whole = run(a, b, bias, m, n, k, 0, Activation::none);
  // Every row alone, and every window of 3 rows starting anywhere, give the same bits.
  for (int64_t i = 0; i < m; ++i) {
    std::vector<float> one = run(a, b, bias, 1, n, k, i, Activation::none);
    EXPECT_EQ(std::memcmp(one.data(), whole.data() + i * (n + 3), static_cast<size_t>(n) * 4), 0) << "row " << i;
  }
  for (int64_t i = 0; i + 3 <= m; i += 5) {
    std::vector<float> three = run(a, b, bias, 3, n, k, i, Activation::none);
    for (int64_t r = 0; r < 3; ++r)
      EXPECT_EQ(std::memcmp(three.data() + r * (n + 3), whole.data() + (i + r) * (n + 3), static_cast<size_t>(n) * 4), 0);
  }
  const int threads = cpu_threads();
  set_cpu_threads(1);
  std::vector<float> serial = run(a, b, bias, m, n, k, 0, Activation::none);
  set_cpu_threads(threads);
  EXPECT_EQ(std::memcmp(serial.data(), whole.data(), whole.size() * 4), 0);
}

// B packed into 64-column panels gives the plain GEMM's bits: one row (the threads split the
// columns) and many (they split the rows), widths that leave a partial last panel, a deep k that
// takes several k blocks, with bias and activation, and with the output in a wider matrix.
TEST(GemmRowInvariant, PackedPanelsGiveThePlainBits) {
  if (!kernels::gemm_row_invariant_packs<float>(test::cpu(), 8, 128)) GTEST_SKIP() << "no AVX-512 on this CPU";
  EXPECT_FALSE(kernels::gemm_row_invariant_packs<float>(test::cpu(), 8, 64));  // one panel: nothing to gain
  EXPECT_FALSE(kernels::gemm_row_invariant_packs<double>(test::cpu(), 8, 128));
  for (Case cs : {Case{1, 256, 3136}, Case{2, 130, 97}, Case{7, 200, 300}, Case{64, 256, 100}, Case{70, 65, 1},
                  Case{3, 1000, 40}}) {
    auto a = test::random_vec<float>(static_cast<size_t>(cs.m * cs.k), 11);
    auto b = test::random_vec<float>(static_cast<size_t>(cs.k * (cs.n + 5)), 12);  // ldb = n + 5
    auto bias = test::random_vec<float>(static_cast<size_t>(cs.n), 13);
    for (const Activation act : {Activation::none, Activation::relu}) {
      std::vector<float> want = test::poisoned<float>(static_cast<size_t>(cs.m * (cs.n + 3)));
      kernels::gemm_row_invariant<float>(test::cpu(), cs.m, cs.n, cs.k, a.data(), cs.k, b.data(), cs.n + 5,
                                         want.data(), cs.n + 3, bias.data(), act);
      std::vector<float> packed(static_cast<size_t>(kernels::packed_b_elems(cs.k, cs.n)), -7.0f);
      kernels::pack_b_row_invariant<float>(test::cpu(), cs.k, cs.n, b.data(), cs.n + 5, packed.data());
      std::vector<float> got = test::poisoned<float>(want.size());
      kernels::gemm_row_invariant_packed<float>(test::cpu(), cs.m, cs.n, cs.k, a.data(), cs.k, packed.data(),
                                                got.data(), cs.n + 3, bias.data(), act);
      for (int64_t i = 0; i < cs.m; ++i)
        EXPECT_EQ(std::memcmp(got.data() + i * (cs.n + 3), want.data() + i * (cs.n + 3), cs.n * sizeof(float)), 0)
            << cs.m << "x" << cs.n << "x" << cs.k << " row " << i;
    }
  }
}

}  // namespace
}  // namespace kiln
