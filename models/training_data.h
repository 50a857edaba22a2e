#pragma once
// The examples a TrainConfig's data section names, as ExampleSources for the input pipeline,
// and how batch tensors map to model inputs.
#include <memory>
#include <optional>

#include "io/input_pipeline.h"
#include "models/csv_stream.h"
#include "models/shard_stream.h"
#include "proto/train_config.pb.h"
#include "proto/transform_state.pb.h"

namespace kiln::models {

struct InputBinding {
  int data = 0;      // batch tensor holding the input's values (or ids)
  int offsets = -1;  // batch tensor holding an IDS input's offsets
};

struct TrainingData {
  std::shared_ptr<const io::ExampleSource> train;
  std::shared_ptr<const io::ExampleSource> eval;  // null when the config names no eval data
  // Example shards streamed instead of held (data.csv.reading): this rank's blocks; the split's
  // ExampleSource above is null then.
  std::shared_ptr<const ShardTable> train_stream, eval_stream;
  std::shared_ptr<const CsvStreamSource> train_csv_stream;  // training CSV streamed
  std::vector<InputBinding> inputs;               // per model input, in ModelSpec order
  int label = 0;                                  // batch tensor holding the label
  std::vector<InputSpec> model_inputs;            // what the data provides (fills empty model.inputs)
  std::optional<TransformState> transform_state;  // CSV data only

  bool has_eval() const { return eval || eval_stream; }
};

// Loads the data and checks it against the model's inputs; errors name the config field.
// For CSV data the transform state is read from its file, or analyzed (need_train) and written.
TrainingData load_training_data(const TrainConfig& config, bool need_train);

// Fills an empty model.inputs with what the data provides, or checks the declared ones against
// it, and orders data.inputs to follow model.inputs.
void bind_model_inputs(TrainingData& data, ModelSpec& model);

// The transform state file of a CSV TrainConfig.
std::string transform_state_path(const TrainConfig& config);

}  // namespace kiln::models
