#pragma once
// Warm start (docs/warm_start.md): a new training run starts from the weights of an earlier
// model — a checkpoint or an exported servable — after a new analysis, as TF's WarmStartSettings
// with VocabInfo does. Parameters carry over by name; an embedding table's rows follow their
// token, not their index (a token that was id 32 and is now id 56 keeps its learned row), new
// tokens keep their fresh initialisation, tokens that left the vocabulary drop out. Hashed,
// bucketized and crossed features keep their rows when their configuration (and, for a cross,
// its components' ids) is unchanged, and are re-initialised with a warning otherwise; a dense
// parameter whose shape changed (a layer whose input width grew) is re-initialised with a
// warning. Optimizer state is not carried: the run starts at step 0.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "io/checkpoint_file.h"
#include "models/model.h"
#include "proto/model_spec.pb.h"
#include "proto/transform_state.pb.h"

namespace kiln::models {

struct WarmStartSource {
  std::string what;  // "checkpoint PATH (step N)" or "servable DIR (version V, N steps)"
  ModelSpec model;   // its inputs filled in, as trained
  std::optional<TransformState> state;  // tabular models
  io::CheckpointFile weights;           // params/dense, params/state, params/<layer>/<param>
};

// Reads a servable version directory (servable.pbtxt), a checkpoint file, or a training output
// directory / checkpoints directory (its newest checkpoint). Errors name the path.
WarmStartSource load_warm_start(const std::string& path);

// How an embedding table over `feature` maps from the old transform to the new one.
struct RowMap {
  // Per new row, the old row it takes, or -1 (keeps its fresh initialisation). Empty when the
  // table cannot be carried (`reason` says why).
  std::vector<int64_t> old_row;
  std::string reason;
  int64_t moved = 0, kept = 0, fresh = 0, dropped = 0;  // tokens, for the report
};
RowMap embedding_row_map(const TransformState& old_state, const TransformState& new_state, const std::string& feature);

struct WarmStartReport {
  int carried = 0, remapped = 0, reinitialized = 0;
  std::vector<std::string> warnings;  // one per parameter not carried, naming it and why
  std::vector<std::string> notes;     // one per remapped table
};

// Copies into `model` (built from `spec`, initialised) what carries over from `source`; `state`
// is the new run's transform state (tabular models).
WarmStartReport warm_start(Model<float>& model, const ModelSpec& spec, const std::optional<TransformState>& state,
                           const WarmStartSource& source);

// The file beside a checkpoint that holds the transform state it was trained with.
std::string checkpoint_state_file(const std::string& checkpoint_dir, const std::string& fingerprint);

}  // namespace kiln::models
