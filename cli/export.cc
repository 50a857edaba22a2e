// kiln export: a trained checkpoint becomes a servable version directory.
#include <cstdio>
#include <filesystem>

#include "cli/run_device.h"
#include "cli/train_config_loader.h"
#include "cli/verbs.h"
#include "io/config_file.h"
#include "runtime/exporter.h"
#include "runtime/onnx_export.h"
#include "runtime/servable.h"

namespace kiln::cli {

Action add_export(CLI::App& app) {
  auto* cmd = app.add_subcommand("export", "Write a trained model as a servable version for kiln serve and kiln predict");
  cmd->footer(
      "Writes MODEL_BASE_PATH/<version>/ (transform state, model, weights, signature, checksums) atomically, after "
      "checking that sample rows give bit-identical outputs through the training path and the servable. "
      "See docs/serving.md.");
  struct Options {
    std::string config;
    std::vector<std::string> overrides;
    runtime::ExportOptions exp;
    std::string format = "servable";
  };
  auto opts = std::make_shared<Options>();
  cmd->add_option("--config", opts->config, "TrainConfig the model was trained with")->required();
  cmd->add_option("--set", opts->overrides, "Override a config field: path.to.field=value (repeatable)");
  cmd->add_option("--model_base_path", opts->exp.base_path, "Directory of the model's versions, e.g. models/babyweight")
      ->required();
  cmd->add_option("--model_name", opts->exp.name, "Model name (default: the base path's last component)");
  cmd->add_option("--version", opts->exp.version, "Version number, above every number used before (default: the next one)");
  cmd->add_option("--checkpoint", opts->exp.checkpoint, "Checkpoint file (default: newest in OUTPUT_DIR/checkpoints)");
  cmd->add_option("--check_rows", opts->exp.check_rows, "Sample rows for the identity check")->capture_default_str();
  cmd->add_option("--format", opts->format,
                  "servable (default), or onnx: the servable and, in its version directory, model.onnx (the layers "
                  "and the head's output, not the Transformer: Triton's layout; docs/serving.md#onnx)")
      ->check(CLI::IsMember({"servable", "onnx"}));
  return [opts] {
    TrainConfig config = load_train_config(opts->config, opts->overrides);
    opts->exp.device = models::configured_device(config.device(), config.device_index(), kTrainDeviceChoice);
    apply_kernel_library(config.kernel_library(), config.kernel_library_overrides());
    runtime::ExportResult r = runtime::export_servable(config, opts->exp);
    for (const std::string& d : r.removed_staging)
      std::fprintf(stderr, "removed %s: the staging directory of an export whose process is gone\n", d.c_str());
    std::printf("exported %s (version %lld, %lld training steps); identity check: %lld rows bit-identical\n",
                r.dir.c_str(), static_cast<long long>(r.version), static_cast<long long>(r.trained_steps),
                static_cast<long long>(r.checked_rows));
    if (opts->format == "onnx") {
      ServableManifest manifest;
      io::load_config((std::filesystem::path(r.dir) / runtime::kManifestFile).string(), manifest);
      const io::CheckpointFile weights =
          io::read_checkpoint_file((std::filesystem::path(r.dir) / runtime::kWeightsFile).string());
      const std::string onnx = (std::filesystem::path(r.dir) / "model.onnx").string();
      runtime::write_onnx(manifest, weights, onnx);
      std::printf("wrote %s\n", onnx.c_str());
    }
    return 0;
  };
}

}  // namespace kiln::cli
