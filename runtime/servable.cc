#include "runtime/servable.h"

#include <xxhash.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "core/current_device.h"
#include "core/error.h"
#include "io/atomic_file.h"
#include "io/config_file.h"
#include "models/device_config.h"
#include "models/graph_eligibility.h"
#include "transform/csv_rows.h"

namespace kiln::runtime {

namespace fs = std::filesystem;

namespace {

void copy_param(const Stream& s, const io::CheckpointFile& file, const std::string& name, const Tensor& dst, const std::string& dir) {
  const Tensor* src = file.find(name);
  if (!src) fail("servable ", dir, ": weights lack tensor ", name, " (the manifest's model does not match them)");
  if (src->shape() != dst.shape() || src->dtype() != dst.dtype())
    fail("servable ", dir, ": weight ", name, " has shape ", src->shape().to_string(), ", the model needs ",
         dst.shape().to_string());
  copy_sync(s, dst, *src);
}

// Raw source columns of the features, in spec order, with what a client must send for each.
void add_tabular_inputs(const TransformState& state, Signature& sig) {
  const FeatureSpec& spec = state.spec();
  auto find = [&](const std::string& name) -> SignatureInput* {
    for (auto& in : *sig.mutable_inputs())
      if (in.name() == name) return &in;
    return nullptr;
  };
  for (const FeatureColumn& f : spec.features()) {
    if (f.has_crossed()) continue;  // reads other features' columns
    std::string source = f.source().empty() ? f.name() : f.source();
    SignatureInput* in = find(source);
    if (!in) {
      in = sig.add_inputs();
      in->set_name(source);
      in->set_type(SignatureInput::NUMBER);
      in->set_nullable(true);
    }
    if (f.has_categorical()) {
      in->set_type(SignatureInput::STRING);
      if (!f.categorical().multi_value_delimiter().empty()) {
        in->set_multi_valued(true);
        in->set_delimiter(f.categorical().multi_value_delimiter());
      }
    }
    if (f.missing().kind() == MissingPolicy::DROP_ROW) in->set_nullable(false);
  }
  if (!spec.key_column().empty()) sig.set_key(spec.key_column());
  if (spec.has_label()) sig.set_label(spec.label().column());
}

void add_output(Signature& sig, const char* name, const char* dtype, int64_t width) {
  SignatureOutput* o = sig.add_outputs();
  o->set_name(name);
  o->set_dtype(dtype);
  o->add_shape(width);
}

}  // namespace

std::string resolve_version_dir(const std::string& path) {
  if (std::filesystem::exists(std::filesystem::path(path) / kManifestFile)) return path;
  const auto versions = list_versions(path);
  if (versions.empty()) fail(path, ": neither a servable version directory nor a base path holding one");
  return versions.rbegin()->second;
}

std::map<int64_t, std::string> list_versions(const std::string& base_path) {
  std::map<int64_t, std::string> out;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(base_path, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.empty() || name.size() > 18 || !std::all_of(name.begin(), name.end(), ::isdigit)) continue;
    if (!entry.is_directory(ec)) continue;
    const int64_t v = std::stoll(name);
    if (v > 0) out[v] = entry.path().string();
  }
  return out;
}

Signature make_signature(const ModelSpec& model, const TransformState* state, const TensorInput* tensor) {
  Signature sig;
  if (state) add_tabular_inputs(*state, sig);
  if (tensor) {
    SignatureInput* in = sig.add_inputs();
    in->set_name(tensor->name());
    in->set_type(SignatureInput::NUMBER);
    for (int64_t d : tensor->shape()) in->add_shape(d);
  }
  switch (model.head().type()) {
    case HeadSpec::REGRESSION: add_output(sig, "predictions", "FP32", 1); break;
    case HeadSpec::BINARY:
      add_output(sig, "logistic", "FP32", 1);
      add_output(sig, "class_ids", "INT64", 1);
      add_output(sig, "classes", "BYTES", 1);
      break;
    case HeadSpec::MULTICLASS:
      add_output(sig, "probabilities", "FP32", model.head().num_classes());
      add_output(sig, "class_ids", "INT64", 1);
      add_output(sig, "classes", "BYTES", 1);
      break;
  }
  if (!sig.key().empty()) add_output(sig, "key", "BYTES", 1);
  return sig;
}

