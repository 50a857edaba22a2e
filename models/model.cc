#include "models/model.h"

#include <algorithm>
#include <cstring>
#include <map>

#include "core/device_memory.h"
#include "core/error.h"
#include "kernels/reduce.h"
#include "models/layers/layers.h"

namespace kiln::models {

template <typename T>
struct Model<T>::Node {
  std::string name;
  std::unique_ptr<Layer<T>> layer;
  std::vector<int> inputs;  // value indexes
  Shape shape;              // per example
  int first_param = 0, end_param = 0;  // the parameter handles it registered
};

namespace {
const char* kind_name(const LayerSpec& l) {
  switch (l.kind_case()) {
    case LayerSpec::kDense: return "dense";
    case LayerSpec::kEmbedding: return "embedding";
    case LayerSpec::kConv2D: return "conv2d";
    case LayerSpec::kMaxPool2D: return "max_pool2d";
    case LayerSpec::kAvgPool2D: return "avg_pool2d";
    case LayerSpec::kGlobalAvgPool: return "global_avg_pool";
    case LayerSpec::kFlatten: return "flatten";
    case LayerSpec::kBatchNorm: return "batch_norm";
    case LayerSpec::kDropout: return "dropout";
    case LayerSpec::kActivation: return "activation";
    case LayerSpec::kConcat: return "concat";
    case LayerSpec::KIND_NOT_SET: break;
  }
  return "layer";
}
}  // namespace

template <typename T>
Model<T>::Model(const ModelSpec& spec, const Stream& stream) : spec_(spec) {
  if (spec.inputs().empty()) fail("model.inputs is empty: declare at least one input");
  if (spec.layers().empty()) fail("model.layers is empty");
  std::map<std::string, int> value_of;
  std::vector<bool> is_ids;
  for (int i = 0; i < spec.inputs_size(); ++i) {
    const InputSpec& in = spec.inputs(i);
    if (in.name().empty()) fail("model.inputs[", i, "].name is empty");
    if (value_of.count(in.name())) fail("model.inputs[", i, "]: duplicate name '", in.name(), "'");
    std::vector<int64_t> dims(in.shape().begin(), in.shape().end());
    for (int64_t d : dims)
      if (d <= 0) fail("model.inputs[", i, "] (", in.name(), "): shape dimensions must be > 0");
    if (in.kind() == InputSpec::DENSE && dims.empty())
      fail("model.inputs[", i, "] (", in.name(), "): a DENSE input needs a shape");
    if (in.kind() == InputSpec::IDS && dims.size() > 1)
      fail("model.inputs[", i, "] (", in.name(), "): an IDS input's shape is at most [id space]");
    input_shapes_.emplace_back(dims);
    value_of[in.name()] = i;
    is_ids.push_back(in.kind() == InputSpec::IDS);
  }
  int n_inputs = spec.inputs_size();
  ids_rows_.assign(static_cast<size_t>(n_inputs), 0);
  for (int i = 0; i < spec.layers_size(); ++i) {
    const LayerSpec& ls = spec.layers(i);
    Node node;
    node.name = ls.name().empty() ? str_cat(kind_name(ls), "_", i) : ls.name();
    std::string where = str_cat("model.layers[", i, "] (", node.name, ")");
    if (value_of.count(node.name)) fail(where, ": duplicate name");
    try {
      node.layer = make_layer<T>(ls, i);
    } catch (const Error& e) {
      fail(where, ": ", e.what());
    }
    if (ls.inputs().empty()) {
      node.inputs.push_back(i == 0 ? 0 : n_inputs + i - 1);
      if (i == 0 && n_inputs > 1) fail(where, ": the model has several inputs; name this layer's inputs");
    }
    for (const std::string& name : ls.inputs()) {
      auto it = value_of.find(name);
      if (it == value_of.end()) fail(where, ": unknown input '", name, "' (inputs must be model inputs or earlier layers)");
      node.inputs.push_back(it->second);
    }
    std::vector<Shape> in_shapes;
    for (int v : node.inputs) {
      bool ids = v < n_inputs && is_ids[v];
      if (ids != (ls.kind_case() == LayerSpec::kEmbedding))
        fail(where, ": ", ids ? "an IDS input can only feed an embedding layer" : "an embedding layer needs an IDS input");
      in_shapes.push_back(v < n_inputs ? input_shapes_[v] : nodes_[v - n_inputs].shape);
    }
    size_t first_param = static_cast<size_t>(params_.size());
    try {
      node.shape = node.layer->build(in_shapes, params_);
    } catch (const Error& e) {
      fail(where, ": ", e.what());
    }
    for (int h = static_cast<int>(first_param); h < params_.size(); ++h) param_owner_.push_back(node.name);
    // An embedding's one parameter is its table [rows, dim]; its input is a model input.
    if (ls.kind_case() == LayerSpec::kEmbedding) {
      int64_t& rows = ids_rows_[static_cast<size_t>(node.inputs[0])];
      const int64_t table_rows = params_.info(static_cast<int>(first_param)).shape[0];
      rows = rows == 0 ? table_rows : std::min(rows, table_rows);
    }
    node.first_param = static_cast<int>(first_param);
    node.end_param = params_.size();
    value_of[node.name] = n_inputs + i;
    nodes_.push_back(std::move(node));
  }
  if (spec.has_output()) {
    auto it = value_of.find(spec.output());
    if (it == value_of.end() || it->second < n_inputs) fail("model.output: unknown layer '", spec.output(), "'");
    output_ = it->second;
  } else {
    output_ = value_count() - 1;
  }
  params_.allocate(stream);
  dense_suffix_offset_.assign(nodes_.size() + 1, params_.dense_count());
  for (int k = static_cast<int>(nodes_.size()) - 1; k >= 0; --k) {
    int64_t lowest = dense_suffix_offset_[k + 1];
    for (int h = nodes_[k].first_param; h < nodes_[k].end_param; ++h)
      if (params_.info(h).kind == ParamKind::dense) lowest = std::min(lowest, params_.info(h).offset);
    dense_suffix_offset_[k] = lowest;
  }
  values_.resize(value_count());
  consumers_.assign(value_count(), 0);
  for (const Node& n : nodes_)
    for (int v : n.inputs) ++consumers_[v];
}

template <typename T>
Model<T>::~Model() = default;

template <typename T>
int Model<T>::value_count() const {
  return static_cast<int>(input_shapes_.size() + nodes_.size());
}

template <typename T>
int64_t Model<T>::macs_per_example() const {
  int64_t macs = 0;
  for (const Node& n : nodes_) macs += n.layer->macs_per_example();
  return macs;
}

template <typename T>
const Shape& Model<T>::output_shape() const {
  return nodes_[output_ - input_shapes_.size()].shape;
}

template <typename T>
std::string Model<T>::param_name(int handle) const {
  return param_owner_[handle] + "/" + params_.info(handle).name;
}

template <typename T>
int Model<T>::find_param(const std::string& name) const {
  for (int h = 0; h < params_.size(); ++h)
    if (param_name(h) == name) return h;
  return -1;
}

template <typename T>
const std::string& Model<T>::layer_name(int i) const {
  return nodes_[static_cast<size_t>(i)].name;
}

template <typename T>
const Shape& Model<T>::layer_shape(int i) const {
  return nodes_[static_cast<size_t>(i)].shape;
}

template <typename T>
const std::string& Model<T>::output_name() const {
  return nodes_[output_ - input_shapes_.size()].name;
}

template <typename T>
void Model<T>::ensure_capacity(const Stream& s, int64_t batch) {
  if (batch <= capacity_) return;
  KILN_CHECK(s.device() == params_.stream().device(), "a model on ", params_.stream().device().to_string(),
             " run with a stream of ", s.device().to_string());
  if (!s.device().is_cpu()) s.synchronize();  // queued work may still read the buffers replaced below
  int n_inputs = input_count();
  storage_.assign(value_count(), Tensor());
  grad_storage_.assign(value_count(), Tensor());
  for (int v = 0; v < value_count(); ++v) {
    const Shape& shape = v < n_inputs ? input_shapes_[v] : nodes_[v - n_inputs].shape;
    if (v >= n_inputs) storage_[v] = Tensor::empty(shape.with_batch(batch), dtype_of<T>::value, s.device());
    bool dense_input = v < n_inputs && spec_.inputs(v).kind() == InputSpec::DENSE;
    if (v >= n_inputs || dense_input)
      grad_storage_[v] = Tensor::empty(shape.with_batch(batch), dtype_of<T>::value, s.device());
  }
  capacity_ = batch;
}

template <typename T>
const Tensor& Model<T>::forward(const Context& ctx, const std::vector<Value>& inputs) {
  int n_inputs = input_count();
  if (static_cast<int>(inputs.size()) != n_inputs) fail("model expects ", n_inputs, " inputs, got ", inputs.size());
  ensure_capacity(ctx.stream, ctx.batch);
  for (int i = 0; i < n_inputs; ++i) {
    const Value& in = inputs[i];
    if (spec_.inputs(i).kind() == InputSpec::DENSE) {
      Shape want = input_shapes_[i].with_batch(ctx.batch);
      if (in.data.shape() != want)
        fail("input '", spec_.inputs(i).name(), "' has shape ", in.data.shape().to_string(), ", expected ",
             want.to_string());
    } else if (!in.offsets.defined() || in.offsets.numel() != ctx.batch + 1) {
      fail("input '", spec_.inputs(i).name(), "' needs ids with ", ctx.batch + 1, " offsets");
    }
    values_[i] = in;
  }
  std::vector<const Value*>& in_ptrs = forward_inputs_;
  for (size_t k = 0; k < nodes_.size(); ++k) {
    Node& node = nodes_[k];
    int v = n_inputs + static_cast<int>(k);
    values_[v].data = storage_[v].view(0, node.shape.with_batch(ctx.batch));
    in_ptrs.clear();
    for (int i : node.inputs) in_ptrs.push_back(&values_[i]);
    if (!ctx.training) {
      if (const size_t folded = forward_folded(ctx, k, in_ptrs)) {
        k += folded;
        continue;
      }
    }
    node.layer->forward(ctx, in_ptrs, values_[v]);
  }
  return values_[output_].data;
}

template <typename T>
size_t Model<T>::forward_folded(const Context& ctx, size_t k, const std::vector<const Value*>& in) {
  // Node k feeds only a batch norm (k + 1), which feeds only an activation (k + 2) or anything;
  // either may feed only a max pool, which folds in too where the layer and device can. No
  // intermediate is the model's output.
  const int n_inputs = input_count();
  const int v = n_inputs + static_cast<int>(k);
  auto sole_reader = [&](int value, size_t node) {
    return node < nodes_.size() && consumers_[value] == 1 && output_ != value && nodes_[node].inputs.size() == 1 &&
           nodes_[node].inputs[0] == value;
  };
  InferenceBatchNorm<T> bn;
  if (!sole_reader(v, k + 1) || !nodes_[k + 1].layer->inference_batch_norm(bn)) return 0;
  kernels::Activation act = kernels::Activation::none;
  float slope = 0.01f;
  size_t folded = 1;
  if (sole_reader(v + 1, k + 2) && nodes_[k + 2].layer->elementwise_activation(act, slope)) folded = 2;
  auto output = [&](size_t last) -> Value& {
    Value& out = values_[v + static_cast<int>(last)];
    out.data = storage_[v + last].view(0, nodes_[k + last].shape.with_batch(ctx.batch));
    return out;
  };
  kernels::Pool2dShape pool;
  if (sole_reader(v + static_cast<int>(folded), k + folded + 1) &&
      nodes_[k + folded + 1].layer->inference_max_pool(pool)) {
    pool.n = ctx.batch;
    if (nodes_[k].layer->forward_folded(ctx, in, output(folded + 1), bn, act, slope, &pool)) return folded + 1;
  }
  return nodes_[k].layer->forward_folded(ctx, in, output(folded), bn, act, slope, nullptr) ? folded : 0;
}

template <typename T>
void Model<T>::backward(const Context& ctx, const Tensor& doutput,
                        const std::function<void(int64_t)>& dense_grads_final_from) {
  int n_inputs = input_count();
  KILN_CHECK(doutput.shape() == values_[output_].data.shape(), "doutput ", doutput.shape().to_string());
  params_.zero_grads();
  // written[v]: a gradient for value v exists (consumers add into it).
  std::vector<bool> written(value_count(), false);
  grads_.assign(value_count(), Tensor());
  for (int v = 0; v < value_count(); ++v)
    if (grad_storage_[v].defined()) {
      const Shape& s = v < n_inputs ? input_shapes_[v] : nodes_[v - n_inputs].shape;
      grads_[v] = grad_storage_[v].view(0, s.with_batch(ctx.batch));
    }
  copy_async(ctx.stream, grads_[output_], doutput);
  written[output_] = true;

  int64_t reported = params_.dense_count();
  auto report_final = [&](int first_done_node) {
    if (dense_grads_final_from && dense_suffix_offset_[first_done_node] < reported) {
      reported = dense_suffix_offset_[first_done_node];
      dense_grads_final_from(reported);
    }
  };
  std::vector<const Value*> in_ptrs;
  std::vector<Tensor*> din;
  std::vector<Tensor> temps;
  sum_storage_.resize(value_count());
  for (int k = static_cast<int>(nodes_.size()) - 1; k >= 0; --k) {
    Node& node = nodes_[k];
    int v = n_inputs + k;
    report_final(k + 1);  // nodes k+1.. are done
    if (!written[v]) continue;  // nothing downstream depends on this layer
    in_ptrs.clear();
    din.clear();
    temps.assign(node.inputs.size(), Tensor());
    for (size_t j = 0; j < node.inputs.size(); ++j) {
      int u = node.inputs[j];
      in_ptrs.push_back(&values_[u]);
      bool wanted = node.layer->propagates_gradient() && grads_[u].defined() && (u >= n_inputs || input_gradients_);
      if (!wanted) {
        din.push_back(nullptr);
      } else if (!written[u]) {
        din.push_back(&grads_[u]);
      } else {
        // A second consumer of u: compute into a temporary and add.
        temps[j] = scratch(ctx.stream, sum_storage_[u], grads_[u].shape(), dtype_of<T>::value);
        din.push_back(&temps[j]);
      }
    }
    node.layer->backward(ctx, in_ptrs, values_[v], grads_[v], din);
    for (size_t j = 0; j < node.inputs.size(); ++j) {
      if (!din[j]) continue;
      int u = node.inputs[j];
      if (temps[j].defined())
        kernels::add_inplace<T>(ctx.stream, grads_[u].template data<T>(), temps[j].template data<T>(),
                                grads_[u].numel());
      written[u] = true;
    }
  }
  report_final(0);
  for (int i = 0; i < n_inputs; ++i)
    if (!written[i] && grads_[i].defined() && input_gradients_) zero_async(ctx.stream, grads_[i]);
}

template <typename T>
const Tensor& Model<T>::input_gradient(int i) const {
  KILN_CHECK(input_gradients_ && grads_[i].defined(), "input gradient ", i, " was not computed");
  return grads_[i];
}

template class Model<float>;
template class Model<double>;

}  // namespace kiln::models
