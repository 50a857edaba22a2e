// Dense: y = act(x W + b), x [batch, in], W [in, units]. The bias and activation are fused into
// the GEMM epilogue.
#include "core/error.h"
#include "kernels/gemm.h"
#include "kernels/gemm_packed.h"
#include "kernels/reduce.h"
#include "models/layers/layers.h"

namespace kiln::models {
namespace {

template <typename T>
class DenseLayer final : public Layer<T> {
 public:
  explicit DenseLayer(const DenseSpec& spec) : spec_(spec), act_(to_kernel_activation(spec.activation())) {}

  Shape build(const std::vector<Shape>& inputs, ParamRegistry<T>& params) override {
    if (inputs.size() != 1) fail("dense takes one input, got ", inputs.size());
    if (inputs[0].rank() != 1) fail("dense needs a flat input, got ", inputs[0].to_string(), " (add a flatten layer)");
    if (spec_.units() <= 0) fail("dense.units must be > 0, got ", spec_.units());
    in_ = inputs[0][0];
    units_ = spec_.units();
    reg_ = &params;
    Init init = resolve_init(spec_.init(), spec_.activation());
    w_ = params.add("kernel", Shape{in_, units_}, ParamKind::dense, init, in_, units_);
    if (spec_.use_bias()) b_ = params.add("bias", Shape{units_}, ParamKind::dense, Init::zeros);
    return Shape{units_};
  }

  int64_t macs_per_example() const override { return in_ * units_; }

  void forward(const Context& ctx, const std::vector<const Value*>& in, Value& out) override {
    const T* x = in[0]->data.template data<T>();
    T* y = out.data.template data<T>();
    const T* bias = b_ >= 0 ? reg_->value(b_) : nullptr;
    if (act_ == kernels::Activation::gelu) {
      // GELU's derivative needs the pre-activation, so keep it.
      Tensor z = scratch(ctx.stream, pre_, Shape{ctx.batch, units_}, dtype_of<T>::value);
      matmul(ctx, x, z.template data<T>(), bias, kernels::Activation::none);
      kernels::activation_forward<T>(ctx.stream, act_, 0, z.template data<T>(), y, ctx.batch * units_);
    } else {
      matmul(ctx, x, y, bias, act_);
    }
  }

  // y = act(x W + b). Inference takes the row-invariant GEMM, so a row's outputs do not depend on
  // the batch it is in (evaluation, export and every served batch agree bit for bit). A servable's
  // frozen weights are packed into the GEMM's panels once, where the device does that
  // (kernels/gemm_packed.h): the same bits, read contiguously.
  void matmul(const Context& ctx, const T* x, T* y, const T* bias, kernels::Activation act) {
    const T* w = reg_->value(w_);
    if (ctx.training) {
      kernels::gemm<T>(ctx.stream, false, false, ctx.batch, units_, in_, 1, x, in_, w, units_, 0, y, units_, bias, act);
    } else if (ctx.weights_frozen && kernels::gemm_row_invariant_packs<T>(ctx.stream, in_, units_)) {
      if (packed_from_ != w) {  // packs() holds on the CPU only, so packed_ is a CPU tensor
        packed_ = scratch(ctx.stream, packed_, Shape{kernels::packed_b_elems(in_, units_)}, dtype_of<T>::value);
        kernels::pack_b_row_invariant<T>(ctx.stream, in_, units_, w, units_, packed_.template data<T>());
        packed_from_ = w;
      }
      kernels::gemm_row_invariant_packed<T>(ctx.stream, ctx.batch, units_, in_, x, in_, packed_.template data<T>(), y,
                                            units_, bias, act);
    } else {
      kernels::gemm_row_invariant<T>(ctx.stream, ctx.batch, units_, in_, x, in_, w, units_, y, units_, bias, act);
    }
  }

  void backward(const Context& ctx, const std::vector<const Value*>& in, const Value& out, const Tensor& dout,
                const std::vector<Tensor*>& din) override {
    int64_t b = ctx.batch;
    const T* dz = dout.template data<T>();
    if (act_ != kernels::Activation::none) {
      Tensor g = scratch(ctx.stream, dz_, Shape{b, units_}, dtype_of<T>::value);
      const T* y = out.data.template data<T>();
      const T* pre = act_ == kernels::Activation::gelu ? pre_.template data<T>() : y;
      kernels::activation_backward<T>(ctx.stream, act_, 0.01f, pre, y, dz, g.template data<T>(), b * units_);
      dz = g.template data<T>();
    }
    const T* x = in[0]->data.template data<T>();
    kernels::gemm<T>(ctx.stream, true, false, in_, units_, b, 1, x, in_, dz, units_, 1, reg_->grad(w_), units_);
    if (b_ >= 0) kernels::sum_rows<T>(ctx.stream, dz, b, units_, reg_->grad(b_), true);
    if (din[0])
      kernels::gemm<T>(ctx.stream, false, true, b, in_, units_, 1, dz, units_, reg_->value(w_), units_, 0,
                       din[0]->template data<T>(), in_);
  }

 private:
  DenseSpec spec_;
  kernels::Activation act_;
  int64_t in_ = 0, units_ = 0;
  ParamRegistry<T>* reg_ = nullptr;
  int w_ = -1, b_ = -1;
  Tensor pre_, dz_;
  Tensor packed_;                    // the frozen weights in the GEMM's panels (inference)
  const T* packed_from_ = nullptr;  // the weights packed_ holds
};

}  // namespace

template <typename T>
std::unique_ptr<Layer<T>> make_dense_layer(const DenseSpec& spec) {
  return std::make_unique<DenseLayer<T>>(spec);
}
template std::unique_ptr<Layer<float>> make_dense_layer<float>(const DenseSpec&);
template std::unique_ptr<Layer<double>> make_dense_layer<double>(const DenseSpec&);

}  // namespace kiln::models
