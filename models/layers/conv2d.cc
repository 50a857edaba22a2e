// Conv2D over NHWC images with HWIO weights; bias and activation fused into the forward kernel.
// SAME padding pads (k - 1) / 2 on each side (odd kernels keep the size at stride 1).
#include "core/error.h"
#include "core/device_memory.h"
#include "kernels/batch_norm.h"
#include "kernels/conv.h"
#include "kernels/conv_max_pool.h"
#include "models/layers/layers.h"

namespace kiln::models {
namespace {

template <typename T>
class Conv2DLayer final : public Layer<T> {
 public:
  explicit Conv2DLayer(const Conv2DSpec& spec) : spec_(spec), act_(to_kernel_activation(spec.activation())) {}

  Shape build(const std::vector<Shape>& inputs, ParamRegistry<T>& params) override {
    if (inputs.size() != 1) fail("conv2d takes one input, got ", inputs.size());
    if (inputs[0].rank() != 3) fail("conv2d needs an [height, width, channels] input, got ", inputs[0].to_string());
    if (spec_.filters() <= 0) fail("conv2d.filters must be > 0, got ", spec_.filters());
    if (spec_.kernel_size() > 2 || spec_.stride_size() > 2) fail("conv2d.kernel and conv2d.stride take 1 or 2 values");
    if (spec_.kernel().empty()) fail("conv2d.kernel is required, e.g. kernel: 3");
    shape_.h = inputs[0][0];
    shape_.w = inputs[0][1];
    shape_.c_in = inputs[0][2];
    shape_.c_out = spec_.filters();
    shape_.kh = pick_dim(spec_.kernel(), 0, 1);
    shape_.kw = pick_dim(spec_.kernel(), 1, 1);
    shape_.stride_h = pick_dim(spec_.stride(), 0, 1);
    shape_.stride_w = pick_dim(spec_.stride(), 1, 1);
    if (shape_.kh <= 0 || shape_.kw <= 0 || shape_.stride_h <= 0 || shape_.stride_w <= 0)
      fail("conv2d kernel and stride must be > 0");
    if (spec_.padding() == Conv2DSpec::SAME) {
      shape_.pad_h = (shape_.kh - 1) / 2;
      shape_.pad_w = (shape_.kw - 1) / 2;
    }
    if (shape_.h + 2 * shape_.pad_h < shape_.kh || shape_.w + 2 * shape_.pad_w < shape_.kw)
      fail("conv2d kernel ", shape_.kh, "x", shape_.kw, " does not fit input ", inputs[0].to_string());
    reg_ = &params;
    int64_t fan_in = shape_.kh * shape_.kw * shape_.c_in, fan_out = shape_.kh * shape_.kw * shape_.c_out;
    w_ = params.add("kernel", Shape{shape_.kh, shape_.kw, shape_.c_in, shape_.c_out}, ParamKind::dense,
                    resolve_init(spec_.init(), spec_.activation()), fan_in, fan_out);
    if (spec_.use_bias()) b_ = params.add("bias", Shape{shape_.c_out}, ParamKind::dense, Init::zeros);
    return Shape{shape_.out_h(), shape_.out_w(), shape_.c_out};
  }

  int64_t macs_per_example() const override {
    return shape_.out_h() * shape_.out_w() * shape_.c_out * shape_.kh * shape_.kw * shape_.c_in;
  }

  void forward(const Context& ctx, const std::vector<const Value*>& in, Value& out) override {
    kernels::Conv2dShape s = shape_;
    s.n = ctx.batch;
    const T* bias = b_ >= 0 ? reg_->value(b_) : nullptr;
    const T* x = in[0]->data.template data<T>();
    if (act_ == kernels::Activation::gelu) {
      Tensor z = scratch(ctx.stream, pre_, out.data.shape(), dtype_of<T>::value);
      kernels::conv2d_forward<T>(ctx.stream, s, x, reg_->value(w_), bias, z.template data<T>(), kernels::Activation::none,
                                 0.01f, !ctx.training);
      kernels::activation_forward<T>(ctx.stream, act_, 0, z.template data<T>(), out.data.template data<T>(),
                                     z.numel());
    } else {
      kernels::conv2d_forward<T>(ctx.stream, s, x, reg_->value(w_), bias, out.data.template data<T>(), act_, 0.01f,
                                 !ctx.training);
    }
  }