std::shared_ptr<const Servable> Servable::load(const std::string& dir) {
  std::shared_ptr<Servable> s(new Servable());
  s->dir_ = dir;
  std::string manifest_path = (fs::path(dir) / kManifestFile).string();
  if (!fs::exists(manifest_path)) fail("servable ", dir, ": no ", kManifestFile, " (is it an exported version?)");
  std::string text = io::read_file(manifest_path);
  // Errors name the file, line and column; protobuf prints nothing itself.
  try {
    io::parse_config_text(text, manifest_path, s->manifest_);
  } catch (const Error& e) {
    fail("invalid servable manifest ", e.what());
  }
  const ServableManifest& m = s->manifest_;
  bool has_weights = false;
  for (const ServableFile& f : m.files()) {
    if (f.name().find('/') != std::string::npos || f.name().empty() || f.name() == "..")
      fail("servable ", dir, ": bad file name '", f.name(), "' in the manifest");
    std::string path = (fs::path(dir) / f.name()).string();
    std::string bytes = io::read_file(path);
    if (static_cast<int64_t>(bytes.size()) != f.size())
      fail("servable ", dir, ": ", f.name(), " has ", bytes.size(), " bytes, the manifest says ", f.size());
    if (XXH3_64bits(bytes.data(), bytes.size()) != f.xxh3())
      fail("servable ", dir, ": checksum mismatch in ", f.name(), " (corrupt, or changed after export)");
    if (f.name() == kWeightsFile) has_weights = true;
  }
  if (!has_weights) fail("servable ", dir, ": the manifest lists no ", kWeightsFile);
  s->weights_ = io::read_checkpoint_file((fs::path(dir) / kWeightsFile).string());
  if (m.has_transform_state() == m.has_tensor_input())
    fail("servable ", dir, ": the manifest must hold exactly one of transform_state and tensor_input");
  if (m.has_transform_state()) {
    for (const SignatureInput& in : m.signature().inputs()) s->columns_.push_back(in.name());
    if (!m.signature().key().empty()) s->columns_.push_back(m.signature().key());
    s->transformer_ = std::make_unique<transform::Transformer>(m.transform_state(), s->columns_, /*need_label=*/false);
  } else {
    s->columns_.push_back(m.tensor_input().name());
    s->tensor_elements_ = 1;
    for (int64_t d : m.tensor_input().shape()) s->tensor_elements_ *= d;
  }
  for (const SignatureInput& in : m.signature().inputs()) {
    InputColumn c;
    c.name = in.name();
    c.is_string = in.type() == SignatureInput::STRING;
    c.nullable = in.nullable();
    c.multi_valued = in.multi_valued();
    c.delimiter = in.delimiter();
    s->schema_.columns.push_back(std::move(c));
  }
  if (m.has_transform_state()) {
    if (!m.signature().key().empty()) {
      InputColumn key;
      key.name = m.signature().key();
      key.is_string = true;
      key.is_key = true;
      s->schema_.columns.push_back(std::move(key));
    }
    s->schema_.label = m.signature().label();
    s->schema_.na_values = transform::csv_options(m.transform_state().spec().csv(), 1).na_values;
  } else {
    s->schema_.tensor_elements = s->tensor_elements_;
  }
  // Build one runner now: a model that does not match its weights fails the load, not a request.
  ModelRunner check(*s);
  return s;
}

transform::ModelInputs Servable::prepare(const transform::RawRows& rows) const {
  KILN_CHECK(transformer_, "prepare() on an image servable");
  return transformer_->apply(rows, nullptr);
}

transform::ModelInputs Servable::prepare_tensor(const std::vector<float>& values, int64_t rows) const {
  KILN_CHECK(static_cast<int64_t>(values.size()) == rows * tensor_elements_);
  return prepare_tensor(values.data(), rows);
}

