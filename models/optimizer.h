#pragma once
// The optimizer: one fused pass over the flat dense parameters (SGD, Adam or AdamW) and
// row-sparse updates of embedding tables (Adam or Adagrad), after optional global-norm clipping
// over all gradients.
#include <cstdint>
#include <string>
#include <vector>

#include "core/stream.h"
#include "io/checkpoint_file.h"
#include "models/param_registry.h"
#include "proto/train_config.pb.h"

namespace kiln::models {

class Optimizer {
 public:
  Optimizer(const OptimizerConfig& config, ParamRegistry<float>& params);
  // One update with learning rate `lr`, queued on s (the parameters' stream). Returns the global
  // gradient norm before clipping when clipping is on or `want_norm` (reading it back waits for
  // the stream), else NaN.
  double step(const Stream& s, float lr, bool want_norm = true);
  int64_t steps() const { return steps_; }
  void set_steps(int64_t steps) { steps_ = steps; }  // data-parallel ranks take rank 0's

  // Optimizer state for checkpoints, named "optimizer/..." (on the parameters' device except
  // optimizer/steps, a host tensor).
  std::vector<io::NamedTensor> state() const;
  void load_state(const io::CheckpointFile& file);

 private:
  OptimizerConfig config_;
  ParamRegistry<float>& params_;
  int64_t steps_ = 0;
  Tensor slot1_, slot2_;  // SGD velocity, or Adam m and v, over the flat dense buffer
  struct TableState {
    int handle;
    Tensor slot1, slot2;  // Adagrad accumulator, or Adam m and v
  };
  std::vector<TableState> tables_;
};

// Learning rate at `step` (0-based) of a run of `total_steps`.
float learning_rate_at(const LrSchedule& schedule, float base_lr, int64_t step, int64_t total_steps);

}  // namespace kiln::models
