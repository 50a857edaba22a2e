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

// A captured step's backward: buffers of a fixed capacity above this batch's id count (the rest
// of the ids buffer holds stale ids of an earlier, larger batch), the count left on the device.
// The result must be the synchronous backward's, on every device.
TEST_P(EmbeddingDevices, BackwardAsyncLeavesTheCountOnTheDevice) {
  const int64_t rows = 30, dim = 5, batch = 20;
  const Csr csr = make_csr(batch, rows);
  const int64_t nnz = static_cast<int64_t>(csr.ids.size()), capacity = nnz + 9;
  std::vector<int64_t> ids = csr.ids;
  for (int64_t j = nnz; j < capacity; ++j) ids.push_back(j % rows);  // stale: must not count
  const auto dout = test::random_vec<float>(batch * dim, 34);
  for (Combiner comb : {Combiner::sum, Combiner::mean}) {
    DeviceRunner d(GetParam());
    const std::vector<double> result = [&] {
      const Stream s = d.stream();
      int64_t* unique = d.alloc<int64_t>(capacity);
      float* grad = d.alloc<float>(capacity * dim);
      int64_t* count = d.alloc<int64_t>(1);
      const int64_t bytes = kernels::embedding_backward_workspace_bytes(s, rows, capacity);
      void* workspace = bytes > 0 ? d.alloc<unsigned char>(static_cast<size_t>(bytes)) : nullptr;
      kernels::embedding_backward_async<float>(s, d.upload(dout), rows, dim, d.upload(ids), d.upload(csr.offsets), batch,
                                               capacity, comb, unique, grad, count, workspace);
      std::vector<double> out = d.download(count, 1);
      const auto n = static_cast<size_t>(out[0]);
      test::append(out, d.download(unique, n));
      test::append(out, d.download(grad, n * dim));
      return out;
    }();
    // The synchronous backward on the CPU, on exactly the batch's ids.
    std::vector<int64_t> unique(static_cast<size_t>(nnz));
    std::vector<float> grad(static_cast<size_t>(nnz * dim));
    const int64_t count = kernels::embedding_backward<float>(Stream::cpu(), dout.data(), rows, dim, csr.ids.data(),
                                                             csr.offsets.data(), batch, comb, unique.data(), grad.data());
    std::vector<double> want{static_cast<double>(count)};
    for (int64_t u = 0; u < count; ++u) want.push_back(static_cast<double>(unique[u]));
    for (int64_t i = 0; i < count * dim; ++i) want.push_back(grad[i]);
    if (on_cuda()) {
      EXPECT_REL_NEAR(result, want, 1e-5);
    } else {
      EXPECT_EQ(result, want);
    }
  }
}

// More ids than the capacity breaks the caller's promise: an internal error where the op runs (the
// CPU at once, sim with the stream).
TEST_P(EmbeddingDevices, BackwardAsyncRefusesMoreIdsThanItsCapacity) {
  if (on_cuda()) GTEST_SKIP() << "the CUDA kernel cannot report it (the trainer never passes such a batch)";
  const std::vector<int64_t> ids = {1, 2, 3}, offsets = {0, 2, 3};
  DeviceRunner d(GetParam());
  int64_t* unique = d.alloc<int64_t>(2);
  float* grad = d.alloc<float>(2 * 2);
  int64_t* count = d.alloc<int64_t>(1);
  const float* dout = d.upload(std::vector<float>(2 * 2, 1.0f));
  try {
    kernels::embedding_backward_async<float>(d.stream(), dout, 6, 2, d.upload(ids), d.upload(offsets), 2, 2,
                                             Combiner::sum, unique, grad, count, nullptr);
    d.stream().synchronize();
    ADD_FAILURE() << "3 ids in a capacity of 2 were accepted";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("3 ids, more than the capacity 2"), std::string::npos) << e.what();
  }
}

// The forward's error, checked on the host before ids are staged.
TEST(EmbeddingCheckIds, NamesTheFirstBadIdAsTheForwardDoes) {
  const std::vector<int64_t> ids = {1, 5, 9, -1};
  kernels::embedding_check_ids(ids.data(), 2, 6);
  test::expect_error([&] { kernels::embedding_check_ids(ids.data(), 4, 6); },
                     {"embedding: id 9 (position 2) is outside the table's 6 rows"});
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
