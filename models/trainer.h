#pragma once
// The Trainer runs a TrainConfig: epochs or steps over a shuffled, prefetched input pipeline,
// learning-rate schedule, periodic evaluation with early stopping, atomic checkpoints with
// resume, progress output and TensorBoard scalars. On the CPU the run is deterministic: the same
// config, seed and thread count give bit-identical weights, also across a kill and resume.
//
// Under mpirun/srun it trains data-parallel (docs/distributed.md): every rank takes its slice of
// each global batch (ranks x batch_size), gradients are summed across ranks (GradientSync),
// weights start from rank 0's, evaluation is split across ranks and reduced, and rank 0 alone
// writes checkpoints, events and progress.
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "core/communicator.h"
#include "core/device_memory.h"
#include "models/checkpoint_schedule.h"
#include "models/gradient_sync.h"
#include "models/head.h"
#include "models/input_staging.h"
#include "models/model.h"
#include "models/optimizer.h"
#include "models/progress.h"
#include "models/training_data.h"
#include "proto/checkpoint.pb.h"
#include "proto/train_config.pb.h"

namespace kiln::models {

struct TrainResult {
  int64_t steps = 0;
  int64_t epochs_completed = 0;
  bool early_stopped = false;
  bool already_done = false;  // resumed at or past the last step: nothing was trained
  std::map<std::string, double> final_eval;  // empty without eval data
  double examples_per_second = 0;  // all ranks together
  std::string checkpoint;  // the last checkpoint written
  int ranks = 1;
  GradientSyncStats sync;  // data-parallel runs only
  int64_t graph_steps = 0;  // steps run as a captured graph
};

class Trainer {
 public:
  // Validates the whole config (model shapes against the data included) before any work.
  // With evaluation_only the training data is not loaded (restore() then evaluate()). The model,
  // its optimizer state and every step run on `device` (the caller chose it from the config's
  // device and device_index: core/device_choice.h); checkpoints are the same bytes on every device.
  explicit Trainer(const TrainConfig& config, bool evaluation_only = false, const Device& device = Device::cpu());
  ~Trainer();
  TrainResult run();
  // Progress goes to `listener` instead of stderr (models/progress.h). Set before run().
  void set_progress_listener(ProgressListener listener) { progress_listener_ = std::move(listener); }
  // Evaluates the current weights on the eval data.
  std::map<std::string, double> evaluate();
  // The model's weights as checkpoints name them ("params/dense", "params/state",
  // "params/<layer>/table"), on the host.
  std::vector<io::NamedTensor> host_weights() const;
  // The model's output for `batch` in inference mode, on the host (the export's identity check).
  Tensor predict(const io::Batch& batch, uint64_t seed);
  // Loads `path`, or else the newest checkpoint of output_dir that reads back intact: a corrupt
  // newer one is renamed NAME.corrupt with a warning on stderr naming it. Returns false when no
  // valid checkpoint exists.
  bool restore(const std::string& path = "");
  // The checkpoint the last successful restore() loaded, and the step it was written at.
  const std::string& restored_checkpoint() const { return restored_; }
  int64_t step() const { return step_; }

  Model<float>& model() { return *model_; }
  // The precision GEMMs and convolutions run at (TrainConfig.precision resolved for the device).
  MathPrecision precision() const { return compute_.precision(); }
  const Device& device() const { return compute_.device(); }
  const TrainingData& data() const { return data_; }

 private:
  std::string checkpoint_dir() const;
  // Starts from TrainConfig.warm_start_from's weights unless the run resumes (models/warm_start.h).
  void apply_warm_start();
  // The model inputs and the label of `batch`, staged on the device (the same tensors on the CPU).
  std::vector<Value> stage_inputs(const io::Batch& batch, Tensor* label);
  // The host tensors stage_inputs stages: per input its data and offsets (or none), then the label.
  std::vector<Tensor> host_inputs(const io::Batch& batch) const;
  // Whether full training steps may run as a captured graph (TrainConfig.graphs, the device, the
  // model and the run allow it), and one such step: forward, loss and backward replayed on this
  // batch's inputs; returns the per-example losses.
  bool graphs_allowed() const;
  Tensor run_step_graph(const io::Batch& batch, Tensor& doutput);
  struct StepGraph;
  // On a device, checks the batch's ids against the embedding tables on the host, before they are
  // staged, so the device lookup need not read anything back; returns whether it did (the CPU's
  // kernels check them themselves).
  bool check_ids(const io::Batch& batch) const;
  // The id count of model input i in `batch` (0 for a dense input).
  int64_t ids_count(const io::Batch& batch, size_t i) const;
  // Whether the batch's id counts fit the captured step's capacities (or, before a capture, what
  // the eager steps sized the buffers for: the capacities a capture gets).
  bool ids_fit_graph(const io::Batch& batch) const;
  // After an eager training step: the most ids seen per input grows; a count above the captured
  // step's capacity drops that graph (the step may have grown the buffers it reads).
  void note_eager_ids(const io::Batch& batch);
  std::string write_checkpoint();
  void load_checkpoint(const io::CheckpointFile& file, const CheckpointMeta& meta, const std::string& path);
  void prune_checkpoints();
  // Every rank takes rank 0's weights, optimizer state and position.
  void broadcast_state();
  // Fails, naming the ranks, when the replicas' weights are not bit-identical.
  void check_replicas_agree();
  bool is_chief() const { return comm_->rank() == 0; }

  TrainConfig config_;
  CheckpointSchedule checkpoints_;
  Communicator* comm_ = nullptr;
  // Declared before everything that queues work on it or holds its memory (destroyed after them).
  std::unique_ptr<DeviceStream> stream_;
  Stream compute_;  // stream_'s view at the configured precision: every op of the model runs on it
  std::unique_ptr<InputStaging> staging_;
  TrainingData data_;
  std::unique_ptr<Model<float>> model_;
  std::unique_ptr<Head<float>> head_;
  std::unique_ptr<Optimizer> optimizer_;
  std::unique_ptr<io::InputPipeline> pipeline_;
  std::string input_layout_;  // streamed training input (CheckpointMeta.input_layout); empty in memory
  std::unique_ptr<GradientSync> sync_;  // data-parallel runs only
  // Position of the next batch and early-stopping state; saved in every checkpoint.
  int64_t step_ = 0, epoch_ = 0, batch_in_epoch_ = 0;
  int64_t evals_without_improvement_ = 0;
  double best_metric_ = 0;
  bool has_best_ = false;
  std::string restored_;
  // What every checkpoint records, made at the first one: the config as recorded and the
  // transform state's fingerprint (empty without a state).
  std::string recorded_config_text_, state_fingerprint_;
  ProgressListener progress_listener_;
  std::unique_ptr<StepGraph> step_graph_;
  int64_t step_graph_launches_ = 0;
  // Per model input: the most ids an eager training step staged (its buffers are sized for them).
  std::vector<int64_t> ids_seen_;
  StreamDrain drain_{stream_};  // last: destroyed first, before the device memory above goes
};

// Newest checkpoint file in `dir` ("" when none).
std::string latest_checkpoint(const std::string& dir);

}  // namespace kiln::models
