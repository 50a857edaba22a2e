// The reference embedding kernels that kernel_library VENDOR runs (kernels/cuda/reference.h)
// against the CPU path: the same bits (the CPU's order, -fmad=false), unique ids in order, and the
// CPU's error for an id outside the table. Skipped without a GPU; none of it has run on one yet.
#include <gtest/gtest.h>

#include <string>

#include "core/cuda/stream.h"
#include "core/error.h"
#include "core/stream.h"
#include "kernels/cuda/reference.h"
#include "kernels/embedding.h"
#include "tests/cuda/cuda_test_util.h"

namespace kiln {
namespace {

using namespace cuda_test;
namespace ref = kernels::cuda::reference;
using kernels::Combiner;

TEST(CudaReferenceEmbedding, ForwardAndBackwardEqualTheCpuBits) {
  KILN_REQUIRE_GPU();
  const int64_t rows = 300, batch = 64;
  // 0..4 ids an example, every third from a few hot rows so ids repeat across examples.
  PhiloxGenerator gen(5, 2);
  std::vector<int64_t> ids, offsets{0};
  for (int64_t b = 0; b < batch; ++b) {
    for (uint64_t j = gen.below(5); j > 0; --j)
      ids.push_back(static_cast<int64_t>(gen.below(3) ? gen.below(rows) : gen.below(4)));
    offsets.push_back(static_cast<int64_t>(ids.size()));
  }
  const int64_t nnz = static_cast<int64_t>(ids.size());
  cuda::CudaStream stream(0);
  for (int64_t dim : {int64_t{1}, int64_t{9}, int64_t{64}}) {
    for (Combiner comb : {Combiner::sum, Combiner::mean}) {
      const auto table = random_floats(rows * dim, 10 + dim), dout = random_floats(batch * dim, 20 + dim);
      std::vector<float> want_out(batch * dim), want_grads(nnz * dim);
      std::vector<int64_t> want_ids(nnz);
      kernels::embedding_forward<float>(Stream::cpu(), table.data(), rows, dim, ids.data(), offsets.data(), batch, comb,
                                        want_out.data());
      const int64_t count = kernels::embedding_backward<float>(Stream::cpu(), dout.data(), rows, dim, ids.data(),
                                                               offsets.data(), batch, comb, want_ids.data(),
                                                               want_grads.data());
      want_ids.resize(count);
      want_grads.resize(count * dim);
      DeviceBuffer<float> gt(table), gout(batch * dim), gd(dout), gg(nnz * dim);
      DeviceBuffer<int64_t> gi(ids), go(offsets), gu(nnz);
      ref::embedding_forward(stream.view(), gt.get(), rows, dim, gi.get(), go.get(), batch, comb, gout.get());
      EXPECT_EQ(gout.download(), want_out) << "dim " << dim;
      ASSERT_EQ(ref::embedding_backward(stream.view(), gd.get(), rows, dim, gi.get(), go.get(), batch, nnz, comb,
                                        gu.get(), gg.get()),
                count);
      auto u = gu.download();
      u.resize(count);
      EXPECT_EQ(u, want_ids);
      auto g = gg.download();
      g.resize(count * dim);
      EXPECT_EQ(g, want_grads) << "dim " << dim << ": the CPU's order, so the CPU's bits";
    }
  }
}

TEST(CudaReferenceEmbedding, BackwardThrowsTheCpuErrorForABadId) {
  KILN_REQUIRE_GPU();
  const int64_t rows = 8, dim = 2;
  const std::vector<int64_t> ids{1, 8, 2}, offsets{0, 2, 3};
  std::vector<float> dout(2 * dim, 1.0f);
  std::vector<int64_t> cpu_ids(3);
  std::vector<float> cpu_grads(3 * dim);
  std::string want;
  try {
    kernels::embedding_backward<float>(Stream::cpu(), dout.data(), rows, dim, ids.data(), offsets.data(), 2,
                                       Combiner::sum, cpu_ids.data(), cpu_grads.data());
  } catch (const Error& e) {
    want = e.what();
  }
  ASSERT_NE(want, "");
  cuda::CudaStream stream(0);
  DeviceBuffer<float> gd(dout), gg(3 * dim);
  DeviceBuffer<int64_t> gi(ids), go(offsets), gu(3);
  try {
    ref::embedding_backward(stream.view(), gd.get(), rows, dim, gi.get(), go.get(), 2, 3, Combiner::sum, gu.get(),
                            gg.get());
    ADD_FAILURE() << "an id outside the table was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), want);
  }
}

}  // namespace
}  // namespace kiln
