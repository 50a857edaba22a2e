// Finite-difference gradient checks in double for every layer and every loss: the analytic
// gradients of parameters and inputs must match central differences of the forward pass.
#include <gtest/gtest.h>
#include <google/protobuf/text_format.h>

#include <cmath>

#include "core/philox.h"
#include "models/head.h"
#include "models/model.h"

namespace kiln::models {
namespace {

ModelSpec parse_spec(const std::string& text) {
  ModelSpec spec;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &spec)) << text;
  return spec;
}

struct Inputs {
  std::vector<Value> values;
};

// Random inputs for the spec's inputs; IDS inputs get 0..3 ids per example below `vocab`.
Inputs random_inputs(const Model<double>& model, int64_t batch, int64_t vocab, uint64_t seed) {
  PhiloxGenerator rng(seed, 7);
  Inputs in;
  for (int i = 0; i < model.input_count(); ++i) {
    if (model.spec().inputs(i).kind() == InputSpec::DENSE) {
      Tensor t = Tensor::empty(model.input_shape(i).with_batch(batch), DType::f64);
      for (int64_t j = 0; j < t.numel(); ++j) t.data<double>()[j] = rng.normal();
      in.values.push_back({t, {}});
    } else {
      Tensor offsets = Tensor::empty(Shape{batch + 1}, DType::i64);
      std::vector<int64_t> ids;
      offsets.data<int64_t>()[0] = 0;
      for (int64_t b = 0; b < batch; ++b) {
        int64_t k = static_cast<int64_t>(rng.below(4));  // includes empty examples
        for (int64_t j = 0; j < k; ++j) ids.push_back(static_cast<int64_t>(rng.below(vocab)));
        offsets.data<int64_t>()[b + 1] = static_cast<int64_t>(ids.size());
      }
      Tensor t = Tensor::empty(Shape{std::max<int64_t>(1, static_cast<int64_t>(ids.size()))}, DType::i64);
      std::copy(ids.begin(), ids.end(), t.data<int64_t>());
      in.values.push_back({t, offsets});
    }
  }
  return in;
}

// L = sum(output * weights): a loss whose gradient w.r.t. the output is `weights`.
double objective(Model<double>& model, const Context& ctx, const Inputs& in, const Tensor& weights) {
  const Tensor& out = model.forward(ctx, in.values);
  double l = 0;
  for (int64_t i = 0; i < out.numel(); ++i) l += out.data<double>()[i] * weights.data<double>()[i];
  return l;
}

void expect_close(double analytic, double numeric, const std::string& what) {
  double tol = 1e-6 + 1e-5 * std::max(std::abs(analytic), std::abs(numeric));
  EXPECT_NEAR(analytic, numeric, tol) << what;
}

