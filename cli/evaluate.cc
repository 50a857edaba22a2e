// kiln evaluate: metrics of a trained checkpoint on the config's eval data.
#include <cstdio>

#include "cli/run_device.h"
#include "cli/train_config_loader.h"
#include "cli/verbs.h"
#include "core/error.h"
#include "models/trainer.h"

namespace kiln::cli {

Action add_evaluate(CLI::App& app) {
  auto* cmd = app.add_subcommand("evaluate", "Evaluate a checkpoint on the eval data of a TrainConfig");
  struct Options {
    std::string config, checkpoint;
    std::vector<std::string> overrides;
  };
  auto opts = std::make_shared<Options>();
  cmd->add_option("--config", opts->config, "TrainConfig file (.pbtxt or .json)")->required();
  cmd->add_option("--set", opts->overrides, "Override a config field: path.to.field=value (repeatable)");
  cmd->add_option("--checkpoint", opts->checkpoint, "Checkpoint file (default: newest in OUTPUT_DIR/checkpoints)");
  return [opts] {
    TrainConfig config = load_train_config(opts->config, opts->overrides);
    const Device device = models::configured_device(config.device(), config.device_index(), kTrainDeviceChoice);
    apply_kernel_library(config.kernel_library(), config.kernel_library_overrides());
    models::Trainer trainer(config, /*evaluation_only=*/true, device);
    if (!trainer.restore(opts->checkpoint))
      fail("no valid checkpoint in ", config.output_dir(), "/checkpoints: train first (kiln train --config ",
           opts->config, ")");
    for (const auto& [k, v] : trainer.evaluate()) std::printf("%s %.6f\n", k.c_str(), v);
    return 0;
  };
}

}  // namespace kiln::cli
