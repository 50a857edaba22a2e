#include "runtime/onnx_export.h"

#include <onnx/checker.h>
#include <onnx/onnx_pb.h>

#include <map>
#include <optional>

#include "core/error.h"
#include "io/atomic_file.h"
#include "models/model.h"
#include "models/model_weights.h"

namespace kiln::runtime {

namespace {

constexpr int kOpset = 13;

// A value of the graph: its ONNX name and, for images, whether it is NCHW (ONNX's convolution
// layout) rather than Kiln's NHWC.
struct Value {
  std::string name;
  int rank = 1;  // per example
  bool nchw = false;
};

class GraphBuilder {
 public:
  explicit GraphBuilder(onnx::GraphProto& g) : g_(g) {}

  onnx::NodeProto& node(const std::string& op, const std::vector<std::string>& in, const std::string& out) {
    onnx::NodeProto& n = *g_.add_node();
    n.set_op_type(op);
    n.set_name(out);
    for (const std::string& i : in) n.add_input(i);
    n.add_output(out);
    return n;
  }
  std::string fresh(const std::string& base) { return str_cat(base, ":", ++counter_); }

  void weight(const std::string& name, const std::vector<int64_t>& dims, const float* data) {
    onnx::TensorProto& t = *g_.add_initializer();
    t.set_name(name);
    t.set_data_type(onnx::TensorProto::FLOAT);
    int64_t n = 1;
    for (int64_t d : dims) {
      t.add_dims(d);
      n *= d;
    }
    t.set_raw_data(data, static_cast<size_t>(n) * sizeof(float));  // little-endian, as ONNX stores it
  }
  void scalar(const std::string& name, float v) { weight(name, {}, &v); }

  void input(const std::string& name, onnx::TensorProto::DataType type, const std::vector<int64_t>& per_example) {
    declare(*g_.add_input(), name, type, per_example);
  }
  void output(const std::string& name, onnx::TensorProto::DataType type, const std::vector<int64_t>& per_example) {
    declare(*g_.add_output(), name, type, per_example);
  }

