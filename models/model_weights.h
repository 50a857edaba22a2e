#pragma once
// A model's weights as checkpoints and servables store them: "params/dense" and "params/state"
// (the flat buffers) and "params/<layer>/<param>" for each embedding table.
#include <string>

#include "io/checkpoint_file.h"
#include "models/model.h"

namespace kiln::models {

// Copies `weights` into `model` (any device); a missing tensor or one of another shape is a
// kiln::Error naming `what` (the file) and the tensor.
void load_model_weights(Model<float>& model, const io::CheckpointFile& weights, const std::string& what);

}  // namespace kiln::models
