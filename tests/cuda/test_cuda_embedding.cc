// Embedding forward/backward on the GPU against the CPU path: the same sums in the same order,
// deterministic backward (run twice, identical bits), unique ids, bad-id detection.
#include <gtest/gtest.h>

#include "core/stream.h"
#include "kernels/cuda/embedding.h"
#include "kernels/embedding.h"
#include "tests/cuda/cuda_test_util.h"

namespace kiln {
namespace {

using namespace cuda_test;
namespace kc = kernels::cuda;
using kernels::Combiner;

struct Batch {
  std::vector<int64_t> ids, offsets;
};

// Multi-valued examples (0..5 ids each, some empty) with skewed ids so rows repeat.
Batch make_batch(int64_t batch, int64_t rows, uint64_t seed) {
  PhiloxGenerator gen(seed, 1);
  Batch b;
  b.offsets.push_back(0);
  for (int64_t i = 0; i < batch; ++i) {
    const int64_t count = static_cast<int64_t>(gen.below(6));
    for (int64_t j = 0; j < count; ++j) {
      const uint64_t r = gen.below(static_cast<uint64_t>(rows));
      b.ids.push_back(static_cast<int64_t>(gen.below(2) ? r : r % 7));
    }
    b.offsets.push_back(static_cast<int64_t>(b.ids.size()));
  }
  return b;
}

TEST(CudaEmbedding, ForwardMatchesCpu) {
  KILN_REQUIRE_GPU();
  for (int64_t dim : {int64_t{1}, int64_t{7}, int64_t{16}, int64_t{132}}) {
    for (Combiner comb : {Combiner::sum, Combiner::mean}) {
      const int64_t rows = 501, batch = 77;
      const Batch b = make_batch(batch, rows, dim);
      const auto table = random_floats(rows * dim, 3 + dim);
      std::vector<float> want(batch * dim);
      kernels::embedding_forward<float>(Stream::cpu(), table.data(), rows, dim, b.ids.data(), b.offsets.data(), batch,
                                        comb, want.data());
      DeviceBuffer<float> gt(table), gout(batch * dim);
      DeviceBuffer<int64_t> gi(b.ids), go(b.offsets);
      kc::embedding_forward(Stream::cuda(0, nullptr), gt.get(), rows, dim, gi.get(), go.get(), batch, comb,
                            gout.get());
      EXPECT_LE(rel_error(gout.download(), want), kTolFp32) << "dim " << dim;
    }
  }
}

TEST(CudaEmbedding, BackwardMatchesCpuAndIsDeterministic) {
  KILN_REQUIRE_GPU();
  for (int64_t dim : {int64_t{3}, int64_t{64}}) {
    for (Combiner comb : {Combiner::sum, Combiner::mean}) {
      const int64_t rows = 1000, batch = 301;
      const Batch b = make_batch(batch, rows, 100 + dim);
      const int64_t nnz = b.offsets.back();
      const auto dout = random_floats(batch * dim, 7 + dim);
      std::vector<int64_t> uids(nnz);
      std::vector<float> grads(nnz * dim);
      const int64_t count = kernels::embedding_backward<float>(Stream::cpu(), dout.data(), dim, b.ids.data(),
                                                               b.offsets.data(), batch, comb, uids.data(), grads.data());
      grads.resize(count * dim);
      uids.resize(count);
      DeviceBuffer<float> gd(dout);
      DeviceBuffer<int64_t> gi(b.ids), go(b.offsets);
      std::vector<float> first;
      for (int run = 0; run < 2; ++run) {
        DeviceBuffer<int64_t> gu(nnz);
        DeviceBuffer<float> gg(nnz * dim);
        const int64_t got = kc::embedding_backward(Stream::cuda(0, nullptr), gd.get(), dim, gi.get(), go.get(), batch,
                                                   nnz, comb, gu.get(), gg.get(), run == 0 ? rows : 0);
        ASSERT_EQ(got, count);
        auto u = gu.download();
        u.resize(count);
        EXPECT_EQ(u, uids);
        auto g = gg.download();
        g.resize(count * dim);
        EXPECT_LE(rel_error(g, grads), kTolFp32);
        if (run == 0) first = g;
        else EXPECT_EQ(g, first) << "two runs differ";
      }
    }
  }
}

TEST(CudaEmbedding, FindsTheFirstBadId) {
  KILN_REQUIRE_GPU();
  DeviceBuffer<int64_t> ids(std::vector<int64_t>{0, 5, 9, 10, -1, 3});
  EXPECT_EQ(kc::embedding_first_bad_id(Stream::cuda(0, nullptr), ids.get(), 6, 10), 3);
  EXPECT_EQ(kc::embedding_first_bad_id(Stream::cuda(0, nullptr), ids.get(), 3, 10), -1);
}

}  // namespace
}  // namespace kiln