 private:
  static void declare(onnx::ValueInfoProto& v, const std::string& name, onnx::TensorProto::DataType type,
                      const std::vector<int64_t>& per_example) {
    v.set_name(name);
    onnx::TypeProto::Tensor& t = *v.mutable_type()->mutable_tensor_type();
    t.set_elem_type(type);
    t.mutable_shape()->add_dim()->set_dim_param("batch");
    for (int64_t d : per_example) t.mutable_shape()->add_dim()->set_dim_value(d);
  }
  onnx::GraphProto& g_;
  int counter_ = 0;
};

void ints(onnx::NodeProto& n, const std::string& name, const std::vector<int64_t>& values) {
  onnx::AttributeProto& a = *n.add_attribute();
  a.set_name(name);
  a.set_type(onnx::AttributeProto::INTS);
  for (int64_t v : values) a.add_ints(v);
}
void integer(onnx::NodeProto& n, const std::string& name, int64_t v) {
  onnx::AttributeProto& a = *n.add_attribute();
  a.set_name(name);
  a.set_type(onnx::AttributeProto::INT);
  a.set_i(v);
}
void real(onnx::NodeProto& n, const std::string& name, float v) {
  onnx::AttributeProto& a = *n.add_attribute();
  a.set_name(name);
  a.set_type(onnx::AttributeProto::FLOAT);
  a.set_f(v);
}

int64_t dim(const google::protobuf::RepeatedField<int64_t>& v, int i, int64_t fallback) {
  if (v.empty()) return fallback;
  return v.size() > i ? v[i] : v[0];
}

// y = act(x), as Kiln's kernels compute it (GELU with erf).
std::string activation(GraphBuilder& b, ActivationType act, float slope, const std::string& x, const std::string& out) {
  switch (act) {
    case NONE: return x;
    case RELU: b.node("Relu", {x}, out); return out;
    case SIGMOID: b.node("Sigmoid", {x}, out); return out;
    case TANH: b.node("Tanh", {x}, out); return out;
    case LEAKY_RELU: real(b.node("LeakyRelu", {x}, out), "alpha", slope); return out;
    case GELU: {
      // x * 0.5 * (1 + erf(x / sqrt 2))
      const std::string root2 = b.fresh(out + "/sqrt2"), half = b.fresh(out + "/half"), one = b.fresh(out + "/one");
      b.scalar(root2, 1.41421356237f);
      b.scalar(half, 0.5f);
      b.scalar(one, 1.0f);
      const std::string d = b.fresh(out), e = b.fresh(out), p = b.fresh(out), h = b.fresh(out);
      b.node("Div", {x, root2}, d);
      b.node("Erf", {d}, e);
      b.node("Add", {e, one}, p);
      b.node("Mul", {p, half}, h);
      b.node("Mul", {x, h}, out);
      return out;
    }
  }
  fail("ONNX export: activation ", static_cast<int>(act), " is not supported");
}

// NHWC order again (before a flatten, so features line up with Kiln's).
Value to_nhwc(GraphBuilder& b, const Value& v) {
  if (!v.nchw) return v;
  Value out{b.fresh(v.name + "/nhwc"), v.rank, false};
  ints(b.node("Transpose", {v.name}, out.name), "perm", {0, 2, 3, 1});
  return out;
}

}  // namespace

void write_onnx(const ServableManifest& manifest, const io::CheckpointFile& weights, const std::string& path) {
  const ModelSpec& spec = manifest.model();
  models::Model<float> model(spec, Stream::cpu());
  models::load_model_weights(model, weights, "ONNX export");
  if (manifest.has_transform_state())
    for (const FeatureColumn& f : manifest.transform_state().spec().features())
      if (f.has_categorical() && !f.categorical().multi_value_delimiter().empty())
        fail("ONNX export: feature '", f.name(), "' is multi-valued (a bag of ids per example), which the ONNX model's ",
             "[batch] id inputs cannot carry");

  onnx::ModelProto proto;
  proto.set_ir_version(8);
  proto.set_producer_name("kiln");
  proto.set_model_version(manifest.version());
  onnx::OperatorSetIdProto& opset = *proto.add_opset_import();
  opset.set_domain("");
  opset.set_version(kOpset);
  onnx::GraphProto& g = *proto.mutable_graph();
  g.set_name(manifest.model_name().empty() ? "kiln" : manifest.model_name());
  GraphBuilder b(g);

  std::map<std::string, Value> values;
  std::vector<std::string> order;  // value names by Kiln index: inputs, then layers
  for (const InputSpec& in : spec.inputs()) {
    std::vector<int64_t> shape(in.shape().begin(), in.shape().end());
    if (in.kind() == InputSpec::IDS) {
      b.input(in.name(), onnx::TensorProto::INT64, {});
      values[in.name()] = {in.name(), 0, false};
    } else if (shape.size() == 3) {
      b.input(in.name(), onnx::TensorProto::FLOAT, shape);
      Value v{in.name() + "/nchw", 3, true};
      ints(b.node("Transpose", {in.name()}, v.name), "perm", {0, 3, 1, 2});
      values[in.name()] = v;
    } else {
      b.input(in.name(), onnx::TensorProto::FLOAT, shape);
      values[in.name()] = {in.name(), static_cast<int>(shape.size()), false};
    }
    order.push_back(in.name());
  }
  // A parameter of a layer on the host (the model was built on the CPU), or nullopt.
  auto param = [&](const std::string& layer, const std::string& name) -> std::optional<Tensor> {
    const int h = model.find_param(layer + "/" + name);
    if (h < 0) return std::nullopt;
    return model.params().tensor(h);
  };
  for (int i = 0; i < spec.layers_size(); ++i) {
    const LayerSpec& ls = spec.layers(i);
    const std::string name = model.layer_name(i);
    const std::string where = str_cat("ONNX export: model.layers[", i, "] (", name, ")");
    std::vector<Value> in;
    if (ls.inputs().empty())
      in.push_back(values.at(order[i == 0 ? 0 : static_cast<size_t>(spec.inputs_size() + i - 1)]));
    for (const std::string& n : ls.inputs()) in.push_back(values.at(n));
    const int rank = model.layer_shape(i).rank();
    Value out{name, rank, rank == 3};
    switch (ls.kind_case()) {
      case LayerSpec::kDense: {
        const Tensor w = *param(name, "kernel");
        b.weight(name + "/kernel", {w.shape()[0], w.shape()[1]}, w.data<float>());
        std::vector<std::string> gemm_in{in[0].name, name + "/kernel"};
        if (const std::optional<Tensor> bias = param(name, "bias")) {
          b.weight(name + "/bias", {bias->shape()[0]}, bias->data<float>());
          gemm_in.push_back(name + "/bias");
        }
        const std::string z = ls.dense().activation() == NONE ? name : b.fresh(name + "/gemm");
        b.node("Gemm", gemm_in, z);
        activation(b, ls.dense().activation(), 0.01f, z, name);
        break;
      }
      case LayerSpec::kEmbedding: {
        // One id per example: a SUM or MEAN bag of one row is the row.
        const Tensor t = *param(name, "table");
        b.weight(name + "/table", {t.shape()[0], t.shape()[1]}, t.data<float>());
        integer(b.node("Gather", {name + "/table", in[0].name}, name), "axis", 0);
        break;
      }
      case LayerSpec::kConv2D: {
        const Conv2DSpec& c = ls.conv2d();
        const Tensor w = *param(name, "kernel");  // HWIO
        const int64_t kh = w.shape()[0], kw = w.shape()[1], ci = w.shape()[2], co = w.shape()[3];
        std::vector<float> oihw(static_cast<size_t>(w.numel()));
        const float* src = w.data<float>();
        for (int64_t y = 0; y < kh; ++y)
          for (int64_t x = 0; x < kw; ++x)
            for (int64_t p = 0; p < ci; ++p)
              for (int64_t q = 0; q < co; ++q)
                oihw[static_cast<size_t>(((q * ci + p) * kh + y) * kw + x)] = src[((y * kw + x) * ci + p) * co + q];
        b.weight(name + "/kernel", {co, ci, kh, kw}, oihw.data());
        std::vector<std::string> conv_in{in[0].name, name + "/kernel"};
        if (const std::optional<Tensor> bias = param(name, "bias")) {
          b.weight(name + "/bias", {co}, bias->data<float>());
          conv_in.push_back(name + "/bias");
        }
        const int64_t ph = c.padding() == Conv2DSpec::SAME ? (kh - 1) / 2 : 0;
        const int64_t pw = c.padding() == Conv2DSpec::SAME ? (kw - 1) / 2 : 0;
        const std::string z = c.activation() == NONE ? name : b.fresh(name + "/conv");
        onnx::NodeProto& n = b.node("Conv", conv_in, z);
        ints(n, "kernel_shape", {kh, kw});
        ints(n, "strides", {dim(c.stride(), 0, 1), dim(c.stride(), 1, 1)});
        ints(n, "pads", {ph, pw, ph, pw});
        activation(b, c.activation(), 0.01f, z, name);
        break;
      }
      case LayerSpec::kMaxPool2D:
      case LayerSpec::kAvgPool2D: {
        const bool max = ls.kind_case() == LayerSpec::kMaxPool2D;
        const Pool2DSpec& p = max ? ls.max_pool2d() : ls.avg_pool2d();
        const int64_t kh = dim(p.pool(), 0, 2), kw = dim(p.pool(), 1, 2);
        const int64_t ph = p.padding() == Conv2DSpec::SAME ? (kh - 1) / 2 : 0;
        const int64_t pw = p.padding() == Conv2DSpec::SAME ? (kw - 1) / 2 : 0;
        onnx::NodeProto& n = b.node(max ? "MaxPool" : "AveragePool", {in[0].name}, name);
        ints(n, "kernel_shape", {kh, kw});
        ints(n, "strides", {dim(p.stride(), 0, kh), dim(p.stride(), 1, kw)});
        ints(n, "pads", {ph, pw, ph, pw});
        if (!max) integer(n, "count_include_pad", 0);  // Kiln averages over the cells inside the image
        break;
      }
      case LayerSpec::kGlobalAvgPool: {
        const std::string pooled = b.fresh(name + "/pooled");
        b.node("GlobalAveragePool", {in[0].name}, pooled);
        integer(b.node("Flatten", {pooled}, name), "axis", 1);
        out.nchw = false;
        break;
      }
      case LayerSpec::kFlatten:
        integer(b.node("Flatten", {to_nhwc(b, in[0]).name}, name), "axis", 1);
        break;
      case LayerSpec::kBatchNorm: {
        for (const char* p : {"gamma", "beta", "moving_mean", "moving_variance"}) {
          const Tensor t = *param(name, p);
          b.weight(name + "/" + p, {t.shape()[0]}, t.data<float>());
        }
        real(b.node("BatchNormalization",
                    {in[0].name, name + "/gamma", name + "/beta", name + "/moving_mean", name + "/moving_variance"}, name),
             "epsilon", ls.batch_norm().epsilon());
        out.nchw = in[0].nchw;
        break;
      }
      case LayerSpec::kDropout:  // inference: the identity
        b.node("Identity", {in[0].name}, name);
        out.nchw = in[0].nchw;
        break;
      case LayerSpec::kActivation:
        if (activation(b, ls.activation().type(), ls.activation().leaky_slope(), in[0].name, name) != name)
          b.node("Identity", {in[0].name}, name);
        out.nchw = in[0].nchw;
        break;
      case LayerSpec::kConcat: {
        std::vector<std::string> names;
        for (const Value& v : in) {
          if (v.nchw) fail(where, ": concat takes flat inputs");  // as Kiln's concat does
          names.push_back(v.name);
        }
        integer(b.node("Concat", names, name), "axis", 1);
        break;
      }
      default: fail(where, ": this layer kind is not supported by ONNX export");
    }
    values[name] = out;
    order.push_back(name);
  }

  // The head's outputs, as the servable computes them.
  const std::string logits = values.at(model.output_name()).name;
  const int64_t width = model.output_shape().numel();
  switch (spec.head().type()) {
    case HeadSpec::REGRESSION:
      b.node("Identity", {logits}, "predictions");
      b.output("predictions", onnx::TensorProto::FLOAT, {width});
      break;
    case HeadSpec::BINARY: {
      b.node("Sigmoid", {logits}, "logistic");
      b.scalar("zero", 0.0f);
      const std::string positive = b.fresh("positive");
      b.node("Greater", {logits, "zero"}, positive);
      integer(b.node("Cast", {positive}, "class_ids"), "to", onnx::TensorProto::INT64);
      b.output("logistic", onnx::TensorProto::FLOAT, {1});
      b.output("class_ids", onnx::TensorProto::INT64, {1});
      break;
    }
    case HeadSpec::MULTICLASS: {
      integer(b.node("Softmax", {logits}, "probabilities"), "axis", 1);
      onnx::NodeProto& n = b.node("ArgMax", {logits}, "class_ids");
      integer(n, "axis", 1);
      integer(n, "keepdims", 1);
      b.output("probabilities", onnx::TensorProto::FLOAT, {width});
      b.output("class_ids", onnx::TensorProto::INT64, {1});
      break;
    }
  }
  try {
    onnx::checker::check_model(proto);
  } catch (const std::exception& e) {
    fail("ONNX export: the ONNX checker refused the model (", e.what(), "): please report it");
  }
  std::string bytes;
  if (!proto.SerializeToString(&bytes)) fail("ONNX export: could not serialize the model");
  io::write_file_atomic(path, bytes);
}

}  // namespace kiln::runtime
