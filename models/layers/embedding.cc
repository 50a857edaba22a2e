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
                                  combiner(), out.data.template data<T>());
  }

  void backward(const Context& ctx, const std::vector<const Value*>& in, const Value&, const Tensor& dout,
                const std::vector<Tensor*>&) override {
    const Value& ids = *in[0];
    int64_t nnz = ids.ids_count;
    if (nnz < 0) {
      KILN_CHECK(ids.offsets.device().is_cpu(), "ids staged on ", ids.offsets.device().to_string(), " without ids_count");
      nnz = ids.offsets.template data<int64_t>()[ctx.batch];
    }
    SparseGrad<T>& g = reg_->sparse_grad(table_);
    Tensor uid = scratch(ctx.stream, g.unique_ids, Shape{std::max<int64_t>(nnz, 1)}, DType::i64);
    Tensor rows = scratch(ctx.stream, g.rows, Shape{std::max<int64_t>(nnz, 1), spec_.dim()}, dtype_of<T>::value);
    g.count = kernels::embedding_backward<T>(ctx.stream, dout.template data<T>(), vocab_, spec_.dim(),
                                             ids.data.template data<int64_t>(), ids.offsets.template data<int64_t>(),
                                             ctx.batch, combiner(), uid.template data<int64_t>(),
                                             rows.template data<T>());
  }

  bool propagates_gradient() const override { return false; }

 private:
  kernels::Combiner combiner() const {
    return spec_.combiner() == EmbeddingSpec::SUM ? kernels::Combiner::sum : kernels::Combiner::mean;
  }
  EmbeddingSpec spec_;
  ParamRegistry<T>* reg_ = nullptr;
  int table_ = -1;
  int64_t vocab_ = 0;
};

}  // namespace

template <typename T>
std::unique_ptr<Layer<T>> make_embedding_layer(const EmbeddingSpec& spec) {
  return std::make_unique<EmbeddingLayer<T>>(spec);
}
template std::unique_ptr<Layer<float>> make_embedding_layer<float>(const EmbeddingSpec&);
template std::unique_ptr<Layer<double>> make_embedding_layer<double>(const EmbeddingSpec&);

}  // namespace kiln::models
