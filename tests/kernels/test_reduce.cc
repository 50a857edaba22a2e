#include <gtest/gtest.h>

#include "kernels/reduce.h"
#include "tests/kernels/test_util.h"

namespace kiln {
namespace {

using test::cast;
using test::cpu;
using test::random_vec;

template <typename T>
void check_sum_rows(int64_t rows, int64_t cols, double tol) {
  const auto x = cast<T>(random_vec(rows * cols, 111));
  std::vector<double> want(cols, 0.0);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) want[c] += x[r * cols + c];
  auto out = test::poisoned<T>(cols);
  kernels::sum_rows<T>(cpu(), x.data(), rows, cols, out.data(), false);
  EXPECT_REL_NEAR(out, want, tol);
  const auto base = cast<T>(random_vec(cols, 112));
  auto acc = base;
  kernels::sum_rows<T>(cpu(), x.data(), rows, cols, acc.data(), true);
  for (int64_t c = 0; c < cols; ++c) want[c] += base[c];
  EXPECT_REL_NEAR(acc, want, tol);
}

TEST(SumRows, MatchesReference) {
  check_sum_rows<float>(37, 53, 1e-6);
  check_sum_rows<double>(37, 53, 1e-14);
  check_sum_rows<float>(100003, 7, 1e-6);   // many chunks
  check_sum_rows<double>(3, 20000, 1e-14);  // wide rows
}

TEST(SumRows, IndependentOfThreadCount) {
  const int64_t rows = 50001, cols = 5;
  const auto x = cast<float>(random_vec(rows * cols, 113));
  auto run = [&](int threads) {
    const int saved = cpu_threads();
    set_cpu_threads(threads);
    std::vector<float> out(cols);
    kernels::sum_rows<float>(cpu(), x.data(), rows, cols, out.data(), false);
    out.push_back(static_cast<float>(kernels::sum_squares<float>(cpu(), x.data(), rows * cols)));
    set_cpu_threads(saved);
    return out;
  };
  EXPECT_EQ(run(1), run(2));
  EXPECT_EQ(run(1), run(5));
}

TEST(SumSquares, MatchesReference) {
  for (int64_t n : {int64_t{1}, int64_t{37}, int64_t{100003}}) {
    const auto x = random_vec(n, 114);
    double want = 0;
    for (double v : x) want += v * v;
    EXPECT_NEAR(kernels::sum_squares<double>(cpu(), x.data(), n), want, 1e-12 * want);
    const auto xf = cast<float>(x);
    double wantf = 0;
    for (float v : xf) wantf += static_cast<double>(v) * v;
    EXPECT_NEAR(kernels::sum_squares<float>(cpu(), xf.data(), n), wantf, 1e-12 * wantf);
  }
  EXPECT_EQ(kernels::sum_squares<float>(cpu(), nullptr, 0), 0.0);
}

TEST(ScaleInplace, Scales) {
  const int64_t n = 10001;
  const auto x = random_vec(n, 115);
  auto y = x;
  kernels::scale_inplace<double>(cpu(), y.data(), n, -0.25);
  for (int64_t i = 0; i < n; ++i) ASSERT_EQ(y[i], x[i] * -0.25);
  auto yf = cast<float>(x);
  kernels::scale_inplace<float>(cpu(), yf.data(), n, 3.0f);
  for (int64_t i = 0; i < n; ++i) ASSERT_EQ(yf[i], static_cast<float>(x[i]) * 3.0f);
}

TEST(CountArgmaxMatches, CountsFirstMaximum) {
  const int64_t rows = 1001, classes = 10;
  const auto logits = random_vec(rows * classes, 116);
  std::vector<int32_t> labels(rows);
  int64_t want = 0;
  PhiloxGenerator gen(117, 0);
  for (int64_t r = 0; r < rows; ++r) {
    int32_t best = 0;
    for (int32_t c = 1; c < classes; ++c)
      if (logits[r * classes + c] > logits[r * classes + best]) best = c;
    labels[r] = gen.below(2) ? best : static_cast<int32_t>(gen.below(classes));
    want += labels[r] == best;
  }
  EXPECT_EQ(kernels::count_argmax_matches<double>(cpu(), logits.data(), labels.data(), rows, classes), want);
  const auto lf = cast<float>(logits);
  EXPECT_EQ(kernels::count_argmax_matches<float>(cpu(), lf.data(), labels.data(), rows, classes), want);

  // Ties: the first maximum is the prediction.
  const std::vector<float> tie = {0.5f, 2.0f, 2.0f};
  const int32_t first = 1, second = 2;
  EXPECT_EQ(kernels::count_argmax_matches<float>(cpu(), tie.data(), &first, 1, 3), 1);
  EXPECT_EQ(kernels::count_argmax_matches<float>(cpu(), tie.data(), &second, 1, 3), 0);
}

}  // namespace
}  // namespace kiln
