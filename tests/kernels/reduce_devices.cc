// kernels/reduce.h on every device (tests/kernels/device_test_util.h), the synchronizing
// variants and the _async ones that leave their result in device memory.
#include "kernels/reduce.h"
#include "tests/kernels/device_test_util.h"

namespace kiln {
namespace {

using test::DeviceRunner;
using test::random_vec;

class ReduceDevices : public test::DeviceTest {};

TEST_P(ReduceDevices, SumRowsSumSquaresAndScale) {
  const int64_t rows = 333, cols = 17, n = 40000;
  const auto x = random_vec<float>(rows * cols, 28), big = random_vec<float>(n, 29);
  const auto out0 = random_vec<float>(cols, 30);
  expect_same_as_cpu([&](DeviceRunner& d) {
    const Stream s = d.stream();
    float* out = d.upload(out0);
    kernels::sum_rows<float>(s, d.upload(x), rows, cols, out, /*accumulate=*/true);
    float* bigd = d.upload(big);
    const double sync = kernels::sum_squares<float>(s, bigd, n);
    double* async = d.alloc<double>(1);
    if (d.kind() == Device::Kind::cpu) {
      // Host memory on the CPU: the result is there at once.
      double host = 0.0;
      kernels::sum_squares_async<float>(s, bigd, n, &host);
      EXPECT_EQ(host, sync);
    }
    kernels::sum_squares_async<float>(s, bigd, n, async);
    kernels::scale_inplace<float>(s, bigd, n, 0.5f);
    std::vector<double> result = d.download(out, cols);
    result.push_back(sync);
    test::append(result, d.download(async, 1));
    test::append(result, d.download(bigd, n));
    return result;
  });
}

TEST_P(ReduceDevices, CountArgmaxMatches) {
  const int64_t rows = 500, classes = 7;
  const auto logits = random_vec<float>(rows * classes, 31);
  std::vector<int32_t> labels(rows);
  for (int64_t r = 0; r < rows; ++r) labels[r] = static_cast<int32_t>(r % classes);
  auto run = [&](DeviceRunner& d, bool async) {
    const float* l = d.upload(logits);
    const int32_t* lab = d.upload(labels);
    if (!async)
      return std::vector<double>{
          static_cast<double>(kernels::count_argmax_matches<float>(d.stream(), l, lab, rows, classes))};
    int64_t* count = d.alloc<int64_t>(1);
    kernels::count_argmax_matches_async<float>(d.stream(), l, lab, rows, classes, count);
    return d.download(count, 1);
  };
  expect_same_as_cpu([&](DeviceRunner& d) { return run(d, false); });
  if (on_cuda()) return;  // no asynchronous CUDA kernel yet (test_dispatch.cc checks the error)
  expect_same_as_cpu([&](DeviceRunner& d) { return run(d, true); });
}

KILN_DEVICE_TEST_SUITE(ReduceDevices);

}  // namespace
}  // namespace kiln
