// Batch normalisation over the last dimension (channels of NHWC images, features of dense
// inputs). Training uses batch statistics and updates the running ones; inference uses the
// running statistics.
#include "core/error.h"
#include "kernels/batch_norm.h"
#include "models/layers/layers.h"

namespace kiln::models {
namespace {

template <typename T>
class BatchNormLayer final : public Layer<T> {
 public:
  explicit BatchNormLayer(const BatchNormSpec& spec) : spec_(spec) {}

  Shape build(const std::vector<Shape>& inputs, ParamRegistry<T>& params) override {
    if (inputs.size() != 1 || inputs[0].rank() < 1) fail("batch_norm takes one input");
    if (spec_.momentum() < 0 || spec_.momentum() > 1) fail("batch_norm.momentum must be in [0, 1]");
    if (spec_.epsilon() <= 0) fail("batch_norm.epsilon must be > 0");
    channels_ = inputs[0][-1];
    per_example_rows_ = inputs[0].numel() / channels_;
    reg_ = &params;
    gamma_ = params.add("gamma", Shape{channels_}, ParamKind::dense, Init::ones);
    beta_ = params.add("beta", Shape{channels_}, ParamKind::dense, Init::zeros);
    mean_ = params.add("moving_mean", Shape{channels_}, ParamKind::state, Init::zeros);
    var_ = params.add("moving_variance", Shape{channels_}, ParamKind::state, Init::ones);
    return inputs[0];
  }

  void forward(const Context& ctx, const std::vector<const Value*>& in, Value& out) override {
    int64_t rows = ctx.batch * per_example_rows_;
    const T* x = in[0]->data.template data<T>();
    T* y = out.data.template data<T>();
    T eps = static_cast<T>(spec_.epsilon());
    if (ctx.training) {
      Tensor sm = scratch(ctx.stream, save_mean_, Shape{channels_}, dtype_of<T>::value);
      Tensor si = scratch(ctx.stream, save_inv_std_, Shape{channels_}, dtype_of<T>::value);
      kernels::batch_norm_forward_training<T>(ctx.stream, rows, channels_, x, reg_->value(gamma_), reg_->value(beta_),
                                              eps, static_cast<T>(spec_.momentum()), y, sm.template data<T>(),
                                              si.template data<T>(), reg_->value(mean_), reg_->value(var_));
    } else {
      kernels::batch_norm_forward_inference<T>(ctx.stream, rows, channels_, x, reg_->value(gamma_),
                                               reg_->value(beta_), reg_->value(mean_), reg_->value(var_), eps, y);
    }
  }

  bool inference_batch_norm(InferenceBatchNorm<T>& bn) const override {
    bn = {reg_->value(gamma_), reg_->value(beta_), reg_->value(mean_), reg_->value(var_), static_cast<T>(spec_.epsilon())};
    return true;
  }

  void backward(const Context& ctx, const std::vector<const Value*>& in, const Value&, const Tensor& dout,
                const std::vector<Tensor*>& din) override {
    KILN_CHECK(ctx.training, "batch_norm backward needs a training forward");
    int64_t rows = ctx.batch * per_example_rows_;
    T* dx = din[0] ? din[0]->template data<T>() : scratch(ctx.stream, dx_, dout.shape(), dtype_of<T>::value).template data<T>();
    kernels::batch_norm_backward<T>(ctx.stream, rows, channels_, in[0]->data.template data<T>(),
                                    dout.template data<T>(), reg_->value(gamma_), save_mean_.template data<T>(),
                                    save_inv_std_.template data<T>(), dx, reg_->grad(gamma_), reg_->grad(beta_));
  }

 private:
  BatchNormSpec spec_;
  int64_t channels_ = 0, per_example_rows_ = 0;
  ParamRegistry<T>* reg_ = nullptr;
  int gamma_ = -1, beta_ = -1, mean_ = -1, var_ = -1;
  Tensor save_mean_, save_inv_std_, dx_;
};

}  // namespace

template <typename T>
std::unique_ptr<Layer<T>> make_batch_norm_layer(const BatchNormSpec& spec) {
  return std::make_unique<BatchNormLayer<T>>(spec);
}
template std::unique_ptr<Layer<float>> make_batch_norm_layer<float>(const BatchNormSpec&);
template std::unique_ptr<Layer<double>> make_batch_norm_layer<double>(const BatchNormSpec&);

}  // namespace kiln::models
