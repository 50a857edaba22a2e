#include <gtest/gtest.h>

#include <cmath>

#include "kernels/optimizer.h"
#include "tests/kernels/test_util.h"

namespace kiln {
namespace {

using kernels::AdamHyper;
using kernels::SgdHyper;
using test::cast;
using test::cpu;
using test::random_vec;

constexpr int64_t kN = 10007;
constexpr int kSteps = 4;

void ref_sgd(std::vector<double>& p, const std::vector<double>& g, std::vector<double>& v, const SgdHyper& h) {
  for (size_t i = 0; i < p.size(); ++i) {
    const double gi = g[i] + double{h.weight_decay} * p[i];
    v[i] = double{h.momentum} * v[i] + gi;
    p[i] -= double{h.lr} * (h.nesterov ? gi + double{h.momentum} * v[i] : v[i]);
  }
}

// Adam/AdamW on element i of p; shared by the dense and the row-sparse references.
void ref_adam_element(double& p, double g, double& m, double& v, const AdamHyper& h) {
  const double lr = h.lr, b1 = h.beta1, b2 = h.beta2, eps = h.eps, wd = h.weight_decay;
  if (!h.decoupled_weight_decay) g += wd * p;
  m = b1 * m + (1 - b1) * g;
  v = b2 * v + (1 - b2) * g * g;
  const double mhat = m / (1 - std::pow(b1, h.step)), vhat = v / (1 - std::pow(b2, h.step));
  if (h.decoupled_weight_decay) p -= lr * wd * p;
  p -= lr * mhat / (std::sqrt(vhat) + eps);
}

template <typename T>
void check_sgd(const SgdHyper& h, double tol) {
  auto p = random_vec(kN, 121), v = random_vec(kN, 122);
  auto pt = cast<T>(p), vt = cast<T>(v);
  p = cast<double>(pt);
  v = cast<double>(vt);
  for (int step = 0; step < kSteps; ++step) {
    const auto g = cast<double>(cast<T>(random_vec(kN, 123 + step)));
    const auto gt = cast<T>(g);
    ref_sgd(p, g, v, h);
    kernels::sgd_update<T>(cpu(), kN, pt.data(), gt.data(), vt.data(), h);
  }
  EXPECT_REL_NEAR(pt, p, tol);
  EXPECT_REL_NEAR(vt, v, tol);
}

TEST(Sgd, MomentumNesterovWeightDecay) {
  for (float momentum : {0.0f, 0.9f})
    for (bool nesterov : {false, true})
      for (float wd : {0.0f, 0.01f}) {
        SgdHyper h;
        h.lr = 0.05f;
        h.momentum = momentum;
        h.nesterov = nesterov;
        h.weight_decay = wd;
        SCOPED_TRACE(::testing::Message() << "momentum=" << momentum << " nesterov=" << nesterov << " wd=" << wd);
        check_sgd<float>(h, 1e-6);
        check_sgd<double>(h, 1e-14);
      }
}

TEST(Sgd, NoVelocityBuffer) {
  SgdHyper h;
  h.lr = 0.1f;
  h.weight_decay = 0.5f;
  std::vector<double> p = {1.0, -2.0}, g = {0.5, 0.25};
  kernels::sgd_update<double>(cpu(), 2, p.data(), g.data(), nullptr, h);
  const double lr = h.lr, wd = h.weight_decay;
  EXPECT_DOUBLE_EQ(p[0], 1.0 - lr * (0.5 + wd * 1.0));
  EXPECT_DOUBLE_EQ(p[1], -2.0 - lr * (0.25 + wd * -2.0));
}

template <typename T>
void check_adam(AdamHyper h, double tol) {
  auto pt = cast<T>(random_vec(kN, 131));
  std::vector<T> mt(kN, T(0)), vt(kN, T(0));
  auto p = cast<double>(pt);
  std::vector<double> m(kN, 0.0), v(kN, 0.0);
  for (int step = 1; step <= kSteps; ++step) {
    h.step = step;
    const auto g = cast<double>(cast<T>(random_vec(kN, 132 + step)));
    const auto gt = cast<T>(g);
    for (int64_t i = 0; i < kN; ++i) ref_adam_element(p[i], g[i], m[i], v[i], h);
    kernels::adam_update<T>(cpu(), kN, pt.data(), gt.data(), mt.data(), vt.data(), h);
  }
  EXPECT_REL_NEAR(pt, p, tol);
  EXPECT_REL_NEAR(mt, m, tol);
  EXPECT_REL_NEAR(vt, v, tol);
}

TEST(Adam, AdamAndAdamW) {
  for (bool decoupled : {false, true})
    for (float wd : {0.0f, 0.1f}) {
      AdamHyper h;
      h.lr = 0.01f;
      h.weight_decay = wd;
      h.decoupled_weight_decay = decoupled;
      SCOPED_TRACE(::testing::Message() << "decoupled=" << decoupled << " wd=" << wd);
      check_adam<float>(h, 1e-5);
      check_adam<double>(h, 1e-12);
    }
}

TEST(Adam, FirstStepMovesByLearningRate) {
  // With bias correction, step 1 moves each parameter by ~lr * sign(g).
  AdamHyper h;
  h.lr = 0.01f;
  std::vector<float> p = {1.0f, 1.0f}, g = {3.0f, -0.001f}, m(2, 0.0f), v(2, 0.0f);
  kernels::adam_update<float>(cpu(), 2, p.data(), g.data(), m.data(), v.data(), h);
  EXPECT_NEAR(p[0], 0.99f, 1e-6);
  EXPECT_NEAR(p[1], 1.01f, 1e-4);
}

// Sparse updates: touched rows match the dense formulas, untouched rows stay bit-identical.
struct SparseCase {
  int64_t rows = 29, dim = 7;
  std::vector<int64_t> ids = {17, 3, 28, 0, 9};  // unique, any order
};

template <typename T>
void check_sparse_adagrad(double tol) {
  const SparseCase sc;
  const int64_t count = static_cast<int64_t>(sc.ids.size());
  auto table = cast<T>(random_vec(sc.rows * sc.dim, 141));
  auto acc = cast<T>(random_vec(sc.rows * sc.dim, 142, 0.0, 1.0));
  const auto grads = cast<T>(random_vec(count * sc.dim, 143));
  auto want_table = cast<double>(table), want_acc = cast<double>(acc);
  const float lr = 0.1f, eps = 1e-8f;
  for (int64_t u = 0; u < count; ++u)
    for (int64_t d = 0; d < sc.dim; ++d) {
      const int64_t i = sc.ids[u] * sc.dim + d;
      const double g = grads[u * sc.dim + d];
      want_acc[i] += g * g;
      want_table[i] -= double{lr} * g / (std::sqrt(want_acc[i]) + double{eps});
    }
  const auto before = table;
  kernels::sparse_adagrad_update<T>(cpu(), sc.dim, table.data(), acc.data(), sc.ids.data(), count, grads.data(), lr,
                                    eps);
  EXPECT_REL_NEAR(table, want_table, tol);
  EXPECT_REL_NEAR(acc, want_acc, tol);
  for (int64_t r : {1, 2, 27})
    for (int64_t d = 0; d < sc.dim; ++d) EXPECT_EQ(table[r * sc.dim + d], before[r * sc.dim + d]);
}

TEST(SparseAdagrad, MatchesDenseOnTouchedRows) {
  check_sparse_adagrad<float>(1e-6);
  check_sparse_adagrad<double>(1e-14);
}

template <typename T>
void check_sparse_adam(bool decoupled, double tol) {
  const SparseCase sc;
  const int64_t count = static_cast<int64_t>(sc.ids.size());
  auto table = cast<T>(random_vec(sc.rows * sc.dim, 151));
  auto m = cast<T>(random_vec(sc.rows * sc.dim, 152, -0.1, 0.1));
  auto v = cast<T>(random_vec(sc.rows * sc.dim, 153, 0.0, 0.1));
  auto want_table = cast<double>(table), want_m = cast<double>(m), want_v = cast<double>(v);
  const auto before_m = m;
  AdamHyper h;
  h.lr = 0.02f;
  h.weight_decay = 0.05f;
  h.decoupled_weight_decay = decoupled;
  for (int64_t step = 3; step <= 5; ++step) {
    h.step = step;
    const auto grads = cast<T>(random_vec(count * sc.dim, 154 + step));
    for (int64_t u = 0; u < count; ++u)
      for (int64_t d = 0; d < sc.dim; ++d) {
        const int64_t i = sc.ids[u] * sc.dim + d;
        ref_adam_element(want_table[i], grads[u * sc.dim + d], want_m[i], want_v[i], h);
      }
    kernels::sparse_adam_update<T>(cpu(), sc.dim, table.data(), m.data(), v.data(), sc.ids.data(), count, grads.data(),
                                   h);
  }
  EXPECT_REL_NEAR(table, want_table, tol);
  EXPECT_REL_NEAR(m, want_m, tol);
  EXPECT_REL_NEAR(v, want_v, tol);
  // Lazy: moments of untouched rows do not decay.
  for (int64_t d = 0; d < sc.dim; ++d) EXPECT_EQ(m[1 * sc.dim + d], before_m[1 * sc.dim + d]);
}

TEST(SparseAdam, MatchesDenseOnTouchedRows) {
  for (bool decoupled : {false, true}) {
    check_sparse_adam<float>(decoupled, 1e-5);
    check_sparse_adam<double>(decoupled, 1e-12);
  }
}

}  // namespace
}  // namespace kiln