transform::ModelInputs Servable::prepare_tensor(const float* values, int64_t rows) const {
  KILN_CHECK(!transformer_, "prepare_tensor() on a tabular servable");
  transform::ModelInputs in;
  in.batch = rows;
  in.dense = Tensor::empty(Shape({rows, tensor_elements_}), DType::f32);
  float* d = in.dense.data<float>();
  const float scale = manifest_.tensor_input().scale();
  // Same arithmetic as io::ArraySource: float(pixel) * scale.
  for (int64_t i = 0; i < rows * tensor_elements_; ++i) d[i] = values[i] * scale;
  return in;
}

Predictions Servable::postprocess(const float* raw, int64_t rows, int64_t width) const {
  Predictions p;
  p.rows = rows;
  const HeadSpec& head = manifest_.model().head();
  auto add = [&](int w, bool is_int) {
    p.output_width.push_back(w);
    p.output_is_int.push_back(is_int);
    p.output_is_string.push_back(false);
    p.float_outputs.emplace_back();
    p.int_outputs.emplace_back();
    p.string_outputs.emplace_back();
  };
  switch (head.type()) {
    case HeadSpec::REGRESSION:
      add(1, false);
      p.float_outputs[0].assign(raw, raw + rows);
      break;
    case HeadSpec::BINARY:
      add(1, false);
      add(1, true);
      for (int64_t r = 0; r < rows; ++r) {
        float prob = 1.0f / (1.0f + std::exp(-raw[r]));
        p.float_outputs[0].push_back(prob);
        p.int_outputs[1].push_back(raw[r] > 0 ? 1 : 0);
      }
      break;
    case HeadSpec::MULTICLASS: {
      add(static_cast<int>(width), false);
      add(1, true);
      p.float_outputs[0].resize(static_cast<size_t>(rows * width));
      // Each exponential once (a double exp is ~20 ns: at batch 64 the second pass cost ~12 us).
      std::vector<double> exps(static_cast<size_t>(width));
      for (int64_t r = 0; r < rows; ++r) {
        const float* x = raw + r * width;
        float* y = p.float_outputs[0].data() + r * width;
        int64_t best = 0;
        for (int64_t c = 1; c < width; ++c)
          if (x[c] > x[best]) best = c;
        double sum = 0;
        for (int64_t c = 0; c < width; ++c) sum += exps[c] = std::exp(static_cast<double>(x[c] - x[best]));
        for (int64_t c = 0; c < width; ++c) y[c] = static_cast<float>(exps[c] / sum);
        p.int_outputs[1].push_back(best);
      }
      break;
    }
  }
  // Versions exported before "classes" existed lack it in their signature.
  const bool has_classes = std::any_of(signature().outputs().begin(), signature().outputs().end(),
                                       [](const SignatureOutput& o) { return o.name() == "classes"; });
  if (head.type() != HeadSpec::REGRESSION && has_classes) {
    add(1, false);
    p.output_is_string.back() = true;
    for (int64_t id : p.int_outputs[1]) p.string_outputs.back().push_back(class_name(id));
  }
  return p;
}

std::string Servable::class_name(int64_t id) const {
  const TransformState& st = manifest_.transform_state();
  if (manifest_.model().head().type() == HeadSpec::MULTICLASS && st.has_label() && st.label().has_categorical() &&
      id >= 0 && id < st.label().categorical().vocabulary_size())
    return st.label().categorical().vocabulary(static_cast<int>(id));
  return std::to_string(id);
}

struct ModelRunner::Captured {
  Tensor input;   // [bucket, width] on the device: the graph reads it
  Tensor output;  // the graph's output, [bucket, output width]
  DeviceGraph graph;
};

