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

#include "core/error.h"
#include "io/checkpoint_file.h"
#include "io/event_writer.h"
#include "models/layers/layers.h"
#include "models/progress.h"
#include "proto/checkpoint.pb.h"

namespace kiln::models {

namespace fs = std::filesystem;

namespace {

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

void copy_into(const io::CheckpointFile& file, const std::string& name, const Tensor& dst) {
  const Tensor* src = file.find(name);
  if (!src) fail("checkpoint lacks tensor ", name, " (does it belong to another model?)");
  if (src->shape() != dst.shape() || src->dtype() != dst.dtype())
    fail("checkpoint tensor ", name, " has shape ", src->shape().to_string(), ", the model needs ",
         dst.shape().to_string());
  std::memcpy(dst.raw(), src->raw(), dst.bytes());
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

// The head must fit the label the feature spec produces.
void check_label_type(const TransformState& state, const HeadSpec& head) {
  const LabelSpec& label = state.spec().label();
  HeadSpec::Type want = label.type() == LabelSpec::MULTICLASS ? HeadSpec::MULTICLASS
                        : label.type() == LabelSpec::BINARY   ? HeadSpec::BINARY
                                                              : HeadSpec::REGRESSION;
  if (head.type() != want)
    fail("model.head.type is ", HeadSpec::Type_Name(head.type()), " but feature_spec.label.type is ",
         LabelSpec::Type_Name(label.type()));
  int64_t classes = state.label().categorical().vocabulary_size();
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

}  // namespace

std::string latest_checkpoint(const std::string& dir) {
  auto all = list_checkpoints(dir);
  return all.empty() ? "" : all.back().second;
}

Trainer::Trainer(const TrainConfig& config, bool evaluation_only) : config_(config) {
  if (config.batch_size() <= 0) fail("batch_size must be > 0, got ", config.batch_size());
  if (config.epochs() <= 0 && config.max_steps() <= 0) fail("epochs or max_steps must be > 0");
  if (config.threads() < 0) fail("threads must be >= 0, got ", config.threads());
  if (config.threads() > 0) set_cpu_threads(config.threads());
  if (!config.has_model()) fail("model is not set");
  if (!config.model().has_head()) fail("model.head is not set");
  if (config.data().has_idx() && config.model().head().type() != HeadSpec::MULTICLASS)
    fail("model.head.type: IDX image data has class labels and needs a MULTICLASS head");
  // The model reads what the data provides: its inputs are filled in or checked first.
  data_ = load_training_data(config, !evaluation_only);
  bind_model_inputs(data_, *config_.mutable_model());
  if (data_.transform_state) check_label_type(*data_.transform_state, config_.model().head());
  model_ = std::make_unique<Model<float>>(config_.model());
  head_ = std::make_unique<Head<float>>(config_.model().head(), model_->output_shape());
  const EarlyStopping& es = config.early_stopping();
  if (!es.metric().empty()) {
    static const std::vector<std::string> known{"loss", "accuracy", "auc", "rmse", "mae"};
    if (std::find(known.begin(), known.end(), es.metric()) == known.end())
      fail("early_stopping.metric: unknown metric '", es.metric(), "' (loss, accuracy, auc, rmse or mae)");
  }
  if (!es.metric().empty() && !data_.eval) fail("early_stopping needs eval data");
  model_->initialize(config.seed());
  // A regression output starts at the label's mean (from the analysis) instead of 0, so the
  // first epochs are not spent learning the offset.
  if (data_.transform_state && config_.model().head().type() == HeadSpec::REGRESSION &&
      data_.transform_state->label().has_numeric()) {
    int bias = model_->find_param(model_->output_name() + "/bias");
    if (bias >= 0) model_->params().value(bias)[0] = static_cast<float>(data_.transform_state->label().numeric().mean());
  }
  optimizer_ = std::make_unique<Optimizer>(config.optimizer(), model_->params());
  if (evaluation_only) return;
  io::PipelineOptions opts;
  opts.batch_size = config.batch_size();
  opts.shuffle = config.shuffle();
  opts.seed = config.seed();
  pipeline_ = std::make_unique<io::InputPipeline>(data_.train, opts);
}

Trainer::~Trainer() = default;

std::vector<Value> Trainer::bind_inputs(const io::Batch& batch) const {
  std::vector<Value> inputs;
  for (const InputBinding& b : data_.inputs)
    inputs.push_back({batch.tensors[b.data], b.offsets >= 0 ? batch.tensors[b.offsets] : Tensor()});
  return inputs;
}

std::string Trainer::checkpoint_dir() const { return (fs::path(config_.output_dir()) / "checkpoints").string(); }

std::string Trainer::write_checkpoint() {
  fs::create_directories(checkpoint_dir());
  CheckpointMeta meta;
  meta.set_step(step_);
  meta.set_epoch(epoch_);
  meta.set_batch_in_epoch(batch_in_epoch_);
  meta.set_evals_without_improvement(evals_without_improvement_);
  if (has_best_) meta.set_best_metric(best_metric_);
  std::vector<io::NamedTensor> tensors;
  auto& p = model_->params();
  tensors.push_back({"params/dense", p.dense_values()});
  tensors.push_back({"params/state", p.state_values()});
  for (int h : p.embedding_handles()) tensors.push_back({"params/" + model_->param_name(h), p.embedding_table(h)});
  for (auto& t : optimizer_->state()) tensors.push_back(std::move(t));
  char name[64];
  std::snprintf(name, sizeof name, "%s%010lld%s", kCheckpointPrefix, static_cast<long long>(step_), kCheckpointSuffix);
  std::string path = (fs::path(checkpoint_dir()) / name).string();
  io::write_checkpoint_file(path, meta.SerializeAsString(), tensors);
  prune_checkpoints();
  return path;
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

bool Trainer::restore(const std::string& path_in) {
  std::string path = path_in.empty() ? latest_checkpoint(checkpoint_dir()) : path_in;
  if (path.empty()) return false;
  io::CheckpointFile file = io::read_checkpoint_file(path);
  CheckpointMeta meta;
  if (!meta.ParseFromString(file.metadata)) fail("checkpoint ", path, ": unreadable metadata");
  auto& p = model_->params();
  copy_into(file, "params/dense", p.dense_values());
  copy_into(file, "params/state", p.state_values());
  for (int h : p.embedding_handles()) copy_into(file, "params/" + model_->param_name(h), p.embedding_table(h));
  optimizer_->load_state(file);
  step_ = meta.step();
  epoch_ = meta.epoch();
  batch_in_epoch_ = meta.batch_in_epoch();
  evals_without_improvement_ = meta.evals_without_improvement();
  best_metric_ = meta.best_metric();
  has_best_ = meta.has_best_metric();
  return true;
}

std::map<std::string, double> Trainer::evaluate() {
  if (!data_.eval) fail("no eval data configured (data.idx.eval_images / eval_labels)");
  io::PipelineOptions opts;
  opts.batch_size = std::max<int64_t>(config_.batch_size(), 256);
  opts.shuffle = false;
  io::InputPipeline eval(data_.eval, opts);
  MetricAccumulator<float> acc(config_.model().head());
  int64_t batches = eval.batches_per_epoch();
  for (int64_t i = 0; i < batches; ++i) {
    io::Batch b = eval.next();
    Context ctx{Stream::cpu(), b.size, false, config_.seed(), step_};
    const Tensor& out = model_->forward(ctx, bind_inputs(b));
    const Tensor& label = b.tensors[data_.label];
    double loss = head_->loss(ctx.stream, out, label, b.size, nullptr);
    acc.add(ctx.stream, out, label, b.size, loss);
  }
  return acc.result();
}

TrainResult Trainer::run() {
  KILN_CHECK(pipeline_, "run() on a Trainer built for evaluation only");
  TrainResult result;
  prune_checkpoints();
  if (config_.resume() && restore()) {
    std::fprintf(stderr, "resumed from %s at step %lld\n", latest_checkpoint(checkpoint_dir()).c_str(),
                 static_cast<long long>(step_));
  }
  int64_t per_epoch = pipeline_->batches_per_epoch();
  int64_t total = config_.max_steps() > 0 ? config_.max_steps() : config_.epochs() * per_epoch;
  int64_t eval_every = config_.eval_every_steps() > 0 ? config_.eval_every_steps() : per_epoch;
  int64_t ckpt_every = config_.checkpoint().every_steps() > 0 ? config_.checkpoint().every_steps() : per_epoch;
  pipeline_->seek(epoch_, batch_in_epoch_);
  io::EventWriter events((fs::path(config_.output_dir()) / "events").string());
  Progress progress(total);
  progress.resume_at(step_);
  const EarlyStopping& es = config_.early_stopping();
  auto start = std::chrono::steady_clock::now();
  int64_t examples = 0, start_step = step_;
  Tensor doutput;
  double loss_sum = 0;
  int64_t loss_count = 0;
  while (step_ < total && !result.early_stopped) {
    io::Batch batch = pipeline_->next();
    float lr = learning_rate_at(config_.lr_schedule(), config_.optimizer().learning_rate(), step_, total);
    Context ctx{Stream::cpu(), batch.size, true, config_.seed(), step_};
    const Tensor& out = model_->forward(ctx, bind_inputs(batch));
    Tensor d = scratch(doutput, out.shape(), DType::f32);
    double loss = head_->loss(ctx.stream, out, batch.tensors[data_.label], batch.size, &d);
    if (!std::isfinite(loss)) fail("training diverged at step ", step_, ": loss is ", loss, " (lower the learning rate?)");
    model_->backward(ctx, d);
    double grad_norm = optimizer_->step(ctx.stream, lr);
    ++step_;
    examples += batch.size;
    loss_sum += loss;
    ++loss_count;
    batch_in_epoch_ = batch.index + 1;
    epoch_ = batch.epoch;
    if (batch_in_epoch_ == per_epoch) {
      batch_in_epoch_ = 0;
      ++epoch_;
    }
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    double eps = secs > 0 ? static_cast<double>(examples) / secs : 0;
    result.examples_per_second = eps;
    if (step_ % std::max<int64_t>(config_.log_every_steps(), 1) == 0 || step_ == total) {
      double mean_loss = loss_sum / static_cast<double>(loss_count);
      events.add_scalar("train/loss", mean_loss, step_);
      events.add_scalar("train/learning_rate", lr, step_);
      events.add_scalar("train/examples_per_sec", eps, step_);
      events.add_scalar("train/grad_norm", grad_norm, step_);
      progress.update(step_, epoch_, mean_loss, lr, eps);
      loss_sum = 0;
      loss_count = 0;
    }
    bool do_eval = data_.eval && (step_ % eval_every == 0 || step_ == total);
    if (do_eval) {
      auto m = evaluate();
      append_tune_metrics(step_, m);
      for (const auto& [k, v] : m) events.add_scalar("eval/" + k, v, step_);
      progress.message(str_cat("eval at step ", step_, " (epoch ", epoch_, "): ", format_metrics(m)));
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
          progress.message(str_cat("early stopping: ", es.metric(), " did not improve for ", es.patience(),
                                   " evaluations (best ", best_metric_, ")"));
          result.early_stopped = true;
        }
      }
    }
    if (step_ % ckpt_every == 0 || step_ == total || result.early_stopped) result.checkpoint = write_checkpoint();
    events.flush();
  }
  progress.finish();
  if (result.checkpoint.empty()) result.checkpoint = latest_checkpoint(checkpoint_dir());
  result.steps = step_;
  result.epochs_completed = epoch_;
  if (step_ == start_step) result.examples_per_second = 0;
  return result;
}

}  // namespace kiln::models