// Checks every parameter (sampled when large) and every dense input element.
void check_gradients(const std::string& spec_text, int64_t batch = 3, bool training = true, int64_t vocab = 5) {
  SCOPED_TRACE(spec_text);
  Model<double> model(parse_spec(spec_text));
  model.initialize(11);
  model.set_input_gradients(true);
  Inputs in = random_inputs(model, batch, vocab, 3);
  Context ctx{Stream::cpu(), batch, training, 5, 2};
  Tensor weights = Tensor::empty(model.output_shape().with_batch(batch), DType::f64);
  PhiloxGenerator rng(9, 9);
  for (int64_t i = 0; i < weights.numel(); ++i) weights.data<double>()[i] = rng.normal();

  objective(model, ctx, in, weights);
  model.backward(ctx, weights);
  auto& params = model.params();
  // Copy analytic gradients before the numeric passes disturb any scratch state.
  Tensor dense_grad = params.dense_grads().clone();
  std::vector<Tensor> input_grads;
  for (int i = 0; i < model.input_count(); ++i)
    input_grads.push_back(model.spec().inputs(i).kind() == InputSpec::DENSE ? model.input_gradient(i).clone() : Tensor());
  std::vector<std::vector<double>> table_grads;
  for (int h = 0; h < params.size(); ++h) {
    if (params.info(h).kind != ParamKind::embedding) {
      table_grads.emplace_back();
      continue;
    }
    // Densify the row-sparse gradient.
    std::vector<double> dense(params.info(h).shape.numel(), 0.0);
    const SparseGrad<double>& sg = params.sparse_grad(h);
    int64_t dim = params.info(h).shape[1];
    for (int64_t r = 0; r < sg.count; ++r)
      for (int64_t c = 0; c < dim; ++c)
        dense[sg.unique_ids.data<int64_t>()[r] * dim + c] += sg.rows.data<double>()[r * dim + c];
    table_grads.push_back(dense);
  }

  const double eps = 1e-6;
  auto numeric = [&](double* x) {
    double saved = *x;
    *x = saved + eps;
    double plus = objective(model, ctx, in, weights);
    *x = saved - eps;
    double minus = objective(model, ctx, in, weights);
    *x = saved;
    return (plus - minus) / (2 * eps);
  };
  int checked = 0;
  for (int h = 0; h < params.size(); ++h) {
    const ParamInfo& info = params.info(h);
    if (info.kind == ParamKind::state) continue;
    int64_t n = info.shape.numel();
    int64_t stride = std::max<int64_t>(1, n / 40);  // sample large parameters
    for (int64_t j = 0; j < n; j += stride) {
      double* x = params.value(h) + j;
      double analytic = info.kind == ParamKind::dense ? dense_grad.data<double>()[info.offset + j] : table_grads[h][j];
      expect_close(analytic, numeric(x), model.param_name(h) + "[" + std::to_string(j) + "]");
      ++checked;
    }
  }
  for (int i = 0; i < model.input_count(); ++i) {
    if (!input_grads[i].defined()) continue;
    double* x = in.values[i].data.data<double>();
    for (int64_t j = 0; j < in.values[i].data.numel(); ++j) {
      expect_close(input_grads[i].data<double>()[j], numeric(x + j), "input " + std::to_string(i) + "[" + std::to_string(j) + "]");
      ++checked;
    }
  }
  EXPECT_GT(checked, 0);
}

TEST(GradientCheck, DenseEachActivation) {
  for (const char* act : {"NONE", "RELU", "LEAKY_RELU", "GELU", "SIGMOID", "TANH"})
    check_gradients(std::string("inputs { name: 'x' shape: 7 } layers { dense { units: 5 activation: ") + act +
                    " } }");
}

TEST(GradientCheck, DenseWithoutBias) {
  check_gradients("inputs { name: 'x' shape: 4 } layers { dense { units: 3 use_bias: false } }");
}

TEST(GradientCheck, Conv2DStridePadding) {
  check_gradients(
      "inputs { name: 'x' shape: [7, 6, 3] } layers { conv2d { filters: 4 kernel: 3 stride: 2 } } layers { flatten {} }");
  check_gradients(
      "inputs { name: 'x' shape: [5, 5, 2] } layers { conv2d { filters: 3 kernel: [3, 2] padding: VALID "
      "activation: TANH } }");
  check_gradients("inputs { name: 'x' shape: [4, 5, 3] } layers { conv2d { filters: 2 kernel: 1 activation: GELU } }");
}

TEST(GradientCheck, Pooling) {
  check_gradients("inputs { name: 'x' shape: [6, 5, 3] } layers { max_pool2d { pool: 2 } }");
  check_gradients("inputs { name: 'x' shape: [7, 7, 2] } layers { max_pool2d { pool: 3 stride: 2 padding: SAME } }");
  check_gradients("inputs { name: 'x' shape: [6, 5, 3] } layers { avg_pool2d { pool: 2 } }");
  check_gradients("inputs { name: 'x' shape: [7, 7, 2] } layers { avg_pool2d { pool: 3 stride: 2 padding: SAME } }");
  check_gradients("inputs { name: 'x' shape: [4, 3, 5] } layers { global_avg_pool {} }");
}

TEST(GradientCheck, BatchNormTrainingImagesAndFeatures) {
  check_gradients("inputs { name: 'x' shape: [3, 2, 4] } layers { batch_norm {} }", 4);
  check_gradients("inputs { name: 'x' shape: 6 } layers { batch_norm {} }", 5);
}

TEST(GradientCheck, DropoutTraining) {
  check_gradients("inputs { name: 'x' shape: 20 } layers { dropout { rate: 0.3 } }", 4);
}

