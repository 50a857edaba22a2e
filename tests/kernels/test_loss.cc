#include <gtest/gtest.h>

#include <cmath>

#include "core/error.h"
#include "kernels/loss.h"
#include "tests/kernels/test_util.h"

namespace kiln {
namespace {

using test::cast;
using test::cpu;
using test::random_vec;

std::vector<int32_t> random_labels(int64_t batch, int64_t classes, uint64_t seed) {
  PhiloxGenerator gen(seed, 1);
  std::vector<int32_t> labels(batch);
  for (auto& l : labels) l = static_cast<int32_t>(gen.below(classes));
  return labels;
}

// Mean softmax cross-entropy in double, straight from the definition.
double ref_mean_ce(const std::vector<double>& logits, const std::vector<int32_t>& labels, int64_t classes,
                   std::vector<double>* per_row = nullptr) {
  const int64_t batch = static_cast<int64_t>(labels.size());
  double total = 0.0;
  for (int64_t b = 0; b < batch; ++b) {
    double sum = 0.0;
    for (int64_t c = 0; c < classes; ++c) sum += std::exp(logits[b * classes + c]);
    const double l = -std::log(std::exp(logits[b * classes + labels[b]]) / sum);
    if (per_row) per_row->push_back(l);
    total += l;
  }
  return total / static_cast<double>(batch);
}

TEST(SoftmaxCrossEntropy, ForwardMatchesReference) {
  const int64_t batch = 37, classes = 13;
  const auto logits = random_vec(batch * classes, 21, -5.0, 5.0);
  const auto labels = random_labels(batch, classes, 22);
  std::vector<double> want_loss;
  ref_mean_ce(logits, labels, classes, &want_loss);
  std::vector<double> want_probs(batch * classes);
  for (int64_t b = 0; b < batch; ++b) {
    double sum = 0.0;
    for (int64_t c = 0; c < classes; ++c) sum += std::exp(logits[b * classes + c]);
    for (int64_t c = 0; c < classes; ++c) want_probs[b * classes + c] = std::exp(logits[b * classes + c]) / sum;
  }
  auto probs = test::poisoned<double>(batch * classes), loss = test::poisoned<double>(batch);
  kernels::softmax_cross_entropy_forward<double>(cpu(), logits.data(), labels.data(), batch, classes, probs.data(),
                                                 loss.data());
  EXPECT_REL_NEAR(probs, want_probs, 1e-13);
  EXPECT_REL_NEAR(loss, want_loss, 1e-13);

  const auto lf = cast<float>(logits);
  auto pf = test::poisoned<float>(batch * classes), lossf = test::poisoned<float>(batch);
  kernels::softmax_cross_entropy_forward<float>(cpu(), lf.data(), labels.data(), batch, classes, pf.data(),
                                                lossf.data());
  EXPECT_REL_NEAR(pf, want_probs, 1e-5);
  EXPECT_REL_NEAR(lossf, want_loss, 1e-5);
}

TEST(SoftmaxCrossEntropy, StableForHugeLogits) {
  const float logits[3] = {1000.0f, -1000.0f, 999.0f};
  const int32_t label = 2;
  float probs[3], loss;
  kernels::softmax_cross_entropy_forward<float>(cpu(), logits, &label, 1, 3, probs, &loss);
  EXPECT_NEAR(loss, std::log1p(std::exp(-1.0)) + 1.0, 1e-5);
  EXPECT_TRUE(std::isfinite(probs[0]) && probs[1] == 0.0f);
}

TEST(SoftmaxCrossEntropy, BackwardMatchesFiniteDifference) {
  const int64_t batch = 11, classes = 7;
  const auto logits = random_vec(batch * classes, 23, -3.0, 3.0);
  const auto labels = random_labels(batch, classes, 24);
  const auto want =
      test::numeric_grad(logits, [&](const std::vector<double>& x) { return ref_mean_ce(x, labels, classes); });
  std::vector<double> probs(batch * classes), loss(batch);
  kernels::softmax_cross_entropy_forward<double>(cpu(), logits.data(), labels.data(), batch, classes, probs.data(),
                                                 loss.data());
  auto grad = test::poisoned<double>(batch * classes);
  kernels::softmax_cross_entropy_backward<double>(cpu(), probs.data(), labels.data(), batch, classes, 1.0 / batch,
                                                  grad.data());
  EXPECT_REL_NEAR(grad, want, 1e-7);
  // In place over probs.
  kernels::softmax_cross_entropy_backward<double>(cpu(), probs.data(), labels.data(), batch, classes, 1.0 / batch,
                                                  probs.data());
  EXPECT_EQ(probs, grad);
}

TEST(SoftmaxCrossEntropy, BadLabelIsAUserError) {
  const int64_t batch = 3, classes = 4;
  const auto logits = cast<float>(random_vec(batch * classes, 25));
  std::vector<float> probs(batch * classes), loss(batch);
  for (int32_t bad : {-1, 4}) {
    const std::vector<int32_t> labels = {0, bad, 3};
    try {
      kernels::softmax_cross_entropy_forward<float>(cpu(), logits.data(), labels.data(), batch, classes, probs.data(),
                                                    loss.data());
      FAIL() << "no error for label " << bad;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("row 1"), std::string::npos) << e.what();
    }
    EXPECT_THROW(kernels::softmax_cross_entropy_backward<float>(cpu(), probs.data(), labels.data(), batch, classes,
                                                                1.0f, probs.data()),
                 Error);
  }
}

// Element-wise losses: forward against a formula, backward against a finite difference of the
// kernel's own double forward (sum of losses times grad_scale).
enum class Elementwise { mse, huber, logistic };

double ref_loss(Elementwise kind, double p, double t, double delta) {
  switch (kind) {
    case Elementwise::mse: return (p - t) * (p - t);
    case Elementwise::huber: {
      const double e = std::abs(p - t);
      return e <= delta ? 0.5 * e * e : delta * (e - 0.5 * delta);
    }
    case Elementwise::logistic:
      return -(t * std::log(1 / (1 + std::exp(-p))) + (1 - t) * std::log(1 - 1 / (1 + std::exp(-p))));
  }
  return 0;
}

template <typename T>
void forward(Elementwise kind, const std::vector<T>& p, const std::vector<T>& t, T delta, std::vector<T>& out) {
  const int64_t n = static_cast<int64_t>(p.size());
  switch (kind) {
    case Elementwise::mse: kernels::mse_forward<T>(cpu(), p.data(), t.data(), n, out.data()); break;
    case Elementwise::huber: kernels::huber_forward<T>(cpu(), p.data(), t.data(), n, delta, out.data()); break;
    case Elementwise::logistic: kernels::logistic_forward<T>(cpu(), p.data(), t.data(), n, out.data()); break;
  }
}

template <typename T>
void backward(Elementwise kind, const std::vector<T>& p, const std::vector<T>& t, T delta, T scale,
              std::vector<T>& out) {
  const int64_t n = static_cast<int64_t>(p.size());
  switch (kind) {
    case Elementwise::mse: kernels::mse_backward<T>(cpu(), p.data(), t.data(), n, scale, out.data()); break;
    case Elementwise::huber: kernels::huber_backward<T>(cpu(), p.data(), t.data(), n, delta, scale, out.data()); break;
    case Elementwise::logistic: kernels::logistic_backward<T>(cpu(), p.data(), t.data(), n, scale, out.data()); break;
  }
}

TEST(ElementwiseLoss, ForwardAndBackward) {
  const int64_t n = 9001;
  const double delta = 0.8, scale = 1.0 / 64;
  for (Elementwise kind : {Elementwise::mse, Elementwise::huber, Elementwise::logistic}) {
    SCOPED_TRACE(static_cast<int>(kind));
    const auto p = random_vec(n, 31, -3.0, 3.0);
    // Logistic targets are probabilities; the others any real.
    const auto t = kind == Elementwise::logistic ? random_vec(n, 32, 0.0, 1.0) : random_vec(n, 32, -2.0, 2.0);
    std::vector<double> want(n);
    for (int64_t i = 0; i < n; ++i) want[i] = ref_loss(kind, p[i], t[i], delta);
    auto loss = test::poisoned<double>(n);
    forward(kind, p, t, delta, loss);
    EXPECT_REL_NEAR(loss, want, 1e-12);
    auto lossf = test::poisoned<float>(n);
    forward(kind, cast<float>(p), cast<float>(t), static_cast<float>(delta), lossf);
    EXPECT_REL_NEAR(lossf, want, 1e-5);

    // Element-wise, so one whole-vector perturbation gives every partial derivative.
    const double h = 1e-6;
    std::vector<double> pp(p), pm(p), lp(n), lm(n), fd(n);
    for (int64_t i = 0; i < n; ++i) {
      pp[i] += h;
      pm[i] -= h;
    }
    forward(kind, pp, t, delta, lp);
    forward(kind, pm, t, delta, lm);
    for (int64_t i = 0; i < n; ++i) fd[i] = scale * (lp[i] - lm[i]) / (2 * h);
    auto grad = test::poisoned<double>(n);
    backward(kind, p, t, delta, scale, grad);
    EXPECT_REL_NEAR(grad, fd, 1e-7);
    auto gradf = test::poisoned<float>(n);
    backward(kind, cast<float>(p), cast<float>(t), static_cast<float>(delta), static_cast<float>(scale), gradf);
    EXPECT_REL_NEAR(gradf, grad, 1e-5);
  }
}

TEST(ElementwiseLoss, LogisticStableForLargeLogits) {
  const std::vector<float> x = {80.0f, -80.0f}, t = {0.0f, 1.0f};
  std::vector<float> loss(2), grad(2);
  kernels::logistic_forward<float>(cpu(), x.data(), t.data(), 2, loss.data());
  kernels::logistic_backward<float>(cpu(), x.data(), t.data(), 2, 1.0f, grad.data());
  EXPECT_FLOAT_EQ(loss[0], 80.0f);
  EXPECT_FLOAT_EQ(loss[1], 80.0f);
  EXPECT_FLOAT_EQ(grad[0], 1.0f);
  EXPECT_FLOAT_EQ(grad[1], -1.0f);
}

}  // namespace
}  // namespace kiln
