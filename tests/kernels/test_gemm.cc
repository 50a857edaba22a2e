#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include "kernels/gemm.h"
#include "tests/kernels/test_util.h"

namespace kiln {
namespace {

using kernels::Activation;
using test::cast;
using test::cpu;
using test::random_vec;

struct GemmCase {
  bool ta = false, tb = false;
  int64_t m = 37, n = 53, k = 29;
  double alpha = 1.0, beta = 0.0;
  bool bias = false;
  Activation act = Activation::none;
  float slope = 0.01f;
};

// Row strides padded past the minimum so the kernels must honour lda/ldb/ldc.
struct Layout {
  int64_t lda, ldb, ldc, a_rows, b_rows;
};
Layout layout(const GemmCase& g) {
  Layout l;
  l.lda = (g.ta ? g.m : g.k) + 3;
  l.ldb = (g.tb ? g.k : g.n) + 2;
  l.ldc = g.n + 5;
  l.a_rows = g.ta ? g.k : g.m;
  l.b_rows = g.tb ? g.n : g.k;
  return l;
}

// Straightforward triple loop in double.
std::vector<double> ref_gemm(const GemmCase& g, const Layout& l, const std::vector<double>& a,
                             const std::vector<double>& b, std::vector<double> c, const std::vector<double>& bias) {
  for (int64_t i = 0; i < g.m; ++i) {
    for (int64_t j = 0; j < g.n; ++j) {
      double sum = 0.0;
      for (int64_t p = 0; p < g.k; ++p) {
        const double av = g.ta ? a[p * l.lda + i] : a[i * l.lda + p];
        const double bv = g.tb ? b[j * l.ldb + p] : b[p * l.ldb + j];
        sum += av * bv;
      }
      double v = g.alpha * sum + (g.beta == 0.0 ? 0.0 : g.beta * c[i * l.ldc + j]) + (g.bias ? bias[j] : 0.0);
      c[i * l.ldc + j] = test::ref_activation(g.act, g.slope, v);
    }
  }
  return c;
}

// Runs gemm<T> on case g and checks it against the double reference. With beta = 0 the output
// starts as NaN (never read); otherwise with random values to accumulate onto. Padding columns of
// C must come back untouched.
template <typename T>
void check_gemm(const GemmCase& g, double tol) {
  const Layout l = layout(g);
  auto a = random_vec(l.a_rows * l.lda, 1), b = random_vec(l.b_rows * l.ldb, 2), bias = random_vec(g.n, 3);
  std::vector<double> c0 = random_vec(g.m * l.ldc, 4);
  std::vector<T> c(c0.size());
  for (int64_t i = 0; i < g.m; ++i) {
    for (int64_t j = 0; j < l.ldc; ++j) {
      const bool pad = j >= g.n;
      c[i * l.ldc + j] =
          (g.beta == 0.0 && !pad) ? std::numeric_limits<T>::quiet_NaN() : static_cast<T>(c0[i * l.ldc + j]);
    }
  }
  auto at = cast<T>(a), bt = cast<T>(b), biast = cast<T>(bias);
  // The reference sees the same rounded inputs as the kernel.
  auto want = ref_gemm(g, l, cast<double>(at), cast<double>(bt), cast<double>(std::vector<T>(c0.begin(), c0.end())),
                       cast<double>(biast));
  kernels::gemm<T>(cpu(), g.ta, g.tb, g.m, g.n, g.k, static_cast<T>(g.alpha), at.data(), l.lda, bt.data(), l.ldb,
                   static_cast<T>(g.beta), c.data(), l.ldc, g.bias ? biast.data() : nullptr, g.act, g.slope);
  SCOPED_TRACE(::testing::Message() << "ta=" << g.ta << " tb=" << g.tb << " beta=" << g.beta << " bias=" << g.bias
                                    << " act=" << static_cast<int>(g.act));
  EXPECT_REL_NEAR(c, want, tol);
}

TEST(Gemm, FloatAllTransposes) {
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      GemmCase g;
      g.ta = ta;
      g.tb = tb;
      g.alpha = 1.3;
      check_gemm<float>(g, 1e-4);
    }
}

TEST(Gemm, DoubleAllTransposes) {
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      GemmCase g;
      g.ta = ta;
      g.tb = tb;
      g.alpha = 0.7;
      check_gemm<double>(g, 1e-12);
    }
}

TEST(Gemm, BetaOneAccumulates) {
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      GemmCase g;
      g.ta = ta;
      g.tb = tb;
      g.beta = 1.0;
      check_gemm<float>(g, 1e-4);
      check_gemm<double>(g, 1e-12);
      g.beta = -0.5;
      g.bias = true;
      g.act = Activation::tanh;
      check_gemm<float>(g, 1e-4);
      check_gemm<double>(g, 1e-12);
    }
}

TEST(Gemm, BiasAndEveryActivation) {
  for (Activation act : test::all_activations()) {
    for (bool bias : {false, true}) {
      GemmCase g;
      g.bias = bias;
      g.act = act;
      g.slope = 0.2f;
      check_gemm<float>(g, 1e-4);
      check_gemm<double>(g, 1e-12);
    }
  }
}

TEST(Gemm, LargeParallelEpilogue) {
  // Big enough that oneDNN and the epilogue both split across threads.
  GemmCase g;
  g.m = 301;
  g.n = 257;
  g.k = 131;
  g.bias = true;
  g.act = Activation::gelu;
  check_gemm<float>(g, 1e-4);
  g.tb = true;
  check_gemm<double>(g, 1e-12);
}

TEST(Gemm, DegenerateDepthAppliesBetaAndEpilogue) {
  for (double beta : {0.0, 2.0}) {
    GemmCase g;
    g.k = 0;
    g.beta = beta;
    g.bias = true;
    g.act = Activation::relu;
    check_gemm<float>(g, 1e-6);
    check_gemm<double>(g, 1e-12);
  }
}

TEST(Gemm, Deterministic) {
  const int64_t m = 513, n = 300, k = 777;
  auto a = cast<float>(random_vec(m * k, 7)), b = cast<float>(random_vec(k * n, 8)),
       bias = cast<float>(random_vec(n, 9));
  std::vector<float> c1(m * n), c2(m * n);
  kernels::gemm<float>(cpu(), false, true, m, n, k, 1.0f, a.data(), k, b.data(), k, 0.0f, c1.data(), n, bias.data(),
                       Activation::relu);
  kernels::gemm<float>(cpu(), false, true, m, n, k, 1.0f, a.data(), k, b.data(), k, 0.0f, c2.data(), n, bias.data(),
                       Activation::relu);
  EXPECT_EQ(0, std::memcmp(c1.data(), c2.data(), c1.size() * sizeof(float)));
}

TEST(Gemm, ReportsIsa) {
  const std::string isa = kernels::cpu_gemm_isa();
  EXPECT_FALSE(isa.empty());
  EXPECT_NE(isa, "unknown");
}

}  // namespace
}  // namespace kiln
