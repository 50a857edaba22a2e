// Model graph validation, heads and metrics, LR schedules, optimizer clipping.
#include <gtest/gtest.h>
#include <google/protobuf/text_format.h>

#include <cmath>

#include "core/error.h"
#include "models/head.h"
#include "models/model.h"
#include "models/optimizer.h"

namespace kiln::models {
namespace {

ModelSpec spec(const std::string& text) {
  ModelSpec s;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &s)) << text;
  return s;
}

std::string build_error(const std::string& text) {
  try {
    Model<float> m(spec(text));
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(ModelSpecValidation, ErrorsNameTheLayerAndProblem) {
  EXPECT_EQ(build_error("layers { dense { units: 3 } }"), "model.inputs is empty: declare at least one input");
  EXPECT_EQ(build_error("inputs { name: 'x' shape: 4 } layers { dense { units: 3 } inputs: 'y' }"),
            "model.layers[0] (dense_0): unknown input 'y' (inputs must be model inputs or earlier layers)");
  EXPECT_EQ(build_error("inputs { name: 'x' shape: [4, 4, 1] } layers { dense { units: 3 } }"),
            "model.layers[0] (dense_0): dense needs a flat input, got [4, 4, 1] (add a flatten layer)");
  EXPECT_EQ(build_error("inputs { name: 'x' shape: 4 } layers { name: 'a' dense { units: 0 } }"),
            "model.layers[0] (a): dense.units must be > 0, got 0");
  EXPECT_EQ(build_error("inputs { name: 'x' shape: 4 } layers { embedding { vocab_size: 3 dim: 2 } }"),
            "model.layers[0] (embedding_0): an embedding layer needs an IDS input");
  EXPECT_EQ(build_error("inputs { name: 'x' kind: IDS } layers { dense { units: 2 } }"),
            "model.layers[0] (dense_0): an IDS input can only feed an embedding layer");
  EXPECT_EQ(build_error("inputs { name: 'x' shape: 4 } layers { name: 'x' dense { units: 2 } }"),
            "model.layers[0] (x): duplicate name");
  EXPECT_EQ(build_error("inputs { name: 'x' shape: 4 } layers { }"),
            "model.layers[0] (layer_0): layer 0 () has no type: set one of dense, embedding, conv2d, max_pool2d, "
            "avg_pool2d, global_avg_pool, flatten, batch_norm, dropout, activation, concat");
  EXPECT_EQ(build_error("inputs { name: 'x' shape: [3, 3, 1] } layers { max_pool2d { pool: 4 } }"),
            "model.layers[0] (max_pool2d_0): max_pool2d window 4x4 does not fit input [3, 3, 1]");
}

TEST(ModelParams, FlatBufferNamesAndDeterministicInit) {
  ModelSpec s = spec(
      "inputs { name: 'x' shape: [6, 6, 2] } layers { name: 'c' conv2d { filters: 4 kernel: 3 activation: RELU } } "
      "layers { name: 'bn' batch_norm {} } layers { flatten {} } layers { name: 'd' dense { units: 3 } }");
  Model<float> a(s), b(s);
  a.initialize(7);
  b.initialize(7);
  auto& pa = a.params();
  EXPECT_EQ(a.param_name(0), "c/kernel");
  EXPECT_EQ(a.param_name(1), "c/bias");
  EXPECT_GE(pa.dense_count(), 3 * 3 * 2 * 4 + 4 + 4 + 4 + 144 * 3 + 3);
  EXPECT_EQ(0, std::memcmp(pa.dense_values().raw(), b.params().dense_values().raw(), pa.dense_values().bytes()));
  Model<float> c(s);
  c.initialize(8);
  EXPECT_NE(0, std::memcmp(pa.dense_values().raw(), c.params().dense_values().raw(), pa.dense_values().bytes()));
  // He-normal on the conv kernel: variance 2 / fan_in within sampling error.
  const float* w = pa.value(0);
  double var = 0;
  for (int i = 0; i < 72; ++i) var += w[i] * w[i];
  var /= 72;
  EXPECT_NEAR(var, 2.0 / 18, 0.06);
  // Batch-norm gamma starts at 1, moving variance at 1 (state buffer).
  EXPECT_EQ(pa.value(2)[0], 1.0f);
  EXPECT_EQ(pa.info(5).kind, ParamKind::state);
  EXPECT_EQ(pa.value(5)[0], 1.0f);
}

TEST(Metrics, RocAucWithTies) {
  EXPECT_DOUBLE_EQ(roc_auc({{0.1, 0}, {0.4, 0}, {0.35, 1}, {0.8, 1}}), 0.75);
  EXPECT_DOUBLE_EQ(roc_auc({{0.5, 0}, {0.5, 1}}), 0.5);
  EXPECT_DOUBLE_EQ(roc_auc({{0.1, 0}, {0.9, 1}}), 1.0);
}

TEST(Metrics, MulticlassAccuracyAndRegressionErrors) {
  HeadSpec h;
  h.set_type(HeadSpec::MULTICLASS);
  h.set_num_classes(3);
  MetricAccumulator<float> acc(h);
  Tensor out = Tensor::empty(Shape{2, 3}, DType::f32);
  float o[] = {0.1f, 2.0f, 0.3f, 5.0f, 1.0f, 0.0f};
  std::memcpy(out.raw(), o, sizeof o);
  Tensor y = Tensor::empty(Shape{2}, DType::i32);
  y.data<int32_t>()[0] = 1;
  y.data<int32_t>()[1] = 2;
  acc.add(Stream::cpu(), out, y, 2, 0.5);
  EXPECT_DOUBLE_EQ(acc.result().at("accuracy"), 0.5);
  EXPECT_DOUBLE_EQ(acc.result().at("loss"), 0.5);

  HeadSpec r;
  r.set_type(HeadSpec::REGRESSION);
  MetricAccumulator<float> racc(r);
  Tensor p = Tensor::empty(Shape{2, 1}, DType::f32), t = Tensor::empty(Shape{2}, DType::f32);
  p.data<float>()[0] = 1;
  p.data<float>()[1] = 4;
  t.data<float>()[0] = 2;
  t.data<float>()[1] = 1;
  racc.add(Stream::cpu(), p, t, 2, 0);
  EXPECT_DOUBLE_EQ(racc.result().at("mae"), 2.0);
  EXPECT_DOUBLE_EQ(racc.result().at("rmse"), std::sqrt(5.0));
}

TEST(Head, RejectsMismatchedOutputs) {
  HeadSpec h;
  h.set_num_classes(10);
  EXPECT_THROW(Head<float>(h, Shape{7}), Error);
  HeadSpec b;
  b.set_type(HeadSpec::BINARY);
  EXPECT_THROW(Head<float>(b, Shape{2}), Error);
}

TEST(LrSchedule, WarmupStepAndCosine) {
  LrSchedule s;
  EXPECT_FLOAT_EQ(learning_rate_at(s, 0.1f, 50, 100), 0.1f);
  s.set_warmup_steps(10);
  EXPECT_FLOAT_EQ(learning_rate_at(s, 0.1f, 0, 100), 0.01f);
  EXPECT_FLOAT_EQ(learning_rate_at(s, 0.1f, 9, 100), 0.1f);
  s.set_type(LrSchedule::STEP);
  s.set_warmup_steps(0);
  s.set_step_size(10);
  s.set_gamma(0.5f);
  EXPECT_FLOAT_EQ(learning_rate_at(s, 0.1f, 25, 100), 0.025f);
  s.set_type(LrSchedule::COSINE);
  s.set_min_lr(0.0f);
  EXPECT_FLOAT_EQ(learning_rate_at(s, 0.1f, 0, 101), 0.1f);
  EXPECT_NEAR(learning_rate_at(s, 0.1f, 50, 101), 0.05f, 1e-6);
  EXPECT_NEAR(learning_rate_at(s, 0.1f, 100, 101), 0.0f, 1e-7);
}

TEST(Optimizer, GlobalNormClippingScalesDenseAndSparseGradients) {
  ModelSpec s = spec(
      "inputs { name: 'ids' kind: IDS } layers { name: 'e' embedding { vocab_size: 4 dim: 2 combiner: SUM } } "
      "layers { dense { units: 1 use_bias: false } }");
  Model<float> m(s);
  m.initialize(1);
  auto& p = m.params();
  p.zero_grads();
  float* g = p.grad(1);
  g[0] = 3;
  g[1] = 0;
  SparseGrad<float>& sg = p.sparse_grad(0);
  sg.unique_ids = Tensor::empty(Shape{1}, DType::i64);
  sg.rows = Tensor::empty(Shape{1, 2}, DType::f32);
  sg.unique_ids.data<int64_t>()[0] = 2;
  sg.rows.data<float>()[0] = 4;
  sg.rows.data<float>()[1] = 0;
  sg.count = 1;
  OptimizerConfig c;
  c.set_type(OptimizerConfig::SGD);
  c.set_momentum(0);
  c.set_learning_rate(1);
  c.set_clip_global_norm(1);
  Optimizer opt(c, p);
  float w0 = p.value(1)[0], e0 = p.value(0)[4], untouched = p.value(0)[0];
  EXPECT_DOUBLE_EQ(opt.step(Stream::cpu(), 1.0f), 5.0);  // sqrt(3^2 + 4^2)
  EXPECT_NEAR(p.value(1)[0], w0 - 0.6f, 1e-6);           // 3 / 5
  // Sparse Adam moves the touched row (id 2) by about lr, Adam's first step, and no other.
  EXPECT_NEAR(p.value(0)[4], e0 - 1.0f, 1e-3);
  EXPECT_EQ(p.value(0)[0], untouched);
}

}  // namespace
}  // namespace kiln::models
