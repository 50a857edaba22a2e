// Max and average pooling over NHWC images.
#include "core/error.h"
#include "kernels/pooling.h"
#include "models/layers/layers.h"

namespace kiln::models {
namespace {

template <typename T>
class Pool2DLayer final : public Layer<T> {
 public:
  Pool2DLayer(const Pool2DSpec& spec, bool max_pool) : spec_(spec), max_(max_pool) {}

  Shape build(const std::vector<Shape>& inputs, ParamRegistry<T>&) override {
    const char* name = max_ ? "max_pool2d" : "avg_pool2d";
    if (inputs.size() != 1 || inputs[0].rank() != 3)
      fail(name, " needs one [height, width, channels] input");
    shape_.h = inputs[0][0];
    shape_.w = inputs[0][1];
    shape_.c = inputs[0][2];
    shape_.kh = pick_dim(spec_.pool(), 0, 2);
    shape_.kw = pick_dim(spec_.pool(), 1, 2);
    shape_.stride_h = pick_dim(spec_.stride(), 0, shape_.kh);
    shape_.stride_w = pick_dim(spec_.stride(), 1, shape_.kw);
    if (shape_.kh <= 0 || shape_.kw <= 0 || shape_.stride_h <= 0 || shape_.stride_w <= 0)
      fail(name, " pool and stride must be > 0");
    if (spec_.padding() == Conv2DSpec::SAME) {
      shape_.pad_h = (shape_.kh - 1) / 2;
      shape_.pad_w = (shape_.kw - 1) / 2;
    }
    if (shape_.h + 2 * shape_.pad_h < shape_.kh || shape_.w + 2 * shape_.pad_w < shape_.kw)
      fail(name, " window ", shape_.kh, "x", shape_.kw, " does not fit input ", inputs[0].to_string());
    return Shape{shape_.out_h(), shape_.out_w(), shape_.c};
  }

  void forward(const Context& ctx, const std::vector<const Value*>& in, Value& out) override {
    kernels::Pool2dShape s = shape_;
    s.n = ctx.batch;
    const T* x = in[0]->data.template data<T>();
    T* y = out.data.template data<T>();
    if (max_ && !ctx.training && ctx.stream.device().is_cpu()) {
      kernels::max_pool2d_forward<T>(ctx.stream, s, x, y, nullptr);  // no backward: no argmax to keep
    } else if (max_) {
      Tensor arg = scratch(ctx.stream, argmax_, out.data.shape(), DType::i32);
      kernels::max_pool2d_forward<T>(ctx.stream, s, x, y, arg.template data<int32_t>());
    } else {
      kernels::avg_pool2d_forward<T>(ctx.stream, s, x, y);
    }
  }

  bool inference_max_pool(kernels::Pool2dShape& pool) const override {
    if (!max_) return false;
    pool = shape_;
    return true;
  }

  void backward(const Context& ctx, const std::vector<const Value*>&, const Value&, const Tensor& dout,
                const std::vector<Tensor*>& din) override {
    if (!din[0]) return;
    kernels::Pool2dShape s = shape_;
    s.n = ctx.batch;
    if (max_)
      kernels::max_pool2d_backward<T>(ctx.stream, s, dout.template data<T>(), argmax_.template data<int32_t>(),
                                      din[0]->template data<T>());
    else
      kernels::avg_pool2d_backward<T>(ctx.stream, s, dout.template data<T>(), din[0]->template data<T>());
  }

 private:
  Pool2DSpec spec_;
  bool max_;
  kernels::Pool2dShape shape_;
  Tensor argmax_;
};

template <typename T>
class GlobalAvgPoolLayer final : public Layer<T> {
 public:
  Shape build(const std::vector<Shape>& inputs, ParamRegistry<T>&) override {
    if (inputs.size() != 1 || inputs[0].rank() != 3)
      fail("global_avg_pool needs one [height, width, channels] input");
    hw_ = inputs[0][0] * inputs[0][1];
    c_ = inputs[0][2];
    return Shape{c_};
  }
  void forward(const Context& ctx, const std::vector<const Value*>& in, Value& out) override {
    kernels::global_avg_pool_forward<T>(ctx.stream, ctx.batch, hw_, c_, in[0]->data.template data<T>(),
                                        out.data.template data<T>());
  }
  void backward(const Context& ctx, const std::vector<const Value*>&, const Value&, const Tensor& dout,
                const std::vector<Tensor*>& din) override {
    if (din[0])
      kernels::global_avg_pool_backward<T>(ctx.stream, ctx.batch, hw_, c_, dout.template data<T>(),
                                           din[0]->template data<T>());
  }

 private:
  int64_t hw_ = 0, c_ = 0;
};

}  // namespace

template <typename T>
std::unique_ptr<Layer<T>> make_pool2d_layer(const Pool2DSpec& spec, bool max_pool) {
  return std::make_unique<Pool2DLayer<T>>(spec, max_pool);
}
template <typename T>
std::unique_ptr<Layer<T>> make_global_avg_pool_layer() {
  return std::make_unique<GlobalAvgPoolLayer<T>>();
}
template std::unique_ptr<Layer<float>> make_pool2d_layer<float>(const Pool2DSpec&, bool);
template std::unique_ptr<Layer<double>> make_pool2d_layer<double>(const Pool2DSpec&, bool);
template std::unique_ptr<Layer<float>> make_global_avg_pool_layer<float>();
template std::unique_ptr<Layer<double>> make_global_avg_pool_layer<double>();

}  // namespace kiln::models
