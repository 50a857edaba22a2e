// Embedding forward/backward on the GPU against the CPU path: the same sums in the same order,
// deterministic backward (run twice, identical bits), unique ids, bad ids rejected with the CPU
// path's error. Every call runs on a created stream.
#include <gtest/gtest.h>

#include <string>

#include "core/cuda/stream.h"
#include "core/error.h"
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
      cuda::CudaStream stream(0);
      kc::embedding_forward(stream.view(), gt.get(), rows, dim, gi.get(), go.get(), batch, comb,
                            gout.get());
      EXPECT_EQ(gout.download(), want) << "dim " << dim << ": the CPU order, so the CPU bits";
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
      const int64_t count = kernels::embedding_backward<float>(Stream::cpu(), dout.data(), rows, dim, b.ids.data(),
                                                               b.offsets.data(), batch, comb, uids.data(), grads.data());
      grads.resize(count * dim);
      uids.resize(count);
      DeviceBuffer<float> gd(dout);
      DeviceBuffer<int64_t> gi(b.ids), go(b.offsets);
      std::vector<float> first;
      cuda::CudaStream stream(0);
      for (int run = 0; run < 2; ++run) {
        DeviceBuffer<int64_t> gu(nnz);
        DeviceBuffer<float> gg(nnz * dim);
        // The second run sorts over more id bits (a larger table): same unique ids, same bits.
        const int64_t got = kc::embedding_backward(stream.view(), gd.get(), run == 0 ? rows : rows * 1000, dim,
                                                   gi.get(), go.get(), batch, nnz, comb, gu.get(), gg.get());
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
  cuda::CudaStream stream(0);
  DeviceBuffer<int64_t> ids(std::vector<int64_t>{0, 5, 9, 10, -1, 3});
  EXPECT_EQ(kc::embedding_first_bad_id(stream.view(), ids.get(), 6, 10), 3);
  EXPECT_EQ(kc::embedding_first_bad_id(stream.view(), ids.get(), 3, 10), -1);
}

// The message the CPU path throws for `ids` over a table of `rows` (empty when it accepts them).
std::string cpu_error(const std::vector<int64_t>& ids, const std::vector<int64_t>& offsets, int64_t rows) {
  const int64_t batch = static_cast<int64_t>(offsets.size()) - 1;
  std::vector<float> table(rows * 2, 1.0f), out(batch * 2);
  try {
    kernels::embedding_forward<float>(Stream::cpu(), table.data(), rows, 2, ids.data(), offsets.data(), batch,
                                      Combiner::sum, out.data());
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// An id outside the table: the forward throws the CPU's error (it used to skip the id silently)
// and the backward throws it too (it used to sort only the id's low bits, so an id of 2^k + r
// merged with id r, or a negative id sorted last, and the unique ids came out wrong).
TEST(CudaEmbedding, BadIdsThrowTheCpuError) {
  KILN_REQUIRE_GPU();
  const int64_t rows = 16, dim = 4;
  cuda::CudaStream stream(0);
  const std::vector<int64_t> offsets{0, 2, 3, 5};
  for (const std::vector<int64_t>& ids : {std::vector<int64_t>{1, 2, 3, 16 + 3, 0}, std::vector<int64_t>{1, 2, 3, 4, -1},
                                          std::vector<int64_t>{1, 1000003, 3, -7, 0}}) {
    const std::string want = cpu_error(ids, offsets, rows);
    ASSERT_NE(want, "");
    DeviceBuffer<float> table(random_floats(rows * dim, 1)), out(3 * dim), dout(random_floats(3 * dim, 2)),
        grads(ids.size() * dim);
    DeviceBuffer<int64_t> gi(ids), go(offsets), uids(ids.size());
    try {
      kc::embedding_forward(stream.view(), table.get(), rows, dim, gi.get(), go.get(), 3, Combiner::sum, out.get());
      ADD_FAILURE() << "forward accepted an id outside the table";
    } catch (const Error& e) {
      EXPECT_EQ(std::string(e.what()), want);
    }
    try {
      kc::embedding_backward(stream.view(), dout.get(), rows, dim, gi.get(), go.get(), 3, 5, Combiner::sum, uids.get(),
                             grads.get());
      ADD_FAILURE() << "backward accepted an id outside the table";
    } catch (const Error& e) {
      EXPECT_EQ(std::string(e.what()), want);
    }
  }
  // In-range ids still pass after an error (nothing sticky).
  DeviceBuffer<int64_t> good(std::vector<int64_t>{0, 15, 3, 4, 5}), go(offsets);
  DeviceBuffer<float> table(random_floats(rows * dim, 1)), out(3 * dim);
  EXPECT_NO_THROW(
      kc::embedding_forward(stream.view(), table.get(), rows, dim, good.get(), go.get(), 3, Combiner::sum, out.get()));
}

}  // namespace
}  // namespace kiln
