#pragma once
// A Servable is one exported model version loaded for inference: its manifest (signature,
// transform state, model spec), its weights, and the one Transformer. It is immutable and
// shared by every thread; each executor gets its own ModelRunner (activation buffers).
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/device_graph.h"
#include "core/device_memory.h"
#include "core/tensor.h"
#include "io/checkpoint_file.h"
#include "models/input_staging.h"
#include "models/model.h"
#include "proto/servable.pb.h"
#include "runtime/input_schema.h"
#include "transform/raw_rows.h"
#include "transform/transformer.h"

namespace kiln::runtime {

inline constexpr const char* kManifestFile = "servable.pbtxt";
inline constexpr const char* kWeightsFile = "weights.kckpt";

// What the head's raw output becomes for clients, per example.
struct Predictions {
  int64_t rows = 0;
  // One entry per signature output except "key", in signature order; row-major [rows, width].
  std::vector<std::vector<float>> float_outputs;
  std::vector<std::vector<int64_t>> int_outputs;
  std::vector<std::vector<std::string>> string_outputs;  // "classes": the predicted class's name
  std::vector<int> output_width;
  std::vector<bool> output_is_int;
  std::vector<bool> output_is_string;
};

class Servable;

// Runs the model on batches. Not thread-safe: one per executor thread.
class ModelRunner {
 public:
  // The model's weights go to `device`, where every batch runs (inputs staged by
  // models::InputStaging, the output read back to the host), its GEMMs and convolutions at the
  // precision the version was exported with unless `precision` says otherwise
  // (models::serving_precision).
  //
  // Graphs (`graphs`, on sim and CUDA, for models without IDS inputs, whose embedding lookups
  // read the id count back): a batch runs as one captured forward pass of its batch-size bucket
  // (the next power of two), its rows padded to the bucket. The first batch warms the model up at
  // the largest bucket (max_batch rounded up) so no capture allocates; rows are independent
  // (row-invariant kernels), so padding changes no answer. A batch above max_batch runs eagerly
  // and raises the maximum (the graphs are captured again).
  explicit ModelRunner(const Servable& servable, const Device& device = Device::cpu(),
                       Precision::Kind precision = Precision::DEFAULT, bool graphs = false, int64_t max_batch = 64);
  ~ModelRunner();
  // Raw model output [batch, width] of the concatenated inputs, row-major, on the host; valid
  // until the next run().
  const float* run(const transform::ModelInputs& batch);
  int64_t output_width() const { return width_; }
  MathPrecision precision() const { return compute_.precision(); }
  // Batches run as a captured graph so far, and graphs captured.
  int64_t graph_launches() const { return graph_launches_; }
  int64_t graphs_captured() const { return graphs_captured_; }

 private:
  struct Captured;
  const float* run_graph(const transform::ModelInputs& batch);
  const float* copy_out(const Tensor& out, int64_t rows);
  const Servable& servable_;
  // Declared first: destroyed after the model and the staging that queue work on it.
  std::unique_ptr<DeviceStream> stream_;
  Stream compute_;
  std::unique_ptr<models::InputStaging> staging_;
  std::unique_ptr<models::Model<float>> model_;
  Tensor output_;  // host copy of a device output
  // run()'s per-batch lists, kept so that a batch does not allocate them.
  std::vector<Tensor> host_inputs_;
  std::vector<int64_t> ids_counts_;
  std::vector<models::Value> model_inputs_;
  int64_t width_ = 1;
  bool graphs_ = false;
  int64_t max_bucket_ = 0;                                // 0 until warmed up
  std::map<int64_t, std::unique_ptr<Captured>> captured_;  // by bucket
  int64_t graph_launches_ = 0, graphs_captured_ = 0;
  StreamDrain drain_{stream_};  // last: destroyed first, before the device memory above goes
};

class Servable {
 public:
  // Reads DIR/servable.pbtxt and DIR/weights.kckpt, verifying sizes and checksums; errors name
  // the directory and the file.
  static std::shared_ptr<const Servable> load(const std::string& dir);

  const ServableManifest& manifest() const { return manifest_; }
  const Signature& signature() const { return manifest_.signature(); }
  const std::string& name() const { return manifest_.model_name(); }
  int64_t version() const { return manifest_.version(); }
  const std::string& dir() const { return dir_; }
  bool tabular() const { return transformer_ != nullptr; }
  // The source columns raw rows bind to, in order: the signature inputs, then the key.
  const std::vector<std::string>& columns() const { return columns_; }
  // Elements of one example of a tensor (image) model.
  int64_t tensor_elements() const { return tensor_elements_; }
  // What requests may carry, for the request parsers.
  const InputSchema& schema() const { return schema_; }

  // Raw rows (columns() order) through the recorded transform. Unusable values raise
  // kiln::Error naming the row and feature (a server answers 400).
  transform::ModelInputs prepare(const transform::RawRows& rows) const;
  // Raw pixel values [rows, tensor_elements()] of an image model, scaled as in training.
  transform::ModelInputs prepare_tensor(const std::vector<float>& values, int64_t rows) const;
  transform::ModelInputs prepare_tensor(const float* values, int64_t rows) const;  // rows x tensor_elements()

  // Head outputs from raw model outputs [rows, width].
  Predictions postprocess(const float* raw, int64_t rows, int64_t width) const;
  // A class id's name: the label vocabulary's entry (multiclass), else the id as text.
  std::string class_name(int64_t id) const;

  const io::CheckpointFile& weights() const { return weights_; }

 private:
  Servable() = default;
  std::string dir_;
  ServableManifest manifest_;
  io::CheckpointFile weights_;
  std::unique_ptr<transform::Transformer> transformer_;
  std::vector<std::string> columns_;
  int64_t tensor_elements_ = 0;
  InputSchema schema_;
};

// The numbered version directories under a model's base path (names that are positive integers;
// export staging directories and anything else are skipped), by version. Empty when the path
// does not exist.
std::map<int64_t, std::string> list_versions(const std::string& base_path);
// A version directory as it is, or a base path's newest version (kiln predict, the Python package).
std::string resolve_version_dir(const std::string& path);

// Concatenates prepared requests into one batch (dense rows, then CSR ids with shifted offsets):
// what the model reads; keys, labels and source rows stay with the requests.
transform::ModelInputs concat_inputs(const std::vector<const transform::ModelInputs*>& parts);

// The signature a manifest's model and transform imply (inputs, outputs, key, label).
Signature make_signature(const ModelSpec& model, const TransformState* state, const TensorInput* tensor);

}  // namespace kiln::runtime
