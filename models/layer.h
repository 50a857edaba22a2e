#pragma once
// A layer of the static model graph. Layers own their backward pass (no autograd tape); their
// parameters are views into the model's flat buffers (see ParamRegistry).
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/stream.h"
#include "core/tensor.h"
#include "kernels/activation.h"
#include "kernels/pooling.h"
#include "models/param_registry.h"

namespace kiln::models {

// What flows along a graph edge: a dense tensor [batch, ...], or categorical ids with CSR
// offsets [batch + 1] for IDS inputs.
struct Value {
  Tensor data;
  Tensor offsets;
  // IDS inputs: the number of ids (offsets[batch]) as known on the host; -1 reads it from
  // `offsets`, which must then be a CPU tensor. Device inputs set it when they are staged.
  // A captured training step leaves it -1 with device offsets: the count stays on the device and
  // `data` holds the graph's capacity of ids, of which offsets[batch] are this batch's.
  int64_t ids_count = -1;
  // The ids were checked against the tables on the host before staging (embedding_check_ids), so
  // the device lookup need not check them (on CUDA that reads back, which a capture cannot).
  bool ids_checked = false;
};

struct Context {
  Stream stream;
  int64_t batch = 0;
  bool training = false;
  uint64_t seed = 0;  // model seed; with `step` it keys the dropout streams
  int64_t step = 0;
  // Where this batch's rows start in the global batch (data-parallel ranks); keys dropout so
  // the ranks together draw one process's masks.
  int64_t row_offset = 0;
  // A captured training step (a graph) reads its step from device memory: step << 12, which
  // dropout adds to its per-layer stream id. Null: `step` is used.
  const uint64_t* step_key = nullptr;
  // The caller's promise that the weights have not changed since the last call with this set
  // (a servable's model): work derived from them alone, such as batch norm folded into a
  // convolution's weights, is kept from call to call instead of redone.
  bool weights_frozen = false;
};

// A batch norm's inference parameters (device pointers), for folding it into the layer before it.
template <typename T>
struct InferenceBatchNorm {
  const T* gamma = nullptr;
  const T* beta = nullptr;
  const T* mean = nullptr;
  const T* var = nullptr;
  T eps = T(0);
};

template <typename T>
class Layer {
 public:
  virtual ~Layer() = default;
  // Validates the per-example input shapes, registers parameters, returns the per-example
  // output shape. Errors are kiln::Error naming the problem; the caller prefixes the layer name.
  virtual Shape build(const std::vector<Shape>& inputs, ParamRegistry<T>& params) = 0;
  // out.data is preallocated [batch, output shape] by the model.
  virtual void forward(const Context& ctx, const std::vector<const Value*>& in, Value& out) = 0;
  // dout is d(loss)/d(out); writes (overwrites) din[i] where non-null and adds to the parameter
  // gradients (which the model zeroes before each backward).
  virtual void backward(const Context& ctx, const std::vector<const Value*>& in, const Value& out, const Tensor& dout,
                        const std::vector<Tensor*>& din) = 0;
  // False for layers whose input has no gradient (embedding lookups over ids).
  virtual bool propagates_gradient() const { return true; }
  // Multiply-adds of one example's forward pass (after build); 0 for layers whose cost is
  // linear in their size (element-wise, lookups). Sizes the CPU thread team (Trainer).
  virtual int64_t macs_per_example() const { return 0; }

  // Inference folding (Model::forward): a batch norm that reports its parameters, and the
  // activation after it, fold into the layer before them when that layer computes
  // act(batch_norm(its output)) itself; so may a max pool after them (`pool`, null otherwise),
  // whose output `out` then is. forward_folded returns false where it cannot.
  virtual bool inference_batch_norm(InferenceBatchNorm<T>&) const { return false; }
  virtual bool elementwise_activation(kernels::Activation&, float&) const { return false; }
  virtual bool inference_max_pool(kernels::Pool2dShape&) const { return false; }
  virtual bool forward_folded(const Context&, const std::vector<const Value*>&, Value&, const InferenceBatchNorm<T>&,
                              kernels::Activation, float, const kernels::Pool2dShape* /*pool*/) {
    return false;
  }
};

}  // namespace kiln::models
