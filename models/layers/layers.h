#pragma once
// Layer factory: builds the layer a LayerSpec describes. Each layer lives in its own file.
#include <memory>

#include "kernels/activation.h"
#include "models/layer.h"
#include "proto/model_spec.pb.h"

namespace kiln::models {

// `index` is the layer's position in the spec; it keys per-layer random streams (dropout).
template <typename T>
std::unique_ptr<Layer<T>> make_layer(const LayerSpec& spec, int index);

template <typename T> std::unique_ptr<Layer<T>> make_dense_layer(const DenseSpec& spec);
template <typename T> std::unique_ptr<Layer<T>> make_embedding_layer(const EmbeddingSpec& spec);
template <typename T> std::unique_ptr<Layer<T>> make_conv2d_layer(const Conv2DSpec& spec);
template <typename T> std::unique_ptr<Layer<T>> make_pool2d_layer(const Pool2DSpec& spec, bool max_pool);
template <typename T> std::unique_ptr<Layer<T>> make_global_avg_pool_layer();
template <typename T> std::unique_ptr<Layer<T>> make_flatten_layer();
template <typename T> std::unique_ptr<Layer<T>> make_batch_norm_layer(const BatchNormSpec& spec);
template <typename T> std::unique_ptr<Layer<T>> make_dropout_layer(const DropoutSpec& spec, int index);
template <typename T> std::unique_ptr<Layer<T>> make_activation_layer(const ActivationSpec& spec);
template <typename T> std::unique_ptr<Layer<T>> make_concat_layer();

kernels::Activation to_kernel_activation(ActivationType type);
// The initialiser a layer uses: the configured one, or He for ReLU-family activations and
// Glorot otherwise.
Init resolve_init(InitType init, ActivationType activation);

// The i-th of a repeated [h, w] style option: one value applies to both, none gives `dflt`.
int64_t pick_dim(const google::protobuf::RepeatedField<int64_t>& values, int i, int64_t dflt);

// Grows `t` to hold at least `shape` on the stream's device (reallocating only when it must, after
// the stream's queued work is done with the old buffer) and returns a view of exactly `shape`.
// Layers use it for per-batch scratch buffers.
Tensor scratch(const Stream& s, Tensor& t, const Shape& shape, DType dtype);

}  // namespace kiln::models
