// kernels/embedding.h on every device (tests/kernels/device_test_util.h).
#include "kernels/embedding.h"
#include "tests/kernels/device_test_util.h"

namespace kiln {
namespace {

using kernels::Combiner;
using test::DeviceRunner;

class EmbeddingDevices : public test::DeviceTest {};

struct Csr {
  std::vector<int64_t> ids, offsets{0};
};
Csr make_csr(int64_t batch, int64_t rows) {
  Csr c;
  PhiloxGenerator gen(47, 0);
  for (int64_t b = 0; b < batch; ++b) {
    const uint64_t count = b % 5 == 3 ? 0 : 1 + gen.below(4);  // some empty examples
    for (uint64_t j = 0; j < count; ++j) c.ids.push_back(static_cast<int64_t>(gen.below(rows)));
    c.offsets.push_back(static_cast<int64_t>(c.ids.size()));
  }
  return c;
}

TEST_P(EmbeddingDevices, ForwardAndBackward) {
  const int64_t rows = 40, dim = 12, batch = 50;
  const Csr csr = make_csr(batch, rows);
  const int64_t nnz = static_cast<int64_t>(csr.ids.size());
  const auto table = test::random_vec<float>(rows * dim, 32), dout = test::random_vec<float>(batch * dim, 33);
  for (Combiner comb : {Combiner::sum, Combiner::mean}) {
    expect_same_as_cpu([&](DeviceRunner& d) {
      const Stream s = d.stream();
      const int64_t* ids = d.upload(csr.ids);
      const int64_t* offsets = d.upload(csr.offsets);
      float* out = d.alloc<float>(batch * dim);
      kernels::embedding_forward<float>(s, d.upload(table), rows, dim, ids, offsets, batch, comb, out);
      int64_t* unique = d.alloc<int64_t>(nnz);
      float* grad = d.alloc<float>(nnz * dim);
      const int64_t count =
          kernels::embedding_backward<float>(s, d.upload(dout), rows, dim, ids, offsets, batch, comb, unique, grad);
      std::vector<double> result = d.download(out, batch * dim);
      result.push_back(static_cast<double>(count));
      test::append(result, d.download(unique, count));
      test::append(result, d.download(grad, count * dim));
      return result;
    });
  }
}

TEST_P(EmbeddingDevices, BackwardAsyncLeavesTheCountOnTheDevice) {
  if (on_cuda()) GTEST_SKIP() << "no asynchronous CUDA kernel yet (test_dispatch.cc checks the error)";
  const int64_t rows = 30, dim = 5, batch = 20;
  const Csr csr = make_csr(batch, rows);
  const int64_t nnz = static_cast<int64_t>(csr.ids.size());
  const auto dout = test::random_vec<float>(batch * dim, 34);
  expect_same_as_cpu([&](DeviceRunner& d) {
    int64_t* unique = d.alloc<int64_t>(nnz);
    float* grad = d.alloc<float>(nnz * dim);
    int64_t* count = d.alloc<int64_t>(1);
    kernels::embedding_backward_async<float>(d.stream(), d.upload(dout), rows, dim, d.upload(csr.ids),
                                             d.upload(csr.offsets), batch, Combiner::sum, unique, grad, count);
    std::vector<double> result = d.download(count, 1);
    const auto n = static_cast<size_t>(result[0]);
    test::append(result, d.download(unique, n));
    test::append(result, d.download(grad, n * dim));
    return result;
  });
}

TEST_P(EmbeddingDevices, BadIdIsAnErrorNamingIt) {
  const int64_t rows = 6, dim = 2;
  const std::vector<int64_t> ids = {1, 6}, offsets = {0, 1, 2};
  DeviceRunner d(GetParam());
  const float* table = d.upload(std::vector<float>(rows * dim, 1.0f));
  float* out = d.alloc<float>(2 * dim);
  test::expect_error(
      [&] {
        kernels::embedding_forward<float>(d.stream(), table, rows, dim, d.upload(ids), d.upload(offsets), 2,
                                          Combiner::sum, out);
        d.stream().synchronize();  // on sim the error comes with the stream
      },
      {"6 rows"});
}

KILN_DEVICE_TEST_SUITE(EmbeddingDevices);

}  // namespace
}  // namespace kiln