ModelRunner::ModelRunner(const Servable& servable, const Device& device, Precision::Kind precision, bool graphs,
                         int64_t max_batch)
    : servable_(servable) {
  // The loading thread issues the weight copies; run() makes the device current again on the
  // thread that serves the batch (a batcher's, the server's), as each may be another.
  make_device_current(device);
  stream_ = std::make_unique<DeviceStream>(device);
  const Precision::Kind exported = servable.manifest().has_precision() ? servable.manifest().precision() : Precision::FP32;
  compute_ = stream_->view().with_precision(models::serving_precision(precision, exported, device));
  staging_ = std::make_unique<models::InputStaging>(compute_);
  model_ = std::make_unique<models::Model<float>>(servable.manifest().model(), compute_);
  auto& p = model_->params();
  const std::string& dir = servable.dir();
  const Stream& s = compute_;
  copy_param(s, servable.weights(), "params/dense", p.dense_values(), dir);
  copy_param(s, servable.weights(), "params/state", p.state_values(), dir);
  for (int h : p.embedding_handles())
    copy_param(s, servable.weights(), "params/" + model_->param_name(h), p.embedding_table(h), dir);
  width_ = model_->output_shape().numel();
  const ModelSpec& spec = servable.manifest().model();
  // Serving captures the forward pass only (no embedding backward), of one dense input.
  graphs_ = graphs && models::graphs_capturable(compute_, false) && spec.inputs_size() == 1 &&
            spec.inputs(0).kind() == InputSpec::DENSE;
  max_bucket_ = 1;
  while (max_bucket_ < std::max<int64_t>(max_batch, 1)) max_bucket_ *= 2;
  if (!graphs_) max_bucket_ = 0;
}

ModelRunner::~ModelRunner() = default;

const float* ModelRunner::copy_out(const Tensor& out, int64_t rows) {
  const int64_t n = rows * width_;
  if (!output_.defined() || output_.numel() < n) output_ = staging_empty(Shape{n}, DType::f32, out.device());
  copy_sync(compute_, output_.view(0, Shape{n}), out.reshape(Shape{out.numel()}).view(0, Shape{n}));
  return output_.data<float>();
}

const float* ModelRunner::run_graph(const transform::ModelInputs& batch) {
  int64_t bucket = 1;
  while (bucket < batch.batch) bucket *= 2;
  const int64_t in_width = model_->input_shape(0).numel();
  if (bucket > max_bucket_) {
    // A larger batch than the graphs were sized for: the model's buffers grow, which frees what
    // the captured graphs read.
    captured_.clear();
    max_bucket_ = bucket;
  }
  if (captured_.empty()) {
    // Warm-up at the largest bucket: every activation and scratch buffer reaches its final size,
    // so no capture below allocates.
    Tensor zeros = zeros_on(compute_, Shape{max_bucket_, in_width}, DType::f32);
    models::Context ctx{compute_, max_bucket_, false, 0, 0};
    ctx.weights_frozen = true;
    model_->forward(ctx, {{zeros.reshape(model_->input_shape(0).with_batch(max_bucket_)), Tensor()}});
    compute_.synchronize();
  }
  auto it = captured_.find(bucket);
  if (it == captured_.end()) {
    auto c = std::make_unique<Captured>();
    c->input = zeros_on(compute_, model_->input_shape(0).with_batch(bucket), DType::f32);
    compute_.synchronize();
    models::Context ctx{compute_, bucket, false, 0, 0};
    ctx.weights_frozen = true;
    DeviceGraph::begin_capture(compute_);
    try {
      c->output = model_->forward(ctx, {{c->input, Tensor()}});
    } catch (...) {
      DeviceGraph::end_capture(compute_);
      throw;
    }
    c->graph = DeviceGraph::end_capture(compute_);
    ++graphs_captured_;
    it = captured_.emplace(bucket, std::move(c)).first;
  }
  Captured& c = *it->second;
  // The batch's rows into the graph's input (the rows past it keep finite values of earlier
  // batches: each row's answer depends on its own input only).
  const std::vector<Tensor> staged = staging_->stage({batch.dense.reshape(Shape{batch.batch * in_width})});
  copy_async(compute_, c.input.reshape(Shape{bucket * in_width}).view(0, Shape{batch.batch * in_width}), staged[0]);
  c.graph.launch(compute_);
  ++graph_launches_;
  const float* out = copy_out(c.output, batch.batch);
  staging_->release();
  return out;
}

