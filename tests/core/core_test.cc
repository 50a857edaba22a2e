// core/: tensors and views, dtypes, allocator alignment, Philox (known-answer vectors), thread
// pool, parallel_for, errors.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <numeric>
#include <set>

#include "core/dtype.h"
#include "core/error.h"
#include "core/philox.h"
#include "core/tensor.h"
#include "core/thread_pool.h"

namespace kiln {
namespace {

TEST(Shape, NumelRankBatch) {
  Shape s{2, 3, 4};
  EXPECT_EQ(s.rank(), 3);
  EXPECT_EQ(s.numel(), 24);
  EXPECT_EQ(s[-1], 4);
  EXPECT_EQ(s.with_batch(5), (Shape{5, 2, 3, 4}));
  EXPECT_EQ(s.drop_batch(), (Shape{3, 4}));
  EXPECT_EQ(s.to_string(), "[2, 3, 4]");
  EXPECT_EQ(Shape{}.numel(), 1);
  EXPECT_EQ(Shape{}.drop_batch(), Shape{});
  EXPECT_NE((Shape{2, 3}), (Shape{2, 3, 1}));
}

// Dimensions are held inline, up to Shape::kMaxRank: more is an error that says so, not an
// overflow.
TEST(Shape, MoreDimensionsThanItHoldsAreAnError) {
  const std::vector<int64_t> eight(Shape::kMaxRank, 2);
  EXPECT_EQ(Shape(eight).numel(), 256);
  std::vector<int64_t> nine = eight;
  nine.push_back(2);
  try {
    (void)Shape{nine};
    FAIL() << "no error for 9 dimensions";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("9 dimensions (at most 8"), std::string::npos) << e.what();
  }
  EXPECT_THROW(Shape(eight).with_batch(1), Error);
}

TEST(Tensor, ViewsShareTheBuffer) {
  Tensor t = Tensor::zeros(Shape{4, 3}, DType::f32);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(t.raw()) % kCpuAlignment, 0u);
  Tensor rows = t.slice_rows(1, 3);
  EXPECT_EQ(rows.shape(), (Shape{2, 3}));
  rows.data<float>()[0] = 7;
  EXPECT_EQ(t.data<float>()[3], 7);
  Tensor flat = t.reshape(Shape{12});
  EXPECT_EQ(flat.data<float>()[3], 7);
  Tensor v = t.view(5, Shape{2});
  v.data<float>()[1] = 9;
  EXPECT_EQ(t.data<float>()[6], 9);
  Tensor c = t.clone();
  c.data<float>()[3] = 1;
  EXPECT_EQ(t.data<float>()[3], 7);
  EXPECT_THROW(t.reshape(Shape{5}), InternalError);
  EXPECT_THROW(t.data<int32_t>(), InternalError);
  EXPECT_THROW(t.slice_rows(2, 5), InternalError);
}

TEST(Tensor, AllDtypesHaveSizes) {
  for (DType d : {DType::f32, DType::bf16, DType::f16, DType::i32, DType::i64, DType::u8, DType::f64}) {
    Tensor t = Tensor::empty(Shape{3, 5}, d);
    EXPECT_EQ(t.bytes(), 15 * dtype_size(d)) << dtype_name(d);
  }
}

TEST(DType, HalfPrecisionRoundTrips) {
  EXPECT_EQ(bf16_to_float(float_to_bf16(1.0f)), 1.0f);
  EXPECT_EQ(bf16_to_float(float_to_bf16(-2.5f)), -2.5f);
  // Round to nearest even: 1 + 2^-8 is halfway between two bf16 values and rounds down to 1.
  EXPECT_EQ(bf16_to_float(float_to_bf16(1.0f + 1.0f / 256)), 1.0f);
  EXPECT_EQ(bf16_to_float(float_to_bf16(1.0f + 3.0f / 256)), 1.0f + 4.0f / 256);
  EXPECT_TRUE(std::isnan(bf16_to_float(float_to_bf16(NAN))));
  EXPECT_EQ(f16_to_float(float_to_f16(0.333251953125f)), 0.333251953125f);
  EXPECT_EQ(f16_to_float(float_to_f16(65504.0f)), 65504.0f);
  EXPECT_TRUE(std::isinf(f16_to_float(float_to_f16(1e6f))));
}

