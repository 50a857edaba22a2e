#include <gtest/gtest.h>

#include <algorithm>

#include "kernels/dropout.h"
#include "tests/kernels/test_util.h"

namespace kiln {
namespace {

using test::cast;
using test::cpu;
using test::random_vec;

template <typename T>
void check_dropout(int64_t n, float rate, uint64_t seed, uint64_t stream) {
  SCOPED_TRACE(::testing::Message() << "n=" << n << " rate=" << rate);
  const auto x = cast<T>(random_vec(n, 101, 0.5, 2.0));  // never zero, so a kept zero cannot hide
  auto y = test::poisoned<T>(n);
  std::vector<uint8_t> mask(n, 7);
  kernels::dropout_forward<T>(cpu(), n, rate, seed, stream, x.data(), y.data(), mask.data());
  const T scale = T(1) / (T(1) - static_cast<T>(rate));
  int64_t kept = 0, mismatches = 0;
  for (int64_t i = 0; i < n; ++i) {
    const bool keep = Philox4x32::uniform(seed, stream, static_cast<uint64_t>(i)) >= rate;
    kept += keep;
    if (mask[i] != (keep ? 1 : 0) || y[i] != (keep ? x[i] * scale : T(0))) ++mismatches;
  }
  EXPECT_EQ(mismatches, 0);
  // Binomial: the standard deviation of the kept fraction is below 0.5 / sqrt(n).
  EXPECT_NEAR(static_cast<double>(kept) / n, 1.0 - rate, 5 * 0.5 / std::sqrt(static_cast<double>(n)));

  const auto dy = cast<T>(random_vec(n, 102));
  auto dx = test::poisoned<T>(n);
  kernels::dropout_backward<T>(cpu(), n, rate, mask.data(), dy.data(), dx.data());
  for (int64_t i = 0; i < n; ++i) {
    if (dx[i] != (mask[i] ? dy[i] * scale : T(0))) ++mismatches;
  }
  EXPECT_EQ(mismatches, 0);
}

TEST(Dropout, MaskFollowsPhilox) {
  check_dropout<float>(100003, 0.3f, 1234, 5);
  check_dropout<double>(100003, 0.5f, 99, 0);
  check_dropout<float>(13, 0.2f, 7, 1);  // a tail shorter than one Philox block
  check_dropout<double>(5, 0.9f, 7, (uint64_t{1} << 40) + 3);
}

TEST(Dropout, StreamsDiffer) {
  const int64_t n = 1000;
  const std::vector<float> x(n, 1.0f);
  std::vector<float> y(n);
  std::vector<uint8_t> m1(n), m2(n);
  kernels::dropout_forward<float>(cpu(), n, 0.5f, 1, 0, x.data(), y.data(), m1.data());
  kernels::dropout_forward<float>(cpu(), n, 0.5f, 1, 1, x.data(), y.data(), m2.data());
  EXPECT_NE(m1, m2);
}

// A call that starts at element `first` draws what a whole call draws from there on, so data-
// parallel ranks reproduce one process's mask (offsets not a multiple of a Philox block too).
TEST(Dropout, OffsetCallsContinueTheStream) {
  const int64_t n = 10007;
  const auto x = random_vec(n, 11);
  std::vector<double> y(n), part_y(n);
  std::vector<uint8_t> mask(n), part_mask(n);
  kernels::dropout_forward<double>(cpu(), n, 0.4f, 3, 9, x.data(), y.data(), mask.data());
  for (int64_t first : {int64_t{1}, int64_t{4}, int64_t{4097}, int64_t{9999}}) {
    kernels::dropout_forward<double>(cpu(), n - first, 0.4f, 3, 9, x.data() + first, part_y.data(), part_mask.data(),
                                    static_cast<uint64_t>(first));
    EXPECT_TRUE(std::equal(mask.begin() + first, mask.end(), part_mask.begin())) << first;
    EXPECT_TRUE(std::equal(y.begin() + first, y.end(), part_y.begin())) << first;
  }
}

TEST(Dropout, ZeroRateCopies) {
  const int64_t n = 9000;
  const auto x = random_vec(n, 103);
  auto y = test::poisoned<double>(n);
  std::vector<uint8_t> mask(n, 0);
  kernels::dropout_forward<double>(cpu(), n, 0.0f, 1, 2, x.data(), y.data(), mask.data());
  EXPECT_EQ(y, x);
  EXPECT_EQ(mask, std::vector<uint8_t>(n, 1));
  auto dx = test::poisoned<double>(n);
  kernels::dropout_backward<double>(cpu(), n, 0.0f, mask.data(), x.data(), dx.data());
  EXPECT_EQ(dx, x);
}

}  // namespace
}  // namespace kiln
