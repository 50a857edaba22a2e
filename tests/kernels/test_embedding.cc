#include <gtest/gtest.h>

#include <set>

#include "core/error.h"
#include "kernels/embedding.h"
#include "tests/kernels/test_util.h"

namespace kiln {
namespace {

using kernels::Combiner;
using test::cast;
using test::cpu;
using test::random_vec;

// A CSR batch with repeated ids, an empty example and a single-id example.
struct Batch {
  std::vector<int64_t> ids, offsets;
  int64_t size() const { return static_cast<int64_t>(offsets.size()) - 1; }
};
Batch make_batch(int64_t rows) {
  Batch b;
  PhiloxGenerator gen(41, 0);
  const std::vector<int64_t> counts = {3, 0, 1, 5, 2, 0, 4, 7, 1, 3, 2};
  b.offsets.push_back(0);
  for (int64_t c : counts) {
    for (int64_t j = 0; j < c; ++j) b.ids.push_back(static_cast<int64_t>(gen.below(rows)));
    b.offsets.push_back(static_cast<int64_t>(b.ids.size()));
  }
  b.ids[1] = b.ids[0];  // a repeat inside one example
  return b;
}

TEST(Embedding, ForwardSumAndMean) {
  const int64_t rows = 17, dim = 9;
  const Batch batch = make_batch(rows);
  const auto table = random_vec(rows * dim, 42);
  for (Combiner comb : {Combiner::sum, Combiner::mean}) {
    std::vector<double> want(batch.size() * dim, 0.0);
    for (int64_t b = 0; b < batch.size(); ++b) {
      const int64_t count = batch.offsets[b + 1] - batch.offsets[b];
      for (int64_t j = batch.offsets[b]; j < batch.offsets[b + 1]; ++j)
        for (int64_t d = 0; d < dim; ++d)
          want[b * dim + d] += table[batch.ids[j] * dim + d] / (comb == Combiner::mean ? count : 1);
    }
    auto out = test::poisoned<double>(batch.size() * dim);
    kernels::embedding_forward<double>(cpu(), table.data(), rows, dim, batch.ids.data(), batch.offsets.data(),
                                       batch.size(), comb, out.data());
    EXPECT_REL_NEAR(out, want, 1e-14);
    // The empty examples (1 and 5) are zero vectors.
    for (int64_t d = 0; d < dim; ++d) {
      EXPECT_EQ(out[1 * dim + d], 0.0);
      EXPECT_EQ(out[5 * dim + d], 0.0);
    }
    const auto tf = cast<float>(table);
    auto outf = test::poisoned<float>(batch.size() * dim);
    kernels::embedding_forward<float>(cpu(), tf.data(), rows, dim, batch.ids.data(), batch.offsets.data(), batch.size(),
                                      comb, outf.data());
    EXPECT_REL_NEAR(outf, want, 1e-6);
  }
}

TEST(Embedding, BadIdIsAUserError) {
  const int64_t rows = 5, dim = 3;
  const auto table = random_vec(rows * dim, 43);
  const std::vector<int64_t> offsets = {0, 2, 3};
  std::vector<double> out(2 * dim);
  for (int64_t bad : {int64_t{-1}, int64_t{5}, int64_t{1} << 40}) {
    const std::vector<int64_t> ids = {0, 4, bad};
    try {
      kernels::embedding_forward<double>(cpu(), table.data(), rows, dim, ids.data(), offsets.data(), 2, Combiner::sum,
                                         out.data());
      FAIL() << "no error for id " << bad;
    } catch (const Error& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find(std::to_string(bad)), std::string::npos) << msg;
      EXPECT_NE(msg.find("5 rows"), std::string::npos) << msg;
    }
    // The backward validates them against the table's rows too.
    std::vector<int64_t> unique(3);
    std::vector<double> grad(3 * dim);
    try {
      kernels::embedding_backward<double>(cpu(), out.data(), rows, dim, ids.data(), offsets.data(), 2, Combiner::sum,
                                          unique.data(), grad.data());
      FAIL() << "no backward error for id " << bad;
    } catch (const Error& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find(std::to_string(bad)), std::string::npos) << msg;
      EXPECT_NE(msg.find("5 rows"), std::string::npos) << msg;
    }
  }
}

