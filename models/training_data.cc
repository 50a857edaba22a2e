#include "models/training_data.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "core/error.h"
#include "core/communicator.h"
#include "core/stream.h"
#include "io/atomic_file.h"
#include "io/config_file.h"
#include "io/file_pattern.h"
#include "io/idx.h"
#include "models/transformed_source.h"
#include "transform/csv_rows.h"
#include "transform/dataset_analysis.h"
#include "transform/example_shard_writing.h"
#include "transform/transformer.h"

#include <google/protobuf/text_format.h>
#include <google/protobuf/util/message_differencer.h>

namespace kiln::models {

namespace {

void require_file(const std::string& field, const std::string& path) {
  if (path.empty()) fail(field, " is not set");
  if (!std::filesystem::is_regular_file(path)) fail(field, ": file not found: ", path);
}

std::shared_ptr<const io::ExampleSource> idx_source(const IdxData& idx, const std::string& images_field,
                                                    const std::string& images, const std::string& labels_field,
                                                    const std::string& labels, int64_t max_examples,
                                                    const ModelSpec& model) {
  require_file(images_field, images);
  require_file(labels_field, labels);
  io::ImageDataset ds = io::read_idx_dataset(images, labels);
  Tensor x = ds.images, y = ds.labels;
  if (max_examples > 0 && max_examples < x.dim(0)) {
    x = x.slice_rows(0, max_examples);
    y = y.slice_rows(0, max_examples);
  }
  // IDX images are [n, h, w] or [n, h, w, 1]; the model sees [h, w, 1].
  Shape per_example = x.shape().drop_batch();
  if (per_example.rank() == 2) per_example = Shape{per_example[0], per_example[1], 1};
  x = x.reshape(per_example.with_batch(x.dim(0)));
  if (model.inputs_size() != 1 || model.inputs(0).kind() != InputSpec::DENSE)
    fail("model.inputs: IDX image data feeds exactly one DENSE input");
  Shape want(std::vector<int64_t>(model.inputs(0).shape().begin(), model.inputs(0).shape().end()));
  if (want != per_example)
    fail("model.inputs[0].shape is ", want.to_string(), " but ", images_field, " holds images of shape ",
         per_example.to_string());
  std::vector<io::ArraySource::Column> columns;
  columns.push_back({x, true, idx.pixel_scale()});
  columns.push_back({y, false, 1.0f});
  return std::make_shared<io::ArraySource>(std::move(columns));
}

FeatureSpec load_feature_spec(const CsvData& csv) {
  if (csv.has_feature_spec() == !csv.feature_spec_file().empty())
    fail("data.csv: set exactly one of feature_spec and feature_spec_file");
  FeatureSpec spec = csv.feature_spec();
  if (!csv.feature_spec_file().empty()) io::load_config(csv.feature_spec_file(), spec);
  transform::validate_feature_spec(spec);
  return spec;
}

// csv.max_bad_rows is how much bad input a run tolerates, not part of the analysis: a run may
// raise it (to skip a corrupt shard block, say) and keep the state and the shards made with it.
FeatureSpec without_budget(FeatureSpec spec) {
  spec.mutable_csv()->clear_max_bad_rows();
  return spec;
}

TransformState load_or_analyze_state(const TrainConfig& config, const FeatureSpec& spec,
                                     const std::vector<std::string>& train_files, bool may_analyze) {
  std::string path = transform_state_path(config);
  TransformState state;
  if (std::filesystem::exists(path)) {
    io::load_config(path, state);
    if (!google::protobuf::util::MessageDifferencer::Equals(without_budget(state.spec()), without_budget(spec)))
      fail("transform state ", path, " was analyzed with a different feature spec: delete it to analyze again, or set ",
           "data.csv.transform_state");
    return state;
  }
  if (!may_analyze) fail("transform state ", path, " does not exist: train (or run kiln analyze) first");
  transform::AnalysisOptions opts;
  opts.files = train_files;
  opts.threads = config.data().csv().threads() > 0 ? config.data().csv().threads() : cpu_threads();
  // Under mpirun the ranks split the files and merge (the same state as one process); rank 0
  // writes it. Every rank gets the merged state.
  Communicator& comm = world();
  opts.progress = comm.rank() == 0;
  state = transform::analyze_dataset(spec, opts, comm);
  if (comm.rank() != 0) return state;
  std::string text;
  google::protobuf::TextFormat::PrintToString(state, &text);
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  io::write_file_atomic(path, text);
  return state;
}

// True when `files` are example shards (.kex, from kiln transform), false for CSV; a mix is an
// error.
bool example_shards(const char* split, const std::vector<std::string>& files) {
  size_t shards = 0;
  for (const std::string& f : files) shards += std::filesystem::path(f).extension() == ".kex";
  if (shards != 0 && shards != files.size())
    fail("data.csv.", split, "_files mixes example shards (.kex) and CSV files: give one kind");
  return shards != 0;
}

// Whether a split's files are streamed (data.csv.reading): under AUTO when they total more than
// in_memory_max_mb, always under STREAMING; evaluation CSV is always read into memory.
bool streamed(const CsvData& csv, const char* split, const std::vector<std::string>& files) {
  const bool shards = example_shards(split, files);
  const bool eval_csv = !shards && std::string_view(split) == "eval";
  switch (csv.reading()) {
    case CsvData::IN_MEMORY: return false;
    case CsvData::STREAMING: return !eval_csv;
    default: break;
  }
  if (eval_csv) return false;
  if (csv.in_memory_max_mb() < 0) fail("data.csv.in_memory_max_mb must be 0 or more, got ", csv.in_memory_max_mb());
  uintmax_t bytes = 0;
  for (const std::string& f : files) bytes += std::filesystem::file_size(f);
  return bytes > static_cast<uintmax_t>(csv.in_memory_max_mb()) << 20;
}

void load_csv(const TrainConfig& config, bool need_train, TrainingData& data) {
  const CsvData& csv = config.data().csv();
  FeatureSpec spec = load_feature_spec(csv);
  if (csv.train_files().empty() && need_train) fail("data.csv.train_files is empty");
  std::vector<std::string> train_files, eval_files;
  if (need_train) train_files = io::expand_file_patterns({csv.train_files().begin(), csv.train_files().end()});
  if (!csv.eval_files().empty()) eval_files = io::expand_file_patterns({csv.eval_files().begin(), csv.eval_files().end()});
  // Shards were transformed already: their state must exist (it cannot be analyzed from them).
  const bool train_shards = need_train && example_shards("train", train_files);
  if (train_shards && !std::filesystem::exists(transform_state_path(config)))
    fail("data.csv.train_files are example shards, which need the transform state they were made with: set "
         "data.csv.transform_state to it (", transform_state_path(config), " does not exist)");
  TransformState state = load_or_analyze_state(config, spec, train_files, need_train && !train_shards);
  io::CsvOptions opts = transform::csv_options(spec.csv(), csv.threads() > 0 ? csv.threads() : cpu_threads());
  // Each split that left rows out reports them by reason, with the rows it used (rank 0 under
  // mpirun).
  auto transform = [&](const char* split, const std::vector<std::string>& files) {
    auto budget = std::make_shared<io::ErrorBudget>(spec.csv().max_bad_rows());
    auto source = example_shards(split, files) ? read_example_shards(state, files, *budget)
                                               : transform_csv_files(state, files, opts, budget);
    if (world().rank() == 0 && !budget->left_out().empty())
      std::fprintf(stderr, "%s data: %lld rows used, %s\n", split, static_cast<long long>(source->size()),
                   io::describe_left_out(budget->left_out()).c_str());
    return source;
  };
  auto stream = [&](const std::vector<std::string>& files) {
    auto budget = std::make_shared<io::ErrorBudget>(spec.csv().max_bad_rows());
    return std::make_shared<const ShardTable>(transform::example_shard_schema(state), files, world().rank(),
                                              world().size(), budget);
  };
  if (need_train) {
    if (!streamed(csv, "train", train_files)) {
      data.train = transform("train", train_files);
    } else if (train_shards) {
      data.train_stream = stream(train_files);
    } else {
      auto source = std::make_shared<CsvStreamSource>();
      source->state = state;
      source->files = train_files;
      source->options = opts;
      source->budget = std::make_shared<io::ErrorBudget>(spec.csv().max_bad_rows());
      data.train_csv_stream = source;
    }
  }
  if (!eval_files.empty()) {
    if (streamed(csv, "eval", eval_files))
      data.eval_stream = stream(eval_files);
    else
      data.eval = transform("eval", eval_files);
  }
  data.model_inputs = transform::model_inputs(state);
  int t = 1;
  data.inputs.push_back({0, -1});
  for (size_t i = 1; i < data.model_inputs.size(); ++i, t += 2) data.inputs.push_back({t, t + 1});
  data.label = t;
  data.transform_state = std::move(state);
}

}  // namespace

void bind_model_inputs(TrainingData& data, ModelSpec& model) {
  if (model.inputs().empty())
    for (const InputSpec& in : data.model_inputs) *model.add_inputs() = in;
  std::vector<InputBinding> bound;
  for (const InputSpec& in : model.inputs()) {
    auto it = std::find_if(data.model_inputs.begin(), data.model_inputs.end(),
                           [&](const InputSpec& d) { return d.name() == in.name(); });
    if (it == data.model_inputs.end())
      fail("model.inputs: '", in.name(), "' is not an input the data provides (leave model.inputs empty to take ",
           "them from the transform)");
    bound.push_back(data.inputs[static_cast<size_t>(it - data.model_inputs.begin())]);
  }
  data.inputs = bound;
}

std::string transform_state_path(const TrainConfig& config) {
  const CsvData& csv = config.data().csv();
  if (!csv.transform_state().empty()) return csv.transform_state();
  return (std::filesystem::path(config.output_dir()) / "transform_state.pbtxt").string();
}

TrainingData load_training_data(const TrainConfig& config, bool need_train) {
  TrainingData data;
  const DataConfig& d = config.data();
  switch (d.source_case()) {
    case DataConfig::kCsv: load_csv(config, need_train, data); break;
    case DataConfig::kIdx: {
      const IdxData& idx = d.idx();
      if (need_train)
        data.train = idx_source(idx, "data.idx.train_images", idx.train_images(), "data.idx.train_labels",
                                idx.train_labels(), idx.max_train_examples(), config.model());
      if (!idx.eval_images().empty() || !idx.eval_labels().empty())
        data.eval = idx_source(idx, "data.idx.eval_images", idx.eval_images(), "data.idx.eval_labels",
                               idx.eval_labels(), idx.max_eval_examples(), config.model());
      data.inputs = {{0, -1}};
      data.label = 1;
      data.model_inputs.assign(config.model().inputs().begin(), config.model().inputs().end());
      break;
    }
    case DataConfig::SOURCE_NOT_SET: fail("data: no data source set (data { idx { ... } } or data { csv { ... } })");
  }
  return data;
}

}  // namespace kiln::models
