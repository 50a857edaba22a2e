#pragma once
// `kiln export`: turns a trained checkpoint into a servable version directory,
// BASE/<version>/{servable.pbtxt, weights.kckpt}. The directory is assembled under
// BASE/.tmp-<version>-<pid>, fsynced, checked, and renamed into place, so a server polling BASE
// sees a version either complete or not at all.
//
// Version numbers never repeat: BASE/.kiln_version_high_water holds the highest number taken
// (reserved under a lock on BASE/.kiln_export.lock before the export starts, written
// atomically), so concurrent exports get different numbers and a deleted newest version is not
// reissued. Staging directories of exports whose process is gone are removed and reported.
//
// The identity check loads the staged servable and runs sample rows (the eval data, else the
// training data) through both paths: the training input path (CSV reader -> Transformer with
// labels -> TransformedSource -> InputPipeline -> model) and the servable (raw rows bound by the
// signature -> Servable::prepare -> ModelRunner, in batches of 1, 2, 3, ... rows). The raw model
// outputs must be bit-identical, else nothing is published.
#include <string>
#include <vector>

#include "core/device.h"
#include "proto/train_config.pb.h"

namespace kiln::runtime {

struct ExportOptions {
  std::string base_path;   // models/<name>
  std::string name;        // default: base_path's last component
  int64_t version = 0;     // 0: one more than the highest ever taken in base_path
  std::string checkpoint;  // default: newest in OUTPUT_DIR/checkpoints
  int64_t check_rows = 256;
  int warmup_rows = 8;
  Device device = Device::cpu();  // where both paths of the identity check run
};

struct ExportResult {
  std::string dir;
  int64_t version = 0;
  int64_t checked_rows = 0;
  int64_t trained_steps = 0;
  std::vector<std::string> removed_staging;  // stale .tmp-VERSION-PID directories of dead exports
};

ExportResult export_servable(const TrainConfig& config, const ExportOptions& options);

// Staging directories (BASE/.tmp-VERSION-PID) whose export process is gone: a kill -9 or a full
// disk left them. The next export removes them; the server reports them in its log.
std::vector<std::string> stale_staging_dirs(const std::string& base);

}  // namespace kiln::runtime
