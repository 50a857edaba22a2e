// kernels/gemm.h on every device (tests/kernels/device_test_util.h).
#include "kernels/gemm.h"
#include "tests/kernels/device_test_util.h"

namespace kiln {
namespace {

using test::DeviceRunner;
using test::random_vec;

class GemmDevices : public test::DeviceTest {};

TEST_P(GemmDevices, TransposesBetaBiasAndActivation) {
  const int64_t m = 37, n = 29, k = 45;
  const auto a = random_vec<float>(m * k + 8, 12), b = random_vec<float>(k * n + 8, 13);
  const auto c0 = random_vec<float>(m * (n + 3), 14), bias = random_vec<float>(n, 15);
  for (bool ta : {false, true}) {
    for (bool tb : {false, true}) {
      SCOPED_TRACE(std::string(ta ? "A^T" : "A") + (tb ? " B^T" : " B"));
      expect_same_as_cpu(
          [&](DeviceRunner& d) {
            float* c = d.upload(c0);  // ldc = n + 3: the padding must stay untouched
            kernels::gemm<float>(d.stream(), ta, tb, m, n, k, 0.5f, d.upload(a), ta ? m : k, d.upload(b), tb ? k : n,
                                 0.25f, c, n + 3, d.upload(bias), kernels::Activation::relu);
            return d.download(c, c0.size());
          },
          1e-2);
    }
  }
}

TEST_P(GemmDevices, RowInvariant) {
  const int64_t m = 21, n = 17, k = 33;
  const auto a = random_vec<float>(m * k, 16), b = random_vec<float>(k * n, 17), bias = random_vec<float>(n, 18);
  auto run = [&](DeviceRunner& d) {
    float* c = d.alloc<float>(m * n);
    kernels::gemm_row_invariant<float>(d.stream(), m, n, k, d.upload(a), k, d.upload(b), n, c, n, d.upload(bias),
                                       kernels::Activation::gelu);
    return d.download(c, m * n);
  };
  expect_same_as_cpu(run, 1e-2);
}

// On every device, a row's output does not depend on the rows batched with it.
TEST_P(GemmDevices, RowInvariantAcrossBatchSizes) {
  const int64_t m = 300, n = 70, k = 129;
  const auto a = random_vec<float>(m * k, 19), b = random_vec<float>(k * n, 20), bias = random_vec<float>(n, 21);
  DeviceRunner d(GetParam());
  const float* da = d.upload(a);
  const float* db = d.upload(b);
  const float* dbias = d.upload(bias);
  float* c = d.alloc<float>(m * n);
  kernels::gemm_row_invariant<float>(d.stream(), m, n, k, da, k, db, n, c, n, dbias, kernels::Activation::relu);
  const std::vector<double> batched = d.download(c, m * n);
  for (int64_t rows : {1, 2, 7, 64, 129}) {
    float* part = d.alloc<float>(rows * n);
    const int64_t first = m - rows;  // the last rows, so a tile edge falls elsewhere
    kernels::gemm_row_invariant<float>(d.stream(), rows, n, k, da + first * k, k, db, n, part, n, dbias,
                                       kernels::Activation::relu);
    const std::vector<double> alone = d.download(part, rows * n);
    for (int64_t i = 0; i < rows * n; ++i)
      ASSERT_EQ(alone[i], batched[first * n + i]) << rows << " rows, element " << i;
  }
}

KILN_DEVICE_TEST_SUITE(GemmDevices);

}  // namespace
}  // namespace kiln
