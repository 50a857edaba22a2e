#include "core/error.h"
#include "models/layers/layers.h"

namespace kiln::models {

kernels::Activation to_kernel_activation(ActivationType type) {
  switch (type) {
    case NONE: return kernels::Activation::none;
    case RELU: return kernels::Activation::relu;
    case LEAKY_RELU: return kernels::Activation::leaky_relu;
    case GELU: return kernels::Activation::gelu;
    case SIGMOID: return kernels::Activation::sigmoid;
    case TANH: return kernels::Activation::tanh;
  }
  return kernels::Activation::none;
}

Init resolve_init(InitType init, ActivationType activation) {
  switch (init) {
    case HE_NORMAL: return Init::he_normal;
    case HE_UNIFORM: return Init::he_uniform;
    case GLOROT_NORMAL: return Init::glorot_normal;
    case GLOROT_UNIFORM: return Init::glorot_uniform;
    case INIT_DEFAULT: break;
  }
  bool relu_family = activation == RELU || activation == LEAKY_RELU || activation == GELU;
  return relu_family ? Init::he_normal : Init::glorot_uniform;
}

int64_t pick_dim(const google::protobuf::RepeatedField<int64_t>& values, int i, int64_t dflt) {
  if (values.empty()) return dflt;
  return values.size() == 1 ? values[0] : values[i];
}

Tensor scratch(const Stream& s, Tensor& t, const Shape& shape, DType dtype) {
  if (!t.defined() || t.numel() < shape.numel() || t.dtype() != dtype || !(t.device() == s.device())) {
    // Work queued on a device stream may still use the old buffer, and freeing does not wait.
    if (t.defined() && !t.device().is_cpu()) s.synchronize();
    t = Tensor::empty(shape, dtype, s.device());
  }
  return t.view(0, shape);
}

template <typename T>
std::unique_ptr<Layer<T>> make_layer(const LayerSpec& spec, int index) {
  switch (spec.kind_case()) {
    case LayerSpec::kDense: return make_dense_layer<T>(spec.dense());
    case LayerSpec::kEmbedding: return make_embedding_layer<T>(spec.embedding());
    case LayerSpec::kConv2D: return make_conv2d_layer<T>(spec.conv2d());
    case LayerSpec::kMaxPool2D: return make_pool2d_layer<T>(spec.max_pool2d(), true);
    case LayerSpec::kAvgPool2D: return make_pool2d_layer<T>(spec.avg_pool2d(), false);
    case LayerSpec::kGlobalAvgPool: return make_global_avg_pool_layer<T>();
    case LayerSpec::kFlatten: return make_flatten_layer<T>();
    case LayerSpec::kBatchNorm: return make_batch_norm_layer<T>(spec.batch_norm());
    case LayerSpec::kDropout: return make_dropout_layer<T>(spec.dropout(), index);
    case LayerSpec::kActivation: return make_activation_layer<T>(spec.activation());
    case LayerSpec::kConcat: return make_concat_layer<T>();
    case LayerSpec::KIND_NOT_SET: break;
  }
  fail("layer ", index, " (", spec.name(), ") has no type: set one of dense, embedding, conv2d, max_pool2d, ",
       "avg_pool2d, global_avg_pool, flatten, batch_norm, dropout, activation, concat");
}

template std::unique_ptr<Layer<float>> make_layer<float>(const LayerSpec&, int);
template std::unique_ptr<Layer<double>> make_layer<double>(const LayerSpec&, int);

}  // namespace kiln::models