// Known-answer vectors of Philox4x32-10 (Salmon et al., Random123 kat_vectors).
TEST(Philox, KnownAnswerVectors) {
  auto b = Philox4x32::generate(0, 0, 0);
  EXPECT_EQ(b, (Philox4x32::Block{0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u}));
  b = Philox4x32::generate(~0ull, ~0ull, ~0ull);
  EXPECT_EQ(b, (Philox4x32::Block{0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu}));
  b = Philox4x32::generate(0x299f31d0a4093822ull, 0x0370734413198a2eull, 0x85a308d3243f6a88ull);
  EXPECT_EQ(b, (Philox4x32::Block{0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u}));
}

TEST(Philox, StreamsAreIndependentAndUniform) {
  PhiloxGenerator a(42, 0), b(42, 1), c(42, 0);
  int same = 0;
  double sum = 0;
  for (int i = 0; i < 10000; ++i) {
    uint32_t x = a.next_u32();
    same += x == b.next_u32();
    EXPECT_EQ(x, c.next_u32());
  }
  EXPECT_LT(same, 3);
  PhiloxGenerator u(7, 3);
  for (int i = 0; i < 100000; ++i) {
    float f = u.uniform();
    ASSERT_GE(f, 0.0f);
    ASSERT_LT(f, 1.0f);
    sum += f;
  }
  EXPECT_NEAR(sum / 100000, 0.5, 0.01);
  // Random access: element i of a stream does not depend on the elements before it.
  EXPECT_EQ(Philox4x32::uniform(42, 0, 5), [] {
    PhiloxGenerator g(42, 0);
    g.seek(5);
    return g.uniform();
  }());
  PhiloxGenerator n(1, 1);
  double m = 0, m2 = 0;
  for (int i = 0; i < 100000; ++i) {
    double x = n.normal();
    m += x;
    m2 += x * x;
  }
  EXPECT_NEAR(m / 100000, 0.0, 0.02);
  EXPECT_NEAR(m2 / 100000, 1.0, 0.02);
  std::set<uint64_t> seen;
  PhiloxGenerator r(3, 3);
  for (int i = 0; i < 1000; ++i) seen.insert(r.below(10));
  EXPECT_EQ(seen.size(), 10u);
  EXPECT_EQ(*seen.rbegin(), 9u);
}

TEST(ThreadPool, RunsTasksAndPropagatesExceptions) {
  ThreadPool pool(3);
  std::vector<std::future<int>> results;
  for (int i = 0; i < 50; ++i) results.push_back(pool.submit([i] { return i * i; }));
  int total = 0;
  for (auto& r : results) total += r.get();
  EXPECT_EQ(total, 40425);
  auto bad = pool.submit([]() -> int { throw Error("boom"); });
  EXPECT_THROW(bad.get(), Error);
}

TEST(ParallelFor, CoversEveryIndexOnce) {
  for (int64_t n : {0, 1, 7, 1000, 100003}) {
    std::vector<std::atomic<int>> hits(n);
    parallel_for(n, 16, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) hits[i]++;
    });
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[i].load(), 1) << n << " " << i;
  }
}

TEST(Errors, CheckNamesLocationAndMessage) {
  try {
    KILN_CHECK(1 + 1 == 3, "math is ", "broken");
    FAIL();
  } catch (const InternalError& e) {
    std::string what = e.what();
    EXPECT_NE(what.find("core_test.cc"), std::string::npos);
    EXPECT_NE(what.find("1 + 1 == 3"), std::string::npos);
    EXPECT_NE(what.find("math is broken"), std::string::npos);
  }
  EXPECT_THROW(fail("user ", 1), Error);
}

}  // namespace
}  // namespace kiln