TEST(GradientCheck, ActivationLayerEachType) {
  for (const char* act : {"RELU", "LEAKY_RELU", "GELU", "SIGMOID", "TANH"})
    check_gradients(std::string("inputs { name: 'x' shape: 9 } layers { activation { type: ") + act +
                    " leaky_slope: 0.2 } }");
}

TEST(GradientCheck, FlattenAndConcatWithFanOut) {
  // 'a' feeds two consumers, so its gradient is the sum of two contributions.
  check_gradients(
      "inputs { name: 'x' shape: [2, 3, 2] } layers { name: 'f' flatten {} } "
      "layers { name: 'a' dense { units: 4 activation: TANH } } "
      "layers { name: 'b' inputs: 'a' dense { units: 3 } } "
      "layers { name: 'c' inputs: ['a', 'b', 'f'] concat {} } layers { dense { units: 2 } }");
}

TEST(GradientCheck, EmbeddingSumAndMeanWideAndDeep) {
  for (const char* combiner : {"SUM", "MEAN"})
    check_gradients(std::string("inputs { name: 'ids' kind: IDS } inputs { name: 'x' shape: 3 } "
                                "layers { name: 'emb' inputs: 'ids' embedding { vocab_size: 5 dim: 4 combiner: ") +
                        combiner +
                        " } } "
                        "layers { name: 'deep' inputs: 'x' dense { units: 4 activation: RELU } } "
                        "layers { name: 'cat' inputs: ['emb', 'deep'] concat {} } layers { dense { units: 1 } }",
                    6);
}

TEST(GradientCheck, SmallCnn) {
  check_gradients(
      "inputs { name: 'x' shape: [8, 8, 1] } layers { conv2d { filters: 3 kernel: 3 } } layers { batch_norm {} } "
      "layers { activation { type: RELU } } layers { max_pool2d {} } layers { flatten {} } "
      "layers { dense { units: 3 } }",
      3);
}

// Loss gradients: d(mean loss)/d(output) of each head against central differences.
void check_head(const std::string& head_text, int64_t outputs, bool int_labels) {
  SCOPED_TRACE(head_text);
  HeadSpec spec;
  ASSERT_TRUE(google::protobuf::TextFormat::ParseFromString(head_text, &spec));
  Head<double> head(spec, Shape{outputs});
  const int64_t batch = 5;
  PhiloxGenerator rng(4, 4);
  Tensor out = Tensor::empty(Shape{batch, outputs}, DType::f64);
  for (int64_t i = 0; i < out.numel(); ++i) out.data<double>()[i] = 2 * rng.normal();
  Tensor labels = Tensor::empty(Shape{batch}, int_labels ? DType::i32 : DType::f64);
  for (int64_t b = 0; b < batch; ++b) {
    if (int_labels)
      labels.data<int32_t>()[b] = static_cast<int32_t>(rng.below(outputs));
    else
      labels.data<double>()[b] = spec.type() == HeadSpec::BINARY ? static_cast<double>(rng.below(2)) : 2 * rng.normal();
  }
  Tensor grad = Tensor::empty(out.shape(), DType::f64);
  head.loss(Stream::cpu(), out, labels, batch, &grad);
  const double eps = 1e-6;
  for (int64_t i = 0; i < out.numel(); ++i) {
    double& x = out.data<double>()[i];
    double saved = x;
    x = saved + eps;
    double plus = head.loss(Stream::cpu(), out, labels, batch, nullptr);
    x = saved - eps;
    double minus = head.loss(Stream::cpu(), out, labels, batch, nullptr);
    x = saved;
    expect_close(grad.data<double>()[i], (plus - minus) / (2 * eps), "output[" + std::to_string(i) + "]");
  }
}

TEST(GradientCheck, Losses) {
  check_head("type: MULTICLASS num_classes: 4", 4, true);
  check_head("type: BINARY", 1, false);
  check_head("type: REGRESSION regression_loss: MSE", 1, false);
  check_head("type: REGRESSION regression_loss: HUBER huber_delta: 1.5", 1, false);
}

}  // namespace
}  // namespace kiln::models
