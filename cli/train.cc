// kiln train: runs a TrainConfig to the end (or to early stopping), resuming from the newest
// checkpoint in output_dir when there is one.
#include <algorithm>
#include <cstdio>

#include "cli/run_device.h"
#include "cli/train_config_loader.h"
#include "cli/verbs.h"
#include "core/communicator.h"
#include "models/trainer.h"

namespace kiln::cli {

Action add_train(CLI::App& app) {
  auto* cmd = app.add_subcommand("train", "Train a model from a TrainConfig (protobuf text or JSON)");
  struct Options {
    std::string config;
    std::vector<std::string> overrides;
    std::string warm_start;
  };
  auto opts = std::make_shared<Options>();
  cmd->add_option("--config", opts->config, "TrainConfig file (.pbtxt or .json)")->required();
  cmd->add_option("--set", opts->overrides,
                  "Override a config field: path.to.field=value (repeatable), e.g. --set epochs=3 "
                  "--set model.layers[0].conv2d.filters=16");
  cmd->add_option("--warm_start_from", opts->warm_start,
                  "Start from an earlier model's weights (same as --set warm_start_from=DIR): a training output_dir, a "
                  "checkpoint, or an exported servable version; embedding rows follow their tokens into the new "
                  "vocabulary (docs/warm_start.md)");
  cmd->footer(
      "Writes checkpoints to OUTPUT_DIR/checkpoints (atomic; the last checkpoint.keep_last kept) at the end and every\n"
      "checkpoint.every_steps / every_epochs / every_seconds (default 600 s), TensorBoard scalars to OUTPUT_DIR/events,\n"
      "and resumes from the newest checkpoint unless resume: false.\n"
      "Data-parallel: mpirun -np N kiln train ... (or srun) trains on N ranks, batch_size per rank; see\n"
      "docs/distributed.md.");
  return [opts] {
    std::vector<std::string> overrides = opts->overrides;
    if (!opts->warm_start.empty()) overrides.push_back("warm_start_from=" + opts->warm_start);
    TrainConfig config = load_train_config(opts->config, overrides);
    const Device device = models::configured_device(config.device(), config.device_index(), kTrainDeviceChoice);
    apply_kernel_library(config.kernel_library(), config.kernel_library_overrides());
    models::Trainer trainer(config, /*evaluation_only=*/false, device);
    models::TrainResult r = trainer.run();
    if (world().rank() != 0) return 0;  // rank 0 reports for the job
    if (r.already_done) {
      std::printf("already trained: %s holds the final checkpoint, step %lld (%lld epochs); raise epochs or "
                  "max_steps to train on, or set a new output_dir or resume: false to start afresh\n",
                  config.output_dir().c_str(), static_cast<long long>(r.steps), static_cast<long long>(r.epochs_completed));
      if (!r.checkpoint.empty()) std::printf("checkpoint %s\n", r.checkpoint.c_str());
      return 0;
    }
    std::printf("trained %lld steps (%lld epochs)%s, %.0f examples/s%s\n", static_cast<long long>(r.steps),
                static_cast<long long>(r.epochs_completed), r.early_stopped ? ", stopped early" : "",
                r.examples_per_second,
                r.graph_steps ? str_cat(" (", r.graph_steps, " steps as a captured graph on ", device.to_string(), ")").c_str()
                              : "");
    for (const auto& [k, v] : r.final_eval) std::printf("eval %s %.6f\n", k.c_str(), v);
    if (!r.checkpoint.empty()) std::printf("checkpoint %s\n", r.checkpoint.c_str());
    if (r.ranks > 1 && r.sync.steps > 0) {
      const models::GradientSyncStats& s = r.sync;
      double steps = static_cast<double>(s.steps);
      double hidden = s.comm_seconds > 0 ? 100.0 * (1.0 - s.exposed_seconds / s.comm_seconds) : 0;
      std::printf(
          "data-parallel %d ranks: dense all-reduce %.3f ms/step (%.2f MB, %lld buckets, %lld on the communication "
          "thread), %.3f ms/step of it after backward (%.0f%% overlapped); sparse exchange and state %.3f ms/step "
          "(%.1f KB/step; %lld all-gather, %lld dense, %lld of them on the device)\n",
          r.ranks, 1e3 * s.comm_seconds / steps, s.dense_bytes_per_step / 1e6, static_cast<long long>(s.buckets_per_step),
          static_cast<long long>(s.threaded_buckets),
          1e3 * s.exposed_seconds / steps, std::max(hidden, 0.0), 1e3 * s.sparse_seconds / steps, s.sparse_bytes / steps / 1e3,
          static_cast<long long>(s.sparse_gather_steps), static_cast<long long>(s.sparse_dense_steps),
          static_cast<long long>(s.sparse_device_steps));
    }
    return 0;
  };
}

}  // namespace kiln::cli