const float* ModelRunner::run(const transform::ModelInputs& batch) {
  make_device_current(compute_.device());
  if (graphs_ && batch.batch > 0) return run_graph(batch);
  // Host tensors in model input order (data, offsets), staged together.
  std::vector<Tensor>& host = host_inputs_;
  std::vector<int64_t>& ids_count = ids_counts_;
  host.clear();
  ids_count.clear();
  const ModelSpec& spec = servable_.manifest().model();
  for (const InputSpec& in : spec.inputs()) {
    if (in.kind() == InputSpec::DENSE) {
      Shape shape = model_->input_shape(static_cast<int>(host.size() / 2)).with_batch(batch.batch);
      host.push_back(batch.dense.reshape(shape));
      host.push_back(Tensor());
      ids_count.push_back(-1);
    } else {
      auto it = std::find_if(batch.ids.begin(), batch.ids.end(),
                             [&](const transform::IdsInput& x) { return x.name == in.name(); });
      KILN_CHECK(it != batch.ids.end(), "no ids for model input ", in.name());
      host.push_back(it->ids);
      host.push_back(it->offsets);
      ids_count.push_back(it->offsets.data<int64_t>()[batch.batch]);
    }
  }
  const std::vector<Tensor> staged = staging_->stage(host);
  std::vector<models::Value>& inputs = model_inputs_;
  inputs.clear();
  for (size_t i = 0; i < ids_count.size(); ++i) inputs.push_back({staged[2 * i], staged[2 * i + 1], ids_count[i]});
  models::Context ctx{compute_, batch.batch, false, 0, 0};
  ctx.weights_frozen = true;
  const Tensor& out = model_->forward(ctx, inputs);
  if (out.device().is_cpu()) {
    staging_->release();
    return out.data<float>();
  }
  const float* answer = copy_out(out, batch.batch);
  staging_->release();
  return answer;
}

transform::ModelInputs concat_inputs(const std::vector<const transform::ModelInputs*>& parts) {
  KILN_CHECK(!parts.empty());
  transform::ModelInputs out;
  if (parts.size() == 1) {  // the model reads these alone; tensors are shared, not copied
    out.batch = parts[0]->batch;
    out.dense = parts[0]->dense;
    out.ids = parts[0]->ids;
    return out;
  }
  int64_t rows = 0;
  for (const auto* p : parts) rows += p->batch;
  out.batch = rows;
  const int64_t width = parts[0]->dense.shape().rank() == 2 ? parts[0]->dense.shape()[1] : 0;
  out.dense = Tensor::empty(Shape({rows, width}), DType::f32);
  float* d = out.dense.data<float>();
  for (const auto* p : parts) {
    if (p->batch * width > 0) std::memcpy(d, p->dense.data<float>(), static_cast<size_t>(p->batch * width) * sizeof(float));
    d += p->batch * width;
  }
  for (size_t k = 0; k < parts[0]->ids.size(); ++k) {
    int64_t nnz = 0;
    for (const auto* p : parts) nnz += p->ids[k].ids.numel();
    transform::IdsInput ids;
    ids.name = parts[0]->ids[k].name;
    ids.id_space = parts[0]->ids[k].id_space;
    ids.ids = Tensor::empty(Shape({nnz}), DType::i64);
    ids.offsets = Tensor::empty(Shape({rows + 1}), DType::i64);
    int64_t* id = ids.ids.data<int64_t>();
    int64_t* off = ids.offsets.data<int64_t>();
    int64_t base = 0, row = 0;
    off[0] = 0;
    for (const auto* p : parts) {
      const transform::IdsInput& src = p->ids[k];
      const int64_t n = src.ids.numel();
      if (n > 0) std::memcpy(id + base, src.ids.data<int64_t>(), static_cast<size_t>(n) * sizeof(int64_t));
      const int64_t* so = src.offsets.data<int64_t>();
      for (int64_t r = 0; r < p->batch; ++r) off[row + r + 1] = base + so[r + 1];
      base += n;
      row += p->batch;
    }
    out.ids.push_back(std::move(ids));
  }
  return out;
}

}  // namespace kiln::runtime
