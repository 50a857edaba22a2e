// Shape-only and element-wise layers: Flatten, Activation, Dropout, Concat.
#include "core/device_memory.h"
#include "core/error.h"
#include "kernels/activation.h"
#include "kernels/dropout.h"
#include "models/layers/layers.h"

namespace kiln::models {
namespace {


template <typename T>
class FlattenLayer final : public Layer<T> {
 public:
  Shape build(const std::vector<Shape>& inputs, ParamRegistry<T>&) override {
    if (inputs.size() != 1) fail("flatten takes one input");
    return Shape{inputs[0].numel()};
  }
  // The output is the input's memory under the flat shape (no layer writes into its input): at
  // batch 64 the CNN's flatten copied 800 KB on one thread.
  void forward(const Context&, const std::vector<const Value*>& in, Value& out) override {
    out.data = in[0]->data.reshape(out.data.shape());
  }
  void backward(const Context& ctx, const std::vector<const Value*>&, const Value&, const Tensor& dout,
                const std::vector<Tensor*>& din) override {
    if (din[0]) copy_async(ctx.stream, *din[0], dout);
  }
};

template <typename T>
class ActivationLayer final : public Layer<T> {
 public:
  explicit ActivationLayer(const ActivationSpec& spec)
      : act_(to_kernel_activation(spec.type())), slope_(spec.leaky_slope()) {}
  Shape build(const std::vector<Shape>& inputs, ParamRegistry<T>&) override {
    if (inputs.size() != 1) fail("activation takes one input");
    return inputs[0];
  }
  bool elementwise_activation(kernels::Activation& act, float& slope) const override {
    act = act_;
    slope = slope_;
    return true;
  }
  void forward(const Context& ctx, const std::vector<const Value*>& in, Value& out) override {
    kernels::activation_forward<T>(ctx.stream, act_, slope_, in[0]->data.template data<T>(),
                                   out.data.template data<T>(), out.data.numel());
  }
  void backward(const Context& ctx, const std::vector<const Value*>& in, const Value& out, const Tensor& dout,
                const std::vector<Tensor*>& din) override {
    if (din[0])
      kernels::activation_backward<T>(ctx.stream, act_, slope_, in[0]->data.template data<T>(),
                                      out.data.template data<T>(), dout.template data<T>(),
                                      din[0]->template data<T>(), dout.numel());
  }

 private:
  kernels::Activation act_;
  float slope_;
};

template <typename T>
class DropoutLayer final : public Layer<T> {
 public:
  DropoutLayer(const DropoutSpec& spec, int index) : rate_(spec.rate()), index_(index) {}
  Shape build(const std::vector<Shape>& inputs, ParamRegistry<T>&) override {
    if (inputs.size() != 1) fail("dropout takes one input");
    if (!(rate_ >= 0 && rate_ < 1)) fail("dropout.rate must be in [0, 1), got ", rate_);
    return inputs[0];
  }
  void forward(const Context& ctx, const std::vector<const Value*>& in, Value& out) override {
    if (!ctx.training || rate_ == 0) {
      out.data = in[0]->data;  // the identity: the input's memory, not a copy
      return;
    }
    Tensor mask = scratch(ctx.stream, mask_, out.data.shape(), DType::u8);
    // One Philox stream per (step, layer): the GPU path draws the same mask.
    // With ctx.step_key (a captured step) the step part comes from device memory, so each replay
    // draws its own masks: the same streams either way.
    const uint64_t layer = static_cast<uint64_t>(index_ & 0xfff);
    uint64_t stream = ctx.step_key ? layer : (static_cast<uint64_t>(ctx.step) << 12) | layer;
    const uint64_t first = static_cast<uint64_t>(ctx.row_offset) * static_cast<uint64_t>(out.data.numel() / ctx.batch);
    kernels::dropout_forward<T>(ctx.stream, out.data.numel(), rate_, ctx.seed, stream, in[0]->data.template data<T>(),
                                out.data.template data<T>(), mask.template data<uint8_t>(), first, ctx.step_key);
  }
  void backward(const Context& ctx, const std::vector<const Value*>&, const Value&, const Tensor& dout,
                const std::vector<Tensor*>& din) override {
    if (!din[0]) return;
    if (rate_ == 0) {
      copy_async(ctx.stream, *din[0], dout);
      return;
    }
    kernels::dropout_backward<T>(ctx.stream, dout.numel(), rate_, mask_.template data<uint8_t>(),
                                 dout.template data<T>(), din[0]->template data<T>());
  }

 private:
  float rate_;
  int index_;
  Tensor mask_;
};

// Concatenates flat inputs [batch, f_i] along the feature axis.
template <typename T>
class ConcatLayer final : public Layer<T> {
 public:
  Shape build(const std::vector<Shape>& inputs, ParamRegistry<T>&) override {
    if (inputs.empty()) fail("concat needs at least one input");
    int64_t total = 0;
    for (const Shape& s : inputs) {
      if (s.rank() != 1) fail("concat takes flat inputs, got ", s.to_string(), " (add a flatten layer)");
      widths_.push_back(s[0]);
      total += s[0];
    }
    return Shape{total};
  }
  void forward(const Context& ctx, const std::vector<const Value*>& in, Value& out) override {
    int64_t total = out.data.shape()[1];
    T* y = out.data.template data<T>();
    int64_t col = 0;
    for (size_t i = 0; i < in.size(); ++i) {
      copy_rows_async(ctx.stream, y + col, total * sizeof(T), in[i]->data.template data<T>(), widths_[i] * sizeof(T),
                      widths_[i] * sizeof(T), ctx.batch);
      col += widths_[i];
    }
  }
  void backward(const Context& ctx, const std::vector<const Value*>&, const Value&, const Tensor& dout,
                const std::vector<Tensor*>& din) override {
    int64_t total = dout.shape()[1];
    const T* dy = dout.template data<T>();
    int64_t col = 0;
    for (size_t i = 0; i < din.size(); ++i) {
      if (din[i])
        copy_rows_async(ctx.stream, din[i]->template data<T>(), widths_[i] * sizeof(T), dy + col, total * sizeof(T),
                        widths_[i] * sizeof(T), ctx.batch);
      col += widths_[i];
    }
  }

 private:
  std::vector<int64_t> widths_;
};

}  // namespace

template <typename T>
std::unique_ptr<Layer<T>> make_flatten_layer() {
  return std::make_unique<FlattenLayer<T>>();
}
template <typename T>
std::unique_ptr<Layer<T>> make_activation_layer(const ActivationSpec& spec) {
  return std::make_unique<ActivationLayer<T>>(spec);
}
template <typename T>
std::unique_ptr<Layer<T>> make_dropout_layer(const DropoutSpec& spec, int index) {
  return std::make_unique<DropoutLayer<T>>(spec, index);
}
template <typename T>
std::unique_ptr<Layer<T>> make_concat_layer() {
  return std::make_unique<ConcatLayer<T>>();
}

#define KILN_INSTANTIATE(T)                                                                   \
  template std::unique_ptr<Layer<T>> make_flatten_layer<T>();                                 \
  template std::unique_ptr<Layer<T>> make_activation_layer<T>(const ActivationSpec&);         \
  template std::unique_ptr<Layer<T>> make_dropout_layer<T>(const DropoutSpec&, int);          \
  template std::unique_ptr<Layer<T>> make_concat_layer<T>();
KILN_INSTANTIATE(float)
KILN_INSTANTIATE(double)
#undef KILN_INSTANTIATE

}  // namespace kiln::models
