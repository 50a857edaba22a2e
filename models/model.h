#pragma once
// A static model graph built from a ModelSpec: inputs, then layers in spec order (each layer reads
// earlier layers or inputs, so spec order is a topological order). Activations and their
// gradients are allocated once for the largest batch seen and viewed per batch. Parameters and
// activations live on the device of the model's stream; every op goes through kernels/ and
// core/device_memory.h, so the same graph runs on the CPU, the sim device and CUDA.
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "models/layer.h"
#include "models/param_registry.h"
#include "proto/model_spec.pb.h"

namespace kiln::models {

template <typename T>
class Model {
 public:
  // Validates and builds; errors name the layer ("model.layers[2] (conv_b): ..."). Parameters
  // and activations are allocated on stream.device(); `stream` (a view) must outlive the model,
  // and the Contexts given to forward and backward carry the same stream.
  explicit Model(const ModelSpec& spec, const Stream& stream = Stream::cpu());
  ~Model();
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  void initialize(uint64_t seed) { params_.initialize(seed); }

  // inputs follow spec.inputs order: DENSE inputs as [batch, shape...] tensors of T, IDS inputs
  // as i64 ids with i64 offsets [batch + 1]. Returns the output [batch, output_shape...].
  const Tensor& forward(const Context& ctx, const std::vector<Value>& inputs);
  // Zeroes and fills the parameter gradients from d(loss)/d(output). Layers run last to first;
  // after each, `dense_grads_final_from(offset)` (when given) reports that the dense gradients at
  // [offset, dense_count) of the flat buffer are final, so a data-parallel all-reduce of that
  // range can start while backward goes on (parameters are laid out in layer order).
  void backward(const Context& ctx, const Tensor& doutput,
                const std::function<void(int64_t offset)>& dense_grads_final_from = {});

  ParamRegistry<T>& params() { return params_; }
  const ParamRegistry<T>& params() const { return params_; }
  const Shape& output_shape() const;
  const ModelSpec& spec() const { return spec_; }
  // Multiply-adds of one example's forward pass through the dense and conv layers.
  int64_t macs_per_example() const;
  int input_count() const { return static_cast<int>(input_shapes_.size()); }
  const Shape& input_shape(int i) const { return input_shapes_[i]; }
  // The rows of the smallest embedding table IDS input i feeds (0: none): its ids must be below,
  // which the trainer checks on the host before staging a batch.
  int64_t ids_rows(int i) const { return ids_rows_[i]; }

  // Gradient checks need d(loss)/d(dense inputs) too; off for training.
  void set_input_gradients(bool on) { input_gradients_ = on; }
  const Tensor& input_gradient(int i) const;

  // "dense_1/kernel" style names of every parameter, in registry order.
  std::string param_name(int handle) const;
  // The handle of the parameter named "layer/param", or -1.
  int find_param(const std::string& name) const;
  // The name of the layer feeding the head.
  const std::string& output_name() const;
  // The name of layer i of the spec (its own, or the default "<kind>_<i>").
  const std::string& layer_name(int i) const;
  // The per-example shape of layer i's output.
  const Shape& layer_shape(int i) const;

 private:
  struct Node;
  void ensure_capacity(const Stream& s, int64_t batch);
  // Inference: runs node k with the batch norm (and activation) after it folded in, when the
  // graph and the layers allow; returns how many following nodes it covered (0: not folded).
  size_t forward_folded(const Context& ctx, size_t k, const std::vector<const Value*>& in);
  int value_count() const;

  ModelSpec spec_;
  ParamRegistry<T> params_;
  std::vector<Shape> input_shapes_;
  std::vector<int64_t> ids_rows_;  // per input, see ids_rows()
  std::vector<Node> nodes_;
  std::vector<Value> values_;  // inputs, then one per node
  std::vector<const Value*> forward_inputs_;  // forward()'s per-node input list, kept to not allocate per call
  std::vector<Tensor> storage_, grad_storage_, grads_;
  std::vector<Tensor> sum_storage_;  // per value: a second consumer's gradient, before it is added
  std::vector<int> consumers_;
  std::vector<std::string> param_owner_;
  // Per node k: the lowest flat offset of the dense parameters of nodes k..end.
  std::vector<int64_t> dense_suffix_offset_;
  Tensor add_scratch_;
  int output_ = -1;  // value index feeding the head
  int64_t capacity_ = 0;
  bool input_gradients_ = false;
};

}  // namespace kiln::models