  // act(batch_norm(conv(x, w) + b)) as conv(x, w * scale) + (b * scale + shift) with act in the
  // kernel's epilogue: one pass instead of three, and with a max pool after it, four in one where
  // the device fuses them (kernels/conv_max_pool.h). The folded weights come from the batch-norm
  // kernel itself (w as rows over the output channels, with a zero mean and shift), so every
  // device folds them with its own arithmetic.
  bool forward_folded(const Context& ctx, const std::vector<const Value*>& in, Value& out,
                      const InferenceBatchNorm<T>& bn, kernels::Activation act, float slope,
                      const kernels::Pool2dShape* pool) override {
    if (act_ != kernels::Activation::none || act == kernels::Activation::gelu) return false;
    kernels::Conv2dShape s = shape_;
    s.n = ctx.batch;
    if (pool && (ctx.training || !kernels::conv2d_max_pool_fuses<T>(ctx.stream, s, *pool))) return false;
    const int64_t co = shape_.c_out, k = shape_.kh * shape_.kw * shape_.c_in;
    const DType dt = dtype_of<T>::value;
    Tensor w = scratch(ctx.stream, folded_w_, Shape{k, co}, dt);
    Tensor b = scratch(ctx.stream, folded_b_, Shape{co}, dt);
    // Frozen weights (a servable) are folded once; otherwise on every call, as they may have
    // changed since.
    const bool reuse = ctx.weights_frozen && folded_frozen_ == bn.gamma && folded_w_.device() == ctx.stream.device();
    if (!reuse) {
      if (!zeros_.defined() || !(zeros_.device() == ctx.stream.device()) || zeros_.numel() != co)
        zeros_ = zeros_on(ctx.stream, Shape{co}, dt);
      const T* zero = zeros_.template data<T>();
      kernels::batch_norm_forward_inference<T>(ctx.stream, k, co, reg_->value(w_), bn.gamma, zero, zero, bn.var,
                                               bn.eps, w.template data<T>());
      kernels::batch_norm_forward_inference<T>(ctx.stream, 1, co, b_ >= 0 ? reg_->value(b_) : zero, bn.gamma,
                                               bn.beta, bn.mean, bn.var, bn.eps, b.template data<T>());
    }
    folded_frozen_ = ctx.weights_frozen ? bn.gamma : nullptr;
    if (pool) {
      kernels::conv2d_max_pool_forward<T>(ctx.stream, s, *pool, in[0]->data.template data<T>(), w.template data<T>(),
                                          b.template data<T>(), out.data.template data<T>(), act, slope);
      return true;
    }
    kernels::conv2d_forward<T>(ctx.stream, s, in[0]->data.template data<T>(), w.template data<T>(),
                               b.template data<T>(), out.data.template data<T>(), act, slope, !ctx.training);
    return true;
  }

  void backward(const Context& ctx, const std::vector<const Value*>& in, const Value& out, const Tensor& dout,
                const std::vector<Tensor*>& din) override {
    kernels::Conv2dShape s = shape_;
    s.n = ctx.batch;
    const T* dz = dout.template data<T>();
    if (act_ != kernels::Activation::none) {
      Tensor g = scratch(ctx.stream, dz_, dout.shape(), dtype_of<T>::value);
      const T* y = out.data.template data<T>();
      const T* pre = act_ == kernels::Activation::gelu ? pre_.template data<T>() : y;
      kernels::activation_backward<T>(ctx.stream, act_, 0.01f, pre, y, dz, g.template data<T>(), dout.numel());
      dz = g.template data<T>();
    }
    kernels::conv2d_backward_weight<T>(ctx.stream, s, in[0]->data.template data<T>(), dz, reg_->grad(w_),
                                       b_ >= 0 ? reg_->grad(b_) : nullptr, true);
    if (din[0]) kernels::conv2d_backward_data<T>(ctx.stream, s, dz, reg_->value(w_), din[0]->template data<T>());
  }

 private:
  Conv2DSpec spec_;
  kernels::Activation act_;
  kernels::Conv2dShape shape_;
  ParamRegistry<T>* reg_ = nullptr;
  int w_ = -1, b_ = -1;
  Tensor pre_, dz_;
  Tensor folded_w_, folded_b_, zeros_;  // inference folding (forward_folded)
  const void* folded_frozen_ = nullptr;  // the batch norm (its gamma) folded in, when the weights were frozen
};

}  // namespace

template <typename T>
std::unique_ptr<Layer<T>> make_conv2d_layer(const Conv2DSpec& spec) {
  return std::make_unique<Conv2DLayer<T>>(spec);
}
template std::unique_ptr<Layer<float>> make_conv2d_layer<float>(const Conv2DSpec&);
template std::unique_ptr<Layer<double>> make_conv2d_layer<double>(const Conv2DSpec&);

}  // namespace kiln::models