TEST(Embedding, BackwardMatchesDenseReference) {
  const int64_t rows = 13, dim = 6;
  const Batch batch = make_batch(rows);
  const int64_t nnz = batch.offsets.back();
  const auto dout = random_vec(batch.size() * dim, 44);
  for (Combiner comb : {Combiner::sum, Combiner::mean}) {
    SCOPED_TRACE(static_cast<int>(comb));
    // Dense gradient of the whole table: the adjoint of the forward lookup.
    std::vector<double> dense(rows * dim, 0.0);
    std::set<int64_t> touched;
    for (int64_t b = 0; b < batch.size(); ++b) {
      const int64_t count = batch.offsets[b + 1] - batch.offsets[b];
      for (int64_t j = batch.offsets[b]; j < batch.offsets[b + 1]; ++j) {
        touched.insert(batch.ids[j]);
        for (int64_t d = 0; d < dim; ++d)
          dense[batch.ids[j] * dim + d] += dout[b * dim + d] / (comb == Combiner::mean ? count : 1);
      }
    }
    std::vector<int64_t> unique(nnz, -7);
    auto grad = test::poisoned<double>(nnz * dim);
    const int64_t count =
        kernels::embedding_backward<double>(cpu(), dout.data(), rows, dim, batch.ids.data(), batch.offsets.data(),
                                            batch.size(), comb, unique.data(), grad.data());
    ASSERT_EQ(count, static_cast<int64_t>(touched.size()));
    EXPECT_EQ(std::vector<int64_t>(unique.begin(), unique.begin() + count),
              std::vector<int64_t>(touched.begin(), touched.end()));  // ascending
    std::vector<double> got(grad.begin(), grad.begin() + count * dim), want;
    for (int64_t id : touched)
      for (int64_t d = 0; d < dim; ++d) want.push_back(dense[id * dim + d]);
    EXPECT_REL_NEAR(got, want, 1e-14);

    const auto doutf = cast<float>(dout);
    auto gradf = test::poisoned<float>(nnz * dim);
    std::vector<int64_t> uniquef(nnz);
    ASSERT_EQ(count,
              kernels::embedding_backward<float>(cpu(), doutf.data(), rows, dim, batch.ids.data(), batch.offsets.data(),
                                                 batch.size(), comb, uniquef.data(), gradf.data()));
    EXPECT_REL_NEAR(std::vector<float>(gradf.begin(), gradf.begin() + count * dim), want, 1e-6);
  }
}

TEST(Embedding, BackwardIsDeterministicAndParallelSafe) {
  // Many ids over a small table: long per-id sums, split across threads.
  const int64_t rows = 50, dim = 64, batch = 400;
  std::vector<int64_t> ids, offsets = {0};
  PhiloxGenerator gen(45, 0);
  for (int64_t b = 0; b < batch; ++b) {
    for (uint64_t j = 0; j < 1 + gen.below(6); ++j) ids.push_back(static_cast<int64_t>(gen.below(rows)));
    offsets.push_back(static_cast<int64_t>(ids.size()));
  }
  const auto dout = cast<float>(random_vec(batch * dim, 46));
  std::vector<int64_t> u1(ids.size()), u2(ids.size());
  std::vector<float> g1(ids.size() * dim), g2(ids.size() * dim);
  const int64_t c1 = kernels::embedding_backward<float>(cpu(), dout.data(), rows, dim, ids.data(), offsets.data(), batch,
                                                        Combiner::mean, u1.data(), g1.data());
  const int64_t c2 = kernels::embedding_backward<float>(cpu(), dout.data(), rows, dim, ids.data(), offsets.data(), batch,
                                                        Combiner::mean, u2.data(), g2.data());
  ASSERT_EQ(c1, c2);
  EXPECT_EQ(u1, u2);
  EXPECT_EQ(std::vector<float>(g1.begin(), g1.begin() + c1 * dim),
            std::vector<float>(g2.begin(), g2.begin() + c2 * dim));
}

TEST(Embedding, EmptyBatch) {
  const std::vector<int64_t> offsets = {0, 0, 0};
  const std::vector<float> table = {1.0f, 2.0f};
  std::vector<float> out(2, std::nanf("")), dout(2, 1.0f), grad(1);
  std::vector<int64_t> unique(1);
  kernels::embedding_forward<float>(cpu(), table.data(), 2, 1, nullptr, offsets.data(), 2, Combiner::mean, out.data());
  EXPECT_EQ(out, std::vector<float>({0.0f, 0.0f}));
  EXPECT_EQ(0, kernels::embedding_backward<float>(cpu(), dout.data(), 2, 1, nullptr, offsets.data(), 2, Combiner::sum,
                                                  unique.data(), grad.data()));
}

}  // namespace
}  // namespace kiln
