#include "models/model_weights.h"

#include "core/device_memory.h"
#include "core/error.h"

namespace kiln::models {

void load_model_weights(Model<float>& model, const io::CheckpointFile& weights, const std::string& what) {
  auto& p = model.params();
  auto load = [&](const std::string& name, const Tensor& dst) {
    const Tensor* t = weights.find(name);
    if (!t) fail(what, ": no tensor ", name, " (its weights belong to another model)");
    if (t->shape() != dst.shape() || t->dtype() != dst.dtype())
      fail(what, ": tensor ", name, " has shape ", t->shape().to_string(), ", the model needs ", dst.shape().to_string());
    copy_sync(p.stream(), dst, *t);
  };
  load("params/dense", p.dense_values());
  load("params/state", p.state_values());
  for (int h : p.embedding_handles()) load("params/" + model.param_name(h), p.embedding_table(h));
}

}  // namespace kiln::models
