// Embedding: looks up rows of a table for an IDS input (one or several ids per example) and
// combines them (sum or mean). The gradient is row-sparse: unique ids and their summed rows.
#include "core/error.h"
#include "kernels/embedding.h"
#include "models/layers/layers.h"

namespace kiln::models {
namespace {

template <typename T>
class EmbeddingLayer final : public Layer<T> {
 public:
  explicit EmbeddingLayer(const EmbeddingSpec& spec) : spec_(spec) {}

  Shape build(const std::vector<Shape>& inputs, ParamRegistry<T>& params) override {
    if (inputs.size() != 1) fail("embedding takes one IDS input, got ", inputs.size());
    // The IDS input may declare its id space ([n]); vocab_size 0 takes it.
    int64_t id_space = inputs[0].rank() == 1 ? inputs[0][0] : 0;
    vocab_ = spec_.vocab_size() > 0 ? spec_.vocab_size() : id_space;
    if (vocab_ <= 0) fail("embedding.vocab_size must be > 0 (or its IDS input must declare an id space)");
    if (id_space > vocab_)
      fail("embedding.vocab_size ", vocab_, " is smaller than the id space ", id_space, " of its input");
    if (spec_.dim() <= 0) fail("embedding.dim must be > 0, got ", spec_.dim());
    reg_ = &params;
    table_ = params.add("table", Shape{vocab_, spec_.dim()}, ParamKind::embedding, Init::embedding_normal, vocab_,
                        spec_.dim());
    return Shape{spec_.dim()};
  }

  void forward(const Context& ctx, const std::vector<const Value*>& in, Value& out) override {
    const Value& ids = *in[0];
    if (!ids.offsets.defined()) fail("embedding input must be an IDS input");
    kernels::embedding_forward<T>(ctx.stream, reg_->value(table_), vocab_, spec_.dim(),
                                  ids.data.template data<int64_t>(), ids.offsets.template data<int64_t>(), ctx.batch,
                                  combiner(), out.data.template data<T>(), ids.ids_checked);
  }

  void backward(const Context& ctx, const std::vector<const Value*>& in, const Value&, const Tensor& dout,
                const std::vector<Tensor*>&) override {
    const Value& ids = *in[0];
    const bool device = !ctx.stream.device().is_cpu();
    if (device && ids.ids_count < 0) return backward_captured(ctx, ids, dout);
    int64_t nnz = ids.ids_count;
    if (nnz < 0) nnz = ids.offsets.template data<int64_t>()[ctx.batch];
    SparseGrad<T>& g = reg_->sparse_grad(table_);
    Tensor uid = scratch(ctx.stream, g.unique_ids, Shape{std::max<int64_t>(nnz, 1)}, DType::i64);
    Tensor rows = scratch(ctx.stream, g.rows, Shape{std::max<int64_t>(nnz, 1), spec_.dim()}, dtype_of<T>::value);
    // What a captured step of up to nnz ids needs besides, allocated now: it must not allocate.
    if (device) reserve_for_capture(ctx.stream, nnz, g);
    g.count = kernels::embedding_backward<T>(ctx.stream, dout.template data<T>(), vocab_, spec_.dim(),
                                             ids.data.template data<int64_t>(), ids.offsets.template data<int64_t>(),
                                             ctx.batch, combiner(), uid.template data<int64_t>(),
                                             rows.template data<T>());
  }

  bool propagates_gradient() const override { return false; }

 private:
  // A captured training step: the batch's id count varies and stays on the device, `ids.data`
  // holds the graph's capacity. The unique count goes to device memory, for the optimizer.
  void backward_captured(const Context& ctx, const Value& ids, const Tensor& dout) {
    SparseGrad<T>& g = reg_->sparse_grad(table_);
    const int64_t capacity = ids.data.numel();
    Tensor uid = scratch(ctx.stream, g.unique_ids, Shape{std::max<int64_t>(capacity, 1)}, DType::i64);
    Tensor rows =
        scratch(ctx.stream, g.rows, Shape{std::max<int64_t>(capacity, 1), spec_.dim()}, dtype_of<T>::value);
    reserve_for_capture(ctx.stream, capacity, g);
    kernels::embedding_backward_async<T>(ctx.stream, dout.template data<T>(), vocab_, spec_.dim(),
                                         ids.data.template data<int64_t>(), ids.offsets.template data<int64_t>(),
                                         ctx.batch, capacity, combiner(), uid.template data<int64_t>(),
                                         rows.template data<T>(), g.device_count.template data<int64_t>(),
                                         workspace_.defined() ? workspace_.raw() : nullptr);
    g.count = SparseGrad<T>::kOnDevice;
    g.capacity = capacity;
  }

  // The device count and the sort's workspace for up to `capacity` ids (scratch: grown only).
  void reserve_for_capture(const Stream& s, int64_t capacity, SparseGrad<T>& g) {
    scratch(s, g.device_count, Shape{1}, DType::i64);
    const int64_t bytes = kernels::embedding_backward_workspace_bytes(s, vocab_, capacity);
    if (bytes > 0) scratch(s, workspace_, Shape{bytes}, DType::u8);
  }

  kernels::Combiner combiner() const {
    return spec_.combiner() == EmbeddingSpec::SUM ? kernels::Combiner::sum : kernels::Combiner::mean;
  }
  EmbeddingSpec spec_;
  ParamRegistry<T>* reg_ = nullptr;
  int table_ = -1;
  int64_t vocab_ = 0;
  Tensor workspace_;  // u8: embedding_backward_async's device scratch (none on the CPU and sim)
};

}  // namespace

template <typename T>
std::unique_ptr<Layer<T>> make_embedding_layer(const EmbeddingSpec& spec) {
  return std::make_unique<EmbeddingLayer<T>>(spec);
}
template std::unique_ptr<Layer<float>> make_embedding_layer<float>(const EmbeddingSpec&);
template std::unique_ptr<Layer<double>> make_embedding_layer<double>(const EmbeddingSpec&);

}  // namespace kiln::models
