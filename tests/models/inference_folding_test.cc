// Inference folding (Model::forward): a convolution followed by batch norm and an activation runs
// as one convolution with folded weights. Its answers match the unfolded layers within rounding
// and each row's bits do not depend on the batch around it.
#include <gtest/gtest.h>
#include <google/protobuf/text_format.h>

#include <cmath>
#include <cstring>

#include "core/philox.h"
#include "models/model.h"

namespace kiln::models {
namespace {

ModelSpec spec(const std::string& middle) {
  ModelSpec s;
  const std::string text = "inputs { name: 'x' shape: [6, 6, 2] } layers { name: 'c' conv2d { filters: 4 kernel: 3 } } " +
                           middle +
                           "layers { name: 'bn' batch_norm {} } layers { activation { type: RELU } } "
                           "layers { max_pool2d { pool: 2 } } layers { flatten {} } layers { name: 'd' dense { units: 3 } }";
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &s)) << text;
  return s;
}

std::vector<float> run(Model<float>& m, const std::vector<float>& x, int64_t rows, int64_t first, bool frozen = false) {
  Tensor in = Tensor::empty(Shape{rows, 6, 6, 2}, DType::f32);
  std::memcpy(in.data<float>(), x.data() + first * 72, static_cast<size_t>(rows * 72) * sizeof(float));
  Context ctx{Stream::cpu(), rows, false, 0, 0};
  ctx.weights_frozen = frozen;
  const Tensor& out = m.forward(ctx, {{in, Tensor()}});
  return std::vector<float>(out.data<float>(), out.data<float>() + rows * 3);
}

TEST(InferenceFolding, ConvBatchNormReluMatchesTheLayersAndIsRowInvariant) {
  Model<float> folded(spec("")), plain(spec("layers { dropout { rate: 0.5 } } "));  // dropout breaks the chain
  folded.initialize(7);
  // Batch-norm statistics and affine away from the identity, so folding has work to do.
  PhiloxGenerator gen(3, 0);
  for (const char* name : {"bn/gamma", "bn/beta", "bn/moving_mean", "bn/moving_variance"}) {
    float* p = folded.params().value(folded.find_param(name));
    for (int c = 0; c < 4; ++c) p[c] = 0.5f + gen.uniform();
  }
  auto& fp = folded.params();
  std::memcpy(plain.params().dense_values().raw(), fp.dense_values().raw(), fp.dense_values().bytes());
  std::memcpy(plain.params().state_values().raw(), fp.state_values().raw(), fp.state_values().bytes());
  const int64_t rows = 7;
  std::vector<float> x(static_cast<size_t>(rows * 72));
  for (float& v : x) v = gen.uniform() * 2.0f - 1.0f;
  const std::vector<float> a = run(folded, x, rows, 0), b = run(plain, x, rows, 0);
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], 1e-5f * (1.0f + std::abs(b[i]))) << i;
  // Folding rounds differently from the layers one by one: equal bits would mean it never ran.
  EXPECT_NE(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)), 0);
  for (int64_t r = 0; r < rows; ++r) {
    const std::vector<float> one = run(folded, x, 1, r);
    EXPECT_EQ(std::memcmp(one.data(), a.data() + r * 3, 3 * sizeof(float)), 0) << "row " << r;
  }
  // Frozen weights (a servable) fold once and keep the folded weights: the same bits call after
  // call, and a weight changed behind the promise does not show (the fold was kept, not redone);
  // an unfrozen call folds again, so the change shows at once.
  for (int call = 0; call < 3; ++call) {
    const std::vector<float> f = run(folded, x, rows, 0, /*frozen=*/true);
    EXPECT_EQ(std::memcmp(f.data(), a.data(), a.size() * sizeof(float)), 0) << "call " << call;
  }
  folded.params().value(folded.find_param("bn/gamma"))[0] *= 2.0f;
  const std::vector<float> kept = run(folded, x, rows, 0, /*frozen=*/true);
  EXPECT_EQ(std::memcmp(kept.data(), a.data(), a.size() * sizeof(float)), 0);
  EXPECT_NE(std::memcmp(run(folded, x, rows, 0).data(), a.data(), a.size() * sizeof(float)), 0);
}

}  // namespace
}  // namespace kiln::models
