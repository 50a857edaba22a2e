#pragma once
// The examples a TrainConfig's data section names, as ExampleSources for the input pipeline:
// tensors[0..n-1] are the model inputs in ModelSpec order, the last tensor is the label.
#include <memory>

#include "io/input_pipeline.h"
#include "proto/train_config.pb.h"

namespace kiln::models {

struct TrainingData {
  std::shared_ptr<const io::ExampleSource> train;
  std::shared_ptr<const io::ExampleSource> eval;  // null when the config names no eval data
};

// Loads the data and checks it against the model's inputs; errors name the config field.
TrainingData load_training_data(const TrainConfig& config, bool need_train);

}  // namespace kiln::models
