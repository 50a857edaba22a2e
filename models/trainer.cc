#include "models/trainer.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "core/current_device.h"
#include "core/error.h"
#include "core/device_graph.h"
#include "io/checkpoint_file.h"
#include "io/crc32c.h"
#include "io/event_writer.h"
#include "kernels/embedding.h"
#include "kernels/reduce.h"
#include "models/device_config.h"
#include "models/graph_eligibility.h"
#include "models/layers/layers.h"
#include "models/loss_readback.h"
#include "models/progress.h"
#include "models/warm_start.h"
#include "io/atomic_file.h"
#include "transform/state_fingerprint.h"

#include <google/protobuf/text_format.h>
#include "proto/checkpoint.pb.h"

namespace kiln::models {

namespace fs = std::filesystem;

namespace {

// One line on how the training data is streamed (rank 0 speaks for every rank).
void report_streaming(int64_t rows, const std::string& from, const char* unit, const WindowedBatches& batches,
                      int ranks) {
  std::string split;
  if (ranks > 1)
    split = str_cat("; ", ranks, " ranks read their own ", unit,
                    ", ", batches.examples_per_epoch(), " rows each per epoch (",
                    rows - batches.examples_per_epoch() * ranks, " left out for equal steps)");
  std::fprintf(stderr, "training data: streaming %lld rows from %s, a window of %lld examples at a time%s\n",
               static_cast<long long>(rows), from.c_str(), static_cast<long long>(batches.window_examples()),
               split.c_str());
}

constexpr const char* kCheckpointPrefix = "ckpt-";
constexpr const char* kCheckpointSuffix = ".kckpt";

std::vector<std::pair<int64_t, std::string>> list_checkpoints(const std::string& dir) {
  std::vector<std::pair<int64_t, std::string>> out;
  if (!fs::is_directory(dir)) return out;
  for (const auto& e : fs::directory_iterator(dir)) {
    std::string name = e.path().filename().string();
    if (name.rfind(kCheckpointPrefix, 0) != 0 || !name.ends_with(kCheckpointSuffix)) continue;
    std::string digits = name.substr(5, name.size() - 5 - std::strlen(kCheckpointSuffix));
    if (digits.empty() || !std::all_of(digits.begin(), digits.end(), ::isdigit)) continue;
    out.emplace_back(std::stoll(digits), e.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

void copy_into(const Stream& s, const io::CheckpointFile& file, const std::string& name, const Tensor& dst) {
  const Tensor* src = file.find(name);
  if (!src) fail("checkpoint lacks tensor ", name, " (does it belong to another model?)");
  if (src->shape() != dst.shape() || src->dtype() != dst.dtype())
    fail("checkpoint tensor ", name, " has shape ", src->shape().to_string(), ", the model needs ",
         dst.shape().to_string());
  copy_sync(s, dst, *src);
}

std::string format_metrics(const std::map<std::string, double>& m) {
  std::string s;
  char buf[64];
  for (const auto& [k, v] : m) {
    std::snprintf(buf, sizeof buf, "%s%s %.4f", s.empty() ? "" : " ", k.c_str(), v);
    s += buf;
  }
  return s;
}

// The head must fit the label the feature spec produces. A MULTICLASS head whose num_classes is
// left 0 takes the label vocabulary's size, and so does a final dense layer left without units.
void check_label_type(const TransformState& state, ModelSpec& model) {
  HeadSpec& head = *model.mutable_head();
  const LabelSpec& label = state.spec().label();
  HeadSpec::Type want = label.type() == LabelSpec::MULTICLASS ? HeadSpec::MULTICLASS
                        : label.type() == LabelSpec::BINARY   ? HeadSpec::BINARY
                                                              : HeadSpec::REGRESSION;
  if (head.type() != want)
    fail("model.head.type is ", HeadSpec::Type_Name(head.type()), " but feature_spec.label.type is ",
         LabelSpec::Type_Name(label.type()));
  int64_t classes = state.label().categorical().vocabulary_size();
  if (want == HeadSpec::MULTICLASS && head.num_classes() == 0) {
    head.set_num_classes(classes);
    LayerSpec* last = model.layers_size() > 0 ? model.mutable_layers(model.layers_size() - 1) : nullptr;
    if (last && last->has_dense() && last->dense().units() == 0) last->mutable_dense()->set_units(classes);
  }
  if (want == HeadSpec::MULTICLASS && head.num_classes() != classes)
    fail("model.head.num_classes is ", head.num_classes(), " but the label column has ", classes, " classes");
}

// Under `kiln tune` the driver names a metrics file in KILN_TUNE_METRICS_FILE; each evaluation
// appends one JSON line {"step": N, "<metric>": value, ...} to it, in a single write so a reader
// never sees half a line. Not finite values are written as null, which fails the trial.
void append_tune_metrics(int64_t step, const std::map<std::string, double>& metrics) {
  const char* path = std::getenv("KILN_TUNE_METRICS_FILE");
  if (!path || !*path) return;
  std::string line = str_cat("{\"step\": ", step);
  char buf[64];
  for (const auto& [k, v] : metrics) {
    std::snprintf(buf, sizeof buf, "%.17g", v);
    line += str_cat(", \"", k, "\": ", std::isfinite(v) ? buf : "null");
  }
  line += "}\n";
  int fd = ::open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) fail("cannot open KILN_TUNE_METRICS_FILE ", path, ": ", std::strerror(errno));
  ssize_t written = ::write(fd, line.data(), line.size());
  ::close(fd);
  if (written != static_cast<ssize_t>(line.size())) fail("cannot append to KILN_TUNE_METRICS_FILE ", path);
}

// threads: 0. A thread team pays only when each thread's share of a step outweighs what waking
// and joining it costs at every parallel region, and an oversubscribed team (parallel tune
// trials, CI, a shared node) waits for descheduled members at each one: babyweight's wide & deep
// model (~500 multiply-adds per example) trained 10,400 steps in 0.85 s with 1 thread or 2, but two
// such runs at once on 2 cores took 0.9 s with 1 thread each and 4-6 s with 2
// (bench/results/oversubscription.md). So: one thread per 4M multiply-adds of a training step
// (forward and backward, ~3x the forward), at most the cores; OMP_NUM_THREADS set by the user wins.
int automatic_threads(int64_t macs_per_example, int64_t batch_size) {
  constexpr double kMacsPerThread = 4e6;
  const double step_macs = 3.0 * static_cast<double>(macs_per_example) * static_cast<double>(batch_size);
  const double wanted = std::floor(step_macs / kMacsPerThread);
  return static_cast<int>(std::clamp<double>(wanted, 1, cpu_threads()));
}

}  // namespace

std::string latest_checkpoint(const std::string& dir) {
  auto all = list_checkpoints(dir);
  return all.empty() ? "" : all.back().second;
}

Trainer::Trainer(const TrainConfig& config, bool evaluation_only, const Device& device)
    : config_(config), checkpoints_(config.checkpoint()), comm_(&world()) {
  if (config.batch_size() <= 0) fail("batch_size must be > 0, got ", config.batch_size());
  if (config.eval_every_steps() < 0)
    fail("eval_every_steps must be >= 0 (0 = after each epoch), got ", config.eval_every_steps());
  if (config.epochs() <= 0 && config.max_steps() <= 0) fail("epochs or max_steps must be > 0");
  if (config.threads() < 0) fail("threads must be >= 0, got ", config.threads());
  if (config.threads() > 0) set_cpu_threads(config.threads());
  if (!config.has_model()) fail("model is not set");
  if (!config.model().has_head()) fail("model.head is not set");
  // This thread issues the work (run(), evaluate() and predict() make it current again, in case
  // another thread calls them).
  make_device_current(device);
  stream_ = std::make_unique<DeviceStream>(device);
  compute_ = stream_->view().with_precision(training_precision(config.precision(), device));
  staging_ = std::make_unique<InputStaging>(compute_);
  if (config.data().has_idx() && config.model().head().type() != HeadSpec::MULTICLASS)
    fail("model.head.type: IDX image data has class labels and needs a MULTICLASS head");
  // The model reads what the data provides: its inputs are filled in or checked first.
  data_ = load_training_data(config, !evaluation_only);
  bind_model_inputs(data_, *config_.mutable_model());
  if (data_.transform_state) check_label_type(*data_.transform_state, *config_.mutable_model());
  model_ = std::make_unique<Model<float>>(config_.model(), compute_);
  if (config.threads() == 0 && !std::getenv("OMP_NUM_THREADS"))
    set_cpu_threads(automatic_threads(model_->macs_per_example(), config.batch_size()));
  head_ = std::make_unique<Head<float>>(config_.model().head(), model_->output_shape());
  const EarlyStopping& es = config.early_stopping();
  if (!es.metric().empty()) {
    static const std::vector<std::string> known{"loss", "accuracy", "auc", "rmse", "mae"};
    if (std::find(known.begin(), known.end(), es.metric()) == known.end())
      fail("early_stopping.metric: unknown metric '", es.metric(), "' (loss, accuracy, auc, rmse or mae)");
  }
  if (!es.metric().empty() && !data_.has_eval()) fail("early_stopping needs eval data");
  model_->initialize(config.seed());
  // A regression output starts at the label's mean (from the analysis) instead of 0, so the
  // first epochs are not spent learning the offset.
  if (data_.transform_state && config_.model().head().type() == HeadSpec::REGRESSION &&
      data_.transform_state->label().has_numeric()) {
    int bias = model_->find_param(model_->output_name() + "/bias");
    if (bias >= 0)
      model_->params().set_element(bias, 0, static_cast<float>(data_.transform_state->label().numeric().mean()));
  }
  if (!evaluation_only && !config.warm_start_from().empty()) apply_warm_start();
  optimizer_ = std::make_unique<Optimizer>(config.optimizer(), model_->params());
  if (comm_->size() > 1) comm_->set_collective_timeout(config.distributed().collective_timeout_s());
  if (evaluation_only) return;
  if (data_.train_stream || data_.train_csv_stream) {
    StreamOptions so;
    so.batch_size = config.batch_size();
    so.shuffle = config.shuffle();
    so.seed = config.seed();
    so.shuffle_buffer = config.data().csv().shuffle_buffer();
    std::shared_ptr<WindowedBatches> batches;
    if (data_.train_stream) {
      const ShardTable& table = *data_.train_stream;
      batches = std::make_shared<ShardBatches>(data_.train_stream, so);
      input_layout_ = table.layout();
      if (is_chief())
        report_streaming(table.total_rows(), str_cat(table.files(), " example shards"), "blocks", *batches,
                         table.ranks());
    } else {
      auto csv = std::make_shared<CsvBatches>(data_.train_csv_stream, so, *comm_);
      input_layout_ = csv->layout();
      if (is_chief())
        report_streaming(csv->total_rows(), str_cat(csv->files(), " CSV files (transformed as read)"), "files", *csv,
                         comm_->size());
      batches = csv;
    }
    input_layout_ += str_cat("; window ", batches->window_examples(), " examples");
    pipeline_ = std::make_unique<io::InputPipeline>(std::move(batches), 2);
  } else {
    io::PipelineOptions opts;
    opts.batch_size = config.batch_size() * comm_->size();  // the global batch
    opts.shuffle = config.shuffle();
    opts.seed = config.seed();
    opts.shard_index = comm_->rank();
    opts.shard_count = comm_->size();
    pipeline_ = std::make_unique<io::InputPipeline>(data_.train, opts);
  }
  if (comm_->size() > 1) sync_ = std::make_unique<GradientSync>(*comm_, model_->params(), config.distributed());
}

Trainer::~Trainer() = default;

std::vector<Tensor> Trainer::host_inputs(const io::Batch& batch) const {
  std::vector<Tensor> host;
  for (const InputBinding& b : data_.inputs) {
    host.push_back(batch.tensors[b.data]);
    host.push_back(b.offsets >= 0 ? batch.tensors[b.offsets] : Tensor());
  }
  host.push_back(batch.tensors[data_.label]);
  return host;
}

struct Trainer::StepGraph {
  // Fixed device copies of host_inputs(): the graph reads them. An IDS input's ids hold its
  // capacity, the most ids any eager step had when the graph was captured.
  std::vector<Tensor> inputs;
  std::vector<int64_t> ids_capacity;  // per model input (0: dense)
  Tensor step_key;             // u64 on the device: step << 12, for dropout
  Tensor key_ring;             // host: the values copied into step_key, one slot per step
  Tensor losses;               // the per-example losses the graph writes
  DeviceGraph graph;
};

bool Trainer::graphs_allowed() const {
  const bool embeddings = !model_->params().embedding_handles().empty();
  return config_.graphs() && graphs_capturable(compute_, embeddings) && comm_->size() == 1 &&
         config_.optimizer().clip_global_norm() <= 0;
}

int64_t Trainer::ids_count(const io::Batch& batch, size_t i) const {
  const InputBinding& b = data_.inputs[i];
  return b.offsets >= 0 ? batch.tensors[b.offsets].data<int64_t>()[batch.size] : 0;
}

bool Trainer::check_ids(const io::Batch& batch) const {
  if (compute_.device().is_cpu()) return false;
  for (size_t i = 0; i < data_.inputs.size(); ++i) {
    const int64_t rows = model_->ids_rows(static_cast<int>(i));
    if (rows > 0)
      kernels::embedding_check_ids(batch.tensors[data_.inputs[i].data].data<int64_t>(), ids_count(batch, i), rows);
  }
  return true;
}

bool Trainer::ids_fit_graph(const io::Batch& batch) const {
  for (size_t i = 0; i < data_.inputs.size(); ++i) {
    const int64_t capacity = step_graph_ ? step_graph_->ids_capacity[i] : ids_seen_[i];
    if (ids_count(batch, i) > capacity) return false;
  }
  return true;
}

void Trainer::note_eager_ids(const io::Batch& batch) {
  bool beyond_graph = false;
  for (size_t i = 0; i < data_.inputs.size(); ++i) {
    const int64_t n = ids_count(batch, i);
    ids_seen_[i] = std::max(ids_seen_[i], n);
    if (step_graph_ && n > step_graph_->ids_capacity[i]) beyond_graph = true;
  }
  if (beyond_graph) {
    compute_.synchronize();  // a launch of the graph may still read its input buffers
    step_graph_.reset();
  }
}

Tensor Trainer::run_step_graph(const io::Batch& batch, Tensor& doutput) {
  const std::vector<Tensor> host = host_inputs(batch);
  if (!step_graph_) {
    // Captured once, after an eager step of this batch size sized every buffer: nothing below
    // allocates while the stream captures.
    auto g = std::make_unique<StepGraph>();
    g->ids_capacity = ids_seen_;
    for (size_t k = 0; k < host.size(); ++k) {
      if (!host[k].defined()) {
        g->inputs.emplace_back();
        continue;
      }
      // Ids come first of an IDS input's two tensors (host_inputs()).
      const size_t i = k / 2;
      const bool ids = k % 2 == 0 && i < data_.inputs.size() && data_.inputs[i].offsets >= 0;
      const Shape shape = ids ? Shape{std::max<int64_t>(g->ids_capacity[i], 1)} : host[k].shape();
      g->inputs.push_back(zeros_on(compute_, shape, host[k].dtype()));
    }
    g->step_key = zeros_on(compute_, Shape{1}, DType::i64);
    g->key_ring = staging_empty(Shape{1024}, DType::i64, compute_.device());
    compute_.synchronize();
    Context ctx{compute_, batch.size, true, config_.seed(), 0, 0};
    ctx.step_key = reinterpret_cast<const uint64_t*>(g->step_key.data<int64_t>());
    // Ids keep ids_count -1: their count stays on the device (checked on the host before staging).
    std::vector<Value> inputs;
    for (size_t i = 0; i < data_.inputs.size(); ++i) inputs.push_back({g->inputs[2 * i], g->inputs[2 * i + 1], -1, true});
    DeviceGraph::begin_capture(compute_);
    try {
      const Tensor& out = model_->forward(ctx, inputs);
      Tensor d = scratch(compute_, doutput, out.shape(), DType::f32);
      g->losses = head_->losses(compute_, out, g->inputs.back(), batch.size, &d);
      model_->backward(ctx, d);
    } catch (...) {
      DeviceGraph::end_capture(compute_);
      throw;
    }
    g->graph = DeviceGraph::end_capture(compute_);
    step_graph_ = std::move(g);
  }
  StepGraph& g = *step_graph_;
  check_ids(batch);
  const std::vector<Tensor> staged = staging_->stage(host);
  // This batch's ids fill the front of their capacity (ids_fit_graph); the rest is not read.
  for (size_t i = 0; i < staged.size(); ++i)
    if (staged[i].defined() && staged[i].numel() > 0)
      copy_async(compute_, g.inputs[i].view(0, staged[i].shape()), staged[i]);
  // The step's dropout key through a host slot the stream reads when it gets there; the slot is
  // rewritten 1024 steps later, long after (losses are read back at least every 64 steps).
  const int64_t slot = step_ % g.key_ring.numel();
  g.key_ring.data<int64_t>()[slot] = step_ << 12;
  copy_async(compute_, g.step_key, g.key_ring.view(slot, Shape{1}));
  g.graph.launch(compute_);
  staging_->release();
  ++step_graph_launches_;
  // The graph's backward left each table's unique-id count on the device (an eager step since
  // may have set a host count).
  for (int h : model_->params().embedding_handles())
    model_->params().sparse_grad(h).count = SparseGrad<float>::kOnDevice;
  return g.losses;
}

std::vector<Value> Trainer::stage_inputs(const io::Batch& batch, Tensor* label) {
  const std::vector<Tensor> host = host_inputs(batch);
  const bool checked = check_ids(batch);
  std::vector<Tensor> staged = staging_->stage(host);
  std::vector<Value> inputs;
  for (size_t i = 0; i < data_.inputs.size(); ++i) {
    Value v{staged[2 * i], staged[2 * i + 1]};
    v.ids_checked = checked;
    // The id count is known on the host; a device kernel would have to read it back.
    if (v.offsets.defined()) v.ids_count = host[2 * i + 1].data<int64_t>()[batch.size];
    inputs.push_back(std::move(v));
  }
  *label = staged.back();
  return inputs;
}

void Trainer::apply_warm_start() {
  if (config_.resume() && !latest_checkpoint(checkpoint_dir()).empty()) {
    if (is_chief())
      std::fprintf(stderr, "warm start: not applied, %s holds checkpoints to resume from (resume: false starts afresh)\n",
                   checkpoint_dir().c_str());
    return;
  }
  const WarmStartSource source = load_warm_start(config_.warm_start_from());
  const WarmStartReport r = warm_start(*model_, config_.model(), data_.transform_state, source);
  if (!is_chief()) return;
  for (const std::string& w : r.warnings) std::fprintf(stderr, "kiln: warning: warm start: %s\n", w.c_str());
  for (const std::string& n : r.notes) std::fprintf(stderr, "warm start: %s\n", n.c_str());
  std::fprintf(stderr, "warm start from %s: %d parameters carried, %d remapped to the new ids, %d initialised afresh\n",
               source.what.c_str(), r.carried, r.remapped, r.reinitialized);
}

std::string Trainer::checkpoint_dir() const { return (fs::path(config_.output_dir()) / "checkpoints").string(); }

std::vector<io::NamedTensor> Trainer::host_weights() const {
  std::vector<io::NamedTensor> tensors;
  auto& p = model_->params();
  const Stream& s = compute_;
  tensors.push_back({"params/dense", to_host(s, p.dense_values())});
  tensors.push_back({"params/state", to_host(s, p.state_values())});
  for (int h : p.embedding_handles())
    tensors.push_back({"params/" + model_->param_name(h), to_host(s, p.embedding_table(h))});
  return tensors;
}

std::string Trainer::write_checkpoint() {
  fs::create_directories(checkpoint_dir());
  CheckpointMeta meta;
  meta.set_step(step_);
  meta.set_epoch(epoch_);
  meta.set_batch_in_epoch(batch_in_epoch_);
  meta.set_evals_without_improvement(evals_without_improvement_);
  if (has_best_) meta.set_best_metric(best_metric_);
  meta.set_input_layout(input_layout_);
  if (recorded_config_text_.empty()) {
    // The config, less where the run happens to run: a checkpoint is the same bytes on every
    // device and in every output directory. Fixed for the run, like the state's fingerprint.
    TrainConfig recorded = config_;
    for (int field : {TrainConfig::kOutputDirFieldNumber, TrainConfig::kDeviceFieldNumber,
                      TrainConfig::kDeviceIndexFieldNumber, TrainConfig::kGraphsFieldNumber,
                      TrainConfig::kKernelLibraryFieldNumber, TrainConfig::kKernelLibraryOverridesFieldNumber})
      recorded.GetReflection()->ClearField(&recorded, TrainConfig::descriptor()->FindFieldByNumber(field));
    google::protobuf::TextFormat::PrintToString(recorded, &recorded_config_text_);
    if (data_.transform_state) {
      // The state beside the checkpoints, once: a warm start maps embedding rows with it even
      // after the state file the config names was analyzed again.
      state_fingerprint_ = transform::state_fingerprint(*data_.transform_state);
      const std::string state_file = checkpoint_state_file(checkpoint_dir(), state_fingerprint_);
      if (!fs::exists(state_file)) {
        std::string text;
        google::protobuf::TextFormat::PrintToString(*data_.transform_state, &text);
        io::write_file_atomic(state_file, text);
      }
    }
  }
  meta.set_config_text(recorded_config_text_);
  if (!state_fingerprint_.empty()) meta.set_transform_state_fingerprint(state_fingerprint_);
  std::vector<io::NamedTensor> tensors = host_weights();
  for (auto& t : optimizer_->state()) tensors.push_back({t.name, to_host(compute_, t.tensor)});
  char name[64];
  std::snprintf(name, sizeof name, "%s%010lld%s", kCheckpointPrefix, static_cast<long long>(step_), kCheckpointSuffix);
  std::string path = (fs::path(checkpoint_dir()) / name).string();
  io::write_checkpoint_file(path, meta.SerializeAsString(), tensors);
  prune_checkpoints();
  return path;
}

void Trainer::broadcast_state() {
  int64_t counters[6] = {step_, epoch_, batch_in_epoch_, evals_without_improvement_, has_best_ ? 1 : 0,
                         optimizer_->steps()};
  comm_->broadcast_in_place(counters, sizeof counters, 0);
  comm_->broadcast_in_place(&best_metric_, sizeof best_metric_, 0);
  step_ = counters[0], epoch_ = counters[1], batch_in_epoch_ = counters[2];
  evals_without_improvement_ = counters[3], has_best_ = counters[4] != 0;
  optimizer_->set_steps(counters[5]);
  auto& p = model_->params();
  std::vector<Tensor> tensors{p.dense_values(), p.state_values()};
  for (int h : p.embedding_handles()) tensors.push_back(p.embedding_table(h));
  for (const io::NamedTensor& t : optimizer_->state())
    if (t.name != "optimizer/steps") tensors.push_back(t.tensor);
  for (const Tensor& t : tensors) {
    if (!t.defined() || t.bytes() == 0) continue;
    const Tensor host = to_host(compute_, t);
    comm_->broadcast_in_place(host.raw(), static_cast<int64_t>(host.bytes()), 0);
    if (!t.device().is_cpu()) copy_sync(compute_, t, host);
  }
}

void Trainer::check_replicas_agree() {
  auto& p = model_->params();
  const Tensor dense = to_host(compute_, p.dense_values());
  uint32_t crc = io::crc32c(dense.raw(), dense.bytes());
  for (int h : p.embedding_handles()) {
    const Tensor table = to_host(compute_, p.embedding_table(h));
    crc = io::crc32c_extend(crc, table.raw(), table.bytes());
  }
  std::vector<std::string> all = comm_->all_gather(std::string(reinterpret_cast<const char*>(&crc), sizeof crc));
  std::string differ;
  for (size_t r = 1; r < all.size(); ++r)
    if (all[r] != all[0]) differ += str_cat(differ.empty() ? "" : ", ", r);
  if (!differ.empty())
    fail("at step ", step_, " the weights of rank(s) ", differ, " differ from rank 0's: the replicas diverged");
}

void Trainer::prune_checkpoints() {
  // Temporary files of a write that was killed midway (the atomic writer's ".ckpt-*.tmp.*").
  if (fs::is_directory(checkpoint_dir()))
    for (const auto& e : fs::directory_iterator(checkpoint_dir())) {
      std::string name = e.path().filename().string();
      if (name.rfind(".ckpt-", 0) == 0 && name.find(".tmp") != std::string::npos) fs::remove(e.path());
    }
  auto all = list_checkpoints(checkpoint_dir());
  int64_t keep = std::max<int64_t>(config_.checkpoint().keep_last(), 1);
  for (size_t i = 0; i + keep < all.size(); ++i) fs::remove(all[i].second);
}

namespace {

// Renames a checkpoint that failed to load to NAME.corrupt (NAME.corrupt.1, ... if taken): out of
// the way of list_checkpoints, kept for inspection. Returns the new name ("" if it could not be
// renamed, e.g. another process got there first).
std::string set_aside(const std::string& path) {
  std::string target = path + ".corrupt";
  for (int i = 1; fs::exists(target); ++i) target = str_cat(path, ".corrupt.", i);
  std::error_code ec;
  fs::rename(path, target, ec);
  return ec ? "" : target;
}

}  // namespace

bool Trainer::restore(const std::string& path_in) {
  restored_.clear();
  auto metadata = [](const io::CheckpointFile& file, const std::string& path) {
    CheckpointMeta meta;
    if (!meta.ParseFromString(file.metadata)) fail("checkpoint ", path, ": unreadable metadata");
    return meta;
  };
  if (!path_in.empty()) {
    const io::CheckpointFile file = io::read_checkpoint_file(path_in);  // the one asked for, or an error
    load_checkpoint(file, metadata(file, path_in), path_in);
    restored_ = path_in;
    return true;
  }
  // The newest checkpoint that reads back intact. A corrupt one (a bad disk, a bit flip, a copy
  // cut short) must not stop training, evaluation or export while an older one is good.
  auto all = list_checkpoints(checkpoint_dir());
  for (auto it = all.rbegin(); it != all.rend(); ++it) {
    const std::string& path = it->second;
    io::CheckpointFile file;
    CheckpointMeta meta;
    try {
      file = io::read_checkpoint_file(path);
      meta = metadata(file, path);
    } catch (const Error& e) {
      std::string kept = set_aside(path);
      std::fprintf(stderr, "warning: %s; %s; trying the previous checkpoint\n", e.what(),
                   kept.empty() ? "left in place" : ("renamed to " + kept + " for inspection").c_str());
      continue;
    }
    load_checkpoint(file, meta, path);
    restored_ = path;
    return true;
  }
  return false;
}

void Trainer::load_checkpoint(const io::CheckpointFile& file, const CheckpointMeta& meta, const std::string& path) {
  auto& p = model_->params();
  try {
    copy_into(compute_, file, "params/dense", p.dense_values());
    copy_into(compute_, file, "params/state", p.state_values());
    for (int h : p.embedding_handles()) copy_into(compute_, file, "params/" + model_->param_name(h), p.embedding_table(h));
    optimizer_->load_state(file);
  } catch (const Error& e) {
    // A changed model or optimizer meets an old output_dir: say how to start afresh.
    fail("checkpoint ", path, " does not fit this model (", e.what(), "): it was written by another model or ",
         "optimizer config; to start afresh, set a new output_dir or resume: false (--set resume=false)");
  }
  step_ = meta.step();
  epoch_ = meta.epoch();
  batch_in_epoch_ = meta.batch_in_epoch();
  if (pipeline_ && meta.input_layout() != input_layout_)
    std::fprintf(stderr,
                 "kiln: warning: the training input differs from the one %s was written with (then: %s; now: %s): "
                 "resuming at epoch %lld, batch %lld of this input\n",
                 path.c_str(), meta.input_layout().empty() ? "in memory" : meta.input_layout().c_str(),
                 input_layout_.empty() ? "in memory" : input_layout_.c_str(), static_cast<long long>(meta.epoch()),
                 static_cast<long long>(meta.batch_in_epoch()));
  evals_without_improvement_ = meta.evals_without_improvement();
  best_metric_ = meta.best_metric();
  has_best_ = meta.has_best_metric();
}

std::map<std::string, double> Trainer::evaluate() {
  make_device_current(compute_.device());
  if (!data_.has_eval()) fail("no eval data configured (data.idx.eval_images / eval_labels)");
  std::unique_ptr<io::InputPipeline> pipeline;
  if (data_.eval_stream) {
    // Each rank evaluates its own blocks, every example once.
    StreamOptions so;
    so.batch_size = std::max<int64_t>(config_.batch_size(), 256);
    so.shuffle = false;
    so.shuffle_buffer = config_.data().csv().shuffle_buffer();
    so.equal_steps = false;
    pipeline = std::make_unique<io::InputPipeline>(std::make_shared<ShardBatches>(data_.eval_stream, so), 2);
  } else {
    io::PipelineOptions opts;
    opts.batch_size = std::max<int64_t>(config_.batch_size(), 256) * comm_->size();
    opts.shuffle = false;
    opts.shard_index = comm_->rank();
    opts.shard_count = comm_->size();
    pipeline = std::make_unique<io::InputPipeline>(data_.eval, opts);
  }
  io::InputPipeline& eval = *pipeline;
  MetricAccumulator<float> acc(config_.model().head());
  int64_t batches = eval.batches_per_epoch();
  for (int64_t i = 0; i < batches; ++i) {
    io::Batch b = eval.next();
    if (b.size == 0) continue;
    Context ctx{compute_, b.size, false, config_.seed(), step_};
    Tensor label;
    const Tensor& out = model_->forward(ctx, stage_inputs(b, &label));
    const Tensor losses = head_->losses(ctx.stream, out, label, b.size, nullptr);
    // The metrics are computed on the host: one read-back per evaluation batch.
    const Tensor host_out = to_host(ctx.stream, out), host_losses = to_host(ctx.stream, losses);
    staging_->release();
    acc.add(Stream::cpu(), host_out, b.tensors[data_.label], b.size, mean_loss(host_losses));
  }
  acc.reduce(*comm_);
  return acc.result();
}

Tensor Trainer::predict(const io::Batch& batch, uint64_t seed) {
  make_device_current(compute_.device());
  Context ctx{compute_, batch.size, false, seed, 0};
  Tensor label;
  const Tensor out = to_host(ctx.stream, model_->forward(ctx, stage_inputs(batch, &label)));
  staging_->release();
  return out;
}

TrainResult Trainer::run() {
  make_device_current(compute_.device());
  KILN_CHECK(pipeline_, "run() on a Trainer built for evaluation only");
  TrainResult result;
  result.ranks = comm_->size();
  // Rank 0 alone reads and writes checkpoints; the others take its state below.
  if (is_chief()) {
    prune_checkpoints();
    if (config_.resume() && restore()) {
      std::fprintf(stderr, "resumed from %s at step %lld\n", restored_.c_str(), static_cast<long long>(step_));
    }
  }
  if (comm_->size() > 1) {
    broadcast_state();
    if (is_chief())
      std::fprintf(stderr,
                   "data-parallel: %d ranks x batch %lld = global batch %lld; %.1f MB of dense gradients in %lld "
                   "buckets per step\n",
                   comm_->size(), static_cast<long long>(config_.batch_size()),
                   static_cast<long long>(config_.batch_size() * comm_->size()),
                   sync_->stats().dense_bytes_per_step / 1e6, static_cast<long long>(sync_->stats().buckets_per_step));
  }
  int64_t per_epoch = pipeline_->batches_per_epoch();
  int64_t total = config_.max_steps() > 0 ? config_.max_steps() : config_.epochs() * per_epoch;
  const int64_t eval_every = config_.eval_every_steps();  // 0: after each epoch
  if (step_ >= total) {
    // A rerun of a finished training: nothing to do, and no "0 examples/s" as if something ran.
    result.already_done = true;
    result.steps = step_;
    result.epochs_completed = epoch_;
    result.checkpoint = restored_;  // rank 0's; the others restored nothing
    return result;
  }
  pipeline_->seek(epoch_, batch_in_epoch_);
  std::unique_ptr<io::EventWriter> events;
  std::unique_ptr<Progress> progress;
  if (is_chief()) {
    events = std::make_unique<io::EventWriter>((fs::path(config_.output_dir()) / "events").string());
    // What an earlier run logged from here on (it was killed past its last checkpoint, or this
    // run starts over) is written again by this one: TensorBoard drops the old copies.
    events->add_session_start(step_ + 1);
    progress = std::make_unique<Progress>(total, progress_listener_);
    progress->resume_at(step_);
  }
  const EarlyStopping& es = config_.early_stopping();
  auto start = std::chrono::steady_clock::now();
  checkpoints_.restart_timer();
  int64_t examples = 0, start_step = step_;
  Tensor doutput;
  double loss_sum = 0;  // of the global batches' mean losses (this rank's share of each)
  int64_t loss_count = 0;
  auto& params = model_->params();
  const int64_t log_every = std::max<int64_t>(config_.log_every_steps(), 1);
  // Losses are read back at log intervals (and before evaluations and checkpoints), not per step.
  LossReadback losses(compute_, std::min<int64_t>(log_every, 64) * config_.batch_size());
  auto collect_losses = [&] {
    const LossReadback::Taken t = losses.take(loss_sum);
    if (t.bad_step >= 0)
      fail("training diverged at step ", t.bad_step, ": loss is ", t.bad_loss, " (lower the learning rate?)");
  };
  // Full batches run as one captured graph after an eager one (docs/cuda.md, "Graphs").
  const bool use_graph = graphs_allowed();
  bool warmed_up = false;
  ids_seen_.assign(data_.inputs.size(), 0);
  while (step_ < total && !result.early_stopped) {
    io::Batch batch = pipeline_->next();
    float lr = learning_rate_at(config_.lr_schedule(), config_.optimizer().learning_rate(), step_, total);
    Context ctx{compute_, batch.size, true, config_.seed(), step_, batch.global_offset};
    const bool log_step = (step_ + 1) % log_every == 0 || step_ + 1 == total;
    if (sync_) sync_->begin_step();
    // A batch with more ids than the captured step holds runs eagerly, and is captured again after.
    if (use_graph && batch.size == config_.batch_size() && warmed_up && ids_fit_graph(batch)) {
      losses.add(run_step_graph(batch, doutput), step_, 1.0);
    } else if (batch.size > 0) {
      Tensor label;
      const Tensor& out = model_->forward(ctx, stage_inputs(batch, &label));
      Tensor d = scratch(ctx.stream, doutput, out.shape(), DType::f32);
      losses.add(head_->losses(ctx.stream, out, label, batch.size, &d), step_,
                 static_cast<double>(batch.size) / static_cast<double>(batch.global_size));
      // This rank's share of the global batch's mean loss, and of its gradient: summed over the
      // ranks, they are the global batch's.
      const double share = static_cast<double>(batch.size) / static_cast<double>(batch.global_size);
      if (share != 1.0) kernels::scale_inplace<float>(ctx.stream, d.data<float>(), d.numel(), static_cast<float>(share));
      std::function<void(int64_t)> on_final;
      if (sync_) on_final = [this](int64_t offset) { sync_->dense_final_from(offset); };
      model_->backward(ctx, d, on_final);
      staging_->release();
      warmed_up = warmed_up || batch.size == config_.batch_size();
      note_eager_ids(batch);
    } else {
      // A global batch smaller than the rank count leaves this rank without rows this step.
      params.zero_grads();
      for (int h : params.embedding_handles()) params.sparse_grad(h).count = 0;
    }
    if (sync_) sync_->finish_step();
    double grad_norm = optimizer_->step(ctx.stream, lr, log_step);
    ++step_;
    examples += batch.global_size;
    ++loss_count;
    batch_in_epoch_ = batch.index + 1;
    epoch_ = batch.epoch;
    const bool epoch_ended = batch_in_epoch_ == per_epoch;
    if (epoch_ended) {
      batch_in_epoch_ = 0;
      ++epoch_;
    }
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    double eps = secs > 0 ? static_cast<double>(examples) / secs : 0;
    result.examples_per_second = eps;
    if (log_step) {
      collect_losses();
      comm_->all_reduce_sum(&loss_sum, 1);
      double mean_loss = loss_sum / static_cast<double>(loss_count);
      if (is_chief()) {
        events->add_scalar("train/loss", mean_loss, step_);
        events->add_scalar("train/learning_rate", lr, step_);
        events->add_scalar("train/examples_per_sec", eps, step_);
        events->add_scalar("train/grad_norm", grad_norm, step_);
        progress->update(step_, epoch_, mean_loss, lr, eps);
      }
      loss_sum = 0;
      loss_count = 0;
    }
    bool do_eval = data_.has_eval() && ((eval_every > 0 ? step_ % eval_every == 0 : epoch_ended) || step_ == total);
    if (do_eval) {
      collect_losses();  // a diverged run stops before it evaluates or checkpoints
      auto m = evaluate();
      // Evaluation batches may have grown the model's buffers, which frees what a captured step
      // reads: capture again after the next eager full step.
      step_graph_.reset();
      warmed_up = false;  // every rank evaluates its share and gets the same totals
      if (is_chief()) {
        append_tune_metrics(step_, m);
        for (const auto& [k, v] : m) events->add_scalar("eval/" + k, v, step_);
        progress->message(str_cat("eval at step ", step_, " (epoch ", epoch_, "): ", format_metrics(m)));
      }
      result.final_eval = m;
      if (!es.metric().empty()) {
        double v = m.at(es.metric());
        bool higher = metric_higher_is_better(es.metric());
        bool improved = !has_best_ || (higher ? v > best_metric_ + es.min_delta() : v < best_metric_ - es.min_delta());
        if (improved) {
          best_metric_ = v;
          has_best_ = true;
          evals_without_improvement_ = 0;
        } else if (++evals_without_improvement_ >= es.patience()) {
          if (is_chief())
            progress->message(str_cat("early stopping: ", es.metric(), " did not improve for ", es.patience(),
                                      " evaluations (best ", best_metric_, ")"));
          result.early_stopped = true;
        }
      }
    }
    if (checkpoints_.on_cadence(step_, epoch_ended, epoch_) || step_ == total || result.early_stopped) {
      collect_losses();
      if (comm_->size() > 1) check_replicas_agree();
      if (is_chief()) {
        // What was logged up to this step is on disk before a checkpoint says the step is done:
        // a kill between the two would leave a resumed (or finished) run without those points.
        events->flush();
        result.checkpoint = write_checkpoint();
      }
      checkpoints_.restart_timer();
    } else if (is_chief() && checkpoints_.time_due()) {
      collect_losses();
      // Rank 0's clock alone decides, so the other ranks are not asked: agreeing on it would
      // cost a collective every step. The replicas are compared at the cadence and at the end.
      events->flush();
      result.checkpoint = write_checkpoint();
      checkpoints_.restart_timer();
    }
    if (is_chief()) events->flush();
  }
  if (is_chief()) progress->finish();
  if (is_chief() && result.checkpoint.empty()) result.checkpoint = latest_checkpoint(checkpoint_dir());
  result.steps = step_;
  result.epochs_completed = epoch_;
  if (step_ == start_step) result.examples_per_second = 0;
  if (sync_) result.sync = sync_->stats();
  result.graph_steps = step_graph_launches_;
  return result;
}

}  // namespace kiln::models
