#pragma once
// Response bodies of the TensorFlow Serving and KServe v2 APIs, built from a servable's
// predictions. Outputs follow the signature: predictions (regression), logistic + class_ids +
// classes (binary), probabilities + class_ids + classes (multiclass), and key when the model has a
// key column and the request sent keys: `keys` is empty when it sent none, and no "key" output
// appears then.
#include <string>
#include <vector>

#include "runtime/kserve_request.h"
#include "runtime/servable.h"

namespace kiln::runtime {

// Row format: {"predictions": [...]} — one value per example when the signature has one output,
// else one object per example. Columnar: {"outputs": ...} likewise.
std::string tf_predict_response(const Signature& sig, const Predictions& p, const std::vector<std::string>& keys,
                                bool columnar);
// One JSON object per example and line, {"<output>": value, ...}, for `kiln predict`.
std::string jsonl_predictions(const Signature& sig, const Predictions& p, const std::vector<std::string>& keys);
// {"result": [[["label", score], ...], ...]}; labels from the training label vocabulary.
std::string tf_classify_response(const Servable& s, const Predictions& p);
// {"result": [value, ...]}
std::string tf_regress_response(const Servable& s, const Predictions& p);

struct HttpBody {
  std::string body;
  size_t json_size = 0;  // > 0: binary data follows the JSON header (Inference-Header-Content-Length)
};
// Fails (kiln::Error) when an output the request names does not exist.
HttpBody kserve_infer_response(const std::string& model_name, const Servable& s, const KserveResponseSpec& req,
                               const Predictions& p, const std::vector<std::string>& keys);

}  // namespace kiln::runtime
