#include <gtest/gtest.h>

#include <cmath>

#include "kernels/batch_norm.h"
#include "tests/kernels/test_util.h"

namespace kiln {
namespace {

using test::cast;
using test::cpu;
using test::random_vec;

struct BnRef {
  std::vector<double> y, mean, inv_std, running_mean, running_var;
};

BnRef ref_training(int64_t rows, int64_t ch, const std::vector<double>& x, const std::vector<double>& gamma,
                   const std::vector<double>& beta, double eps, double momentum, std::vector<double> rm,
                   std::vector<double> rv) {
  BnRef r;
  r.y.resize(rows * ch);
  for (int64_t c = 0; c < ch; ++c) {
    double mean = 0, var = 0;
    for (int64_t i = 0; i < rows; ++i) mean += x[i * ch + c] / rows;
    for (int64_t i = 0; i < rows; ++i) var += (x[i * ch + c] - mean) * (x[i * ch + c] - mean);
    const double inv = 1 / std::sqrt(var / rows + eps);
    r.mean.push_back(mean);
    r.inv_std.push_back(inv);
    for (int64_t i = 0; i < rows; ++i) r.y[i * ch + c] = (x[i * ch + c] - mean) * inv * gamma[c] + beta[c];
    rm[c] = (1 - momentum) * rm[c] + momentum * mean;
    rv[c] = (1 - momentum) * rv[c] + momentum * var / (rows - 1);  // unbiased
  }
  r.running_mean = rm;
  r.running_var = rv;
  return r;
}

template <typename T>
void check_training(int64_t rows, int64_t ch, double tol) {
  // An offset mean makes the one-pass E[x^2] - E[x]^2 shortcut visibly wrong.
  const auto x = cast<double>(cast<T>(random_vec(rows * ch, 81, 2.0, 5.0)));
  const auto gamma = cast<double>(cast<T>(random_vec(ch, 82, 0.5, 1.5)));
  const auto beta = cast<double>(cast<T>(random_vec(ch, 83)));
  const auto rm0 = cast<double>(cast<T>(random_vec(ch, 84))), rv0 = cast<double>(cast<T>(random_vec(ch, 85, 0.5, 2.0)));
  const double eps = 1e-5, momentum = 0.1;
  const BnRef want = ref_training(rows, ch, x, gamma, beta, eps, momentum, rm0, rv0);

  const auto xt = cast<T>(x), gt = cast<T>(gamma), bt = cast<T>(beta);
  auto rm = cast<T>(rm0), rv = cast<T>(rv0);
  auto y = test::poisoned<T>(rows * ch), mean = test::poisoned<T>(ch), inv = test::poisoned<T>(ch);
  kernels::batch_norm_forward_training<T>(cpu(), rows, ch, xt.data(), gt.data(), bt.data(), static_cast<T>(eps),
                                          static_cast<T>(momentum), y.data(), mean.data(), inv.data(), rm.data(),
                                          rv.data());
  EXPECT_REL_NEAR(y, want.y, tol);
  EXPECT_REL_NEAR(mean, want.mean, tol);
  EXPECT_REL_NEAR(inv, want.inv_std, tol);
  EXPECT_REL_NEAR(rm, want.running_mean, tol);
  EXPECT_REL_NEAR(rv, want.running_var, tol);
}

TEST(BatchNorm, TrainingForwardMatchesReference) {
  check_training<double>(37, 5, 1e-12);
  check_training<float>(37, 5, 1e-5);
  check_training<double>(5003, 7, 1e-12);  // several statistics chunks, parallel
  check_training<float>(5003, 7, 1e-5);
}

TEST(BatchNorm, InferenceForwardMatchesReference) {
  const int64_t rows = 41, ch = 6;
  const auto x = random_vec(rows * ch, 86), gamma = random_vec(ch, 87), beta = random_vec(ch, 88);
  const auto rm = random_vec(ch, 89), rv = random_vec(ch, 90, 0.5, 2.0);
  const double eps = 1e-3;
  std::vector<double> want(rows * ch);
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t c = 0; c < ch; ++c)
      want[i * ch + c] = (x[i * ch + c] - rm[c]) / std::sqrt(rv[c] + eps) * gamma[c] + beta[c];
  auto y = test::poisoned<double>(rows * ch);
  kernels::batch_norm_forward_inference<double>(cpu(), rows, ch, x.data(), gamma.data(), beta.data(), rm.data(),
                                                rv.data(), eps, y.data());
  EXPECT_REL_NEAR(y, want, 1e-13);
  const auto xf = cast<float>(x), gf = cast<float>(gamma), bf = cast<float>(beta), rmf = cast<float>(rm),
             rvf = cast<float>(rv);
  auto yf = test::poisoned<float>(rows * ch);
  kernels::batch_norm_forward_inference<float>(cpu(), rows, ch, xf.data(), gf.data(), bf.data(), rmf.data(), rvf.data(),
                                               static_cast<float>(eps), yf.data());
  EXPECT_REL_NEAR(yf, want, 1e-5);
}

TEST(BatchNorm, BackwardMatchesFiniteDifference) {
  const int64_t rows = 23, ch = 4;
  const auto x = random_vec(rows * ch, 91, -1.0, 3.0), gamma = random_vec(ch, 92, 0.5, 1.5), beta = random_vec(ch, 93),
             r = random_vec(rows * ch, 94);
  const double eps = 1e-5;
  // L = <y(x, gamma, beta), r>, so dL/dy = r.
  auto loss = [&](const std::vector<double>& xv, const std::vector<double>& g, const std::vector<double>& b) {
    std::vector<double> y(rows * ch), m(ch), inv(ch);
    kernels::batch_norm_forward_training<double>(cpu(), rows, ch, xv.data(), g.data(), b.data(), eps, 0.0, y.data(),
                                                 m.data(), inv.data(), nullptr, nullptr);
    return test::dot(y, r);
  };
  const auto want_dx = test::numeric_grad(x, [&](const std::vector<double>& v) { return loss(v, gamma, beta); });
  const auto want_dg = test::numeric_grad(gamma, [&](const std::vector<double>& v) { return loss(x, v, beta); });
  const auto want_db = test::numeric_grad(beta, [&](const std::vector<double>& v) { return loss(x, gamma, v); });

  std::vector<double> y(rows * ch), mean(ch), inv(ch);
  kernels::batch_norm_forward_training<double>(cpu(), rows, ch, x.data(), gamma.data(), beta.data(), eps, 0.0, y.data(),
                                               mean.data(), inv.data(), nullptr, nullptr);
  // dgamma and dbeta accumulate onto their previous values.
  const auto dg0 = random_vec(ch, 95), db0 = random_vec(ch, 96);
  auto dx = test::poisoned<double>(rows * ch);
  auto dg = dg0, db = db0;
  kernels::batch_norm_backward<double>(cpu(), rows, ch, x.data(), r.data(), gamma.data(), mean.data(), inv.data(),
                                       dx.data(), dg.data(), db.data());
  for (int64_t c = 0; c < ch; ++c) {
    dg[c] -= dg0[c];
    db[c] -= db0[c];
  }
  EXPECT_REL_NEAR(dx, want_dx, 1e-6);
  EXPECT_REL_NEAR(dg, want_dg, 1e-6);
  EXPECT_REL_NEAR(db, want_db, 1e-6);

  // The float path against the double one.
  const auto xf = cast<float>(x), rf = cast<float>(r), gf = cast<float>(gamma), mf = cast<float>(mean),
             invf = cast<float>(inv);
  auto dxf = test::poisoned<float>(rows * ch);
  std::vector<float> dgf(ch, 0.0f), dbf(ch, 0.0f);
  kernels::batch_norm_backward<float>(cpu(), rows, ch, xf.data(), rf.data(), gf.data(), mf.data(), invf.data(),
                                      dxf.data(), dgf.data(), dbf.data());
  EXPECT_REL_NEAR(dxf, dx, 1e-4);
  EXPECT_REL_NEAR(dgf, dg, 1e-5);
  EXPECT_REL_NEAR(dbf, db, 1e-5);
}

TEST(BatchNorm, StatisticsIndependentOfThreadCount) {
  const int64_t rows = 40000, ch = 3;
  const auto x = cast<float>(random_vec(rows * ch, 97));
  auto run = [&](int threads) {
    const int saved = cpu_threads();
    set_cpu_threads(threads);
    std::vector<float> y(rows * ch), out(2 * ch);
    kernels::batch_norm_forward_training<float>(cpu(), rows, ch, x.data(), nullptr, nullptr, 1e-5f, 0.1f, y.data(),
                                                out.data(), out.data() + ch, nullptr, nullptr);
    set_cpu_threads(saved);
    return out;
  };
  EXPECT_EQ(run(1), run(3));
}

}  // namespace
}  // namespace kiln
