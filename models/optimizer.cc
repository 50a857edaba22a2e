#include "models/optimizer.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numbers>

#include "core/device_memory.h"
#include "core/error.h"
#include "kernels/optimizer.h"
#include "kernels/reduce.h"

namespace kiln::models {

Optimizer::Optimizer(const OptimizerConfig& config, ParamRegistry<float>& params) : config_(config), params_(params) {
  if (config.learning_rate() <= 0) fail("optimizer.learning_rate must be > 0, got ", config.learning_rate());
  if (config.weight_decay() < 0) fail("optimizer.weight_decay must be >= 0");
  if (config.beta1() < 0 || config.beta1() >= 1 || config.beta2() < 0 || config.beta2() >= 1)
    fail("optimizer.beta1 and optimizer.beta2 must be in [0, 1)");
  Shape flat{params.dense_count()};
  const Stream& s = params.stream();
  slot1_ = zeros_on(s, flat, DType::f32);
  if (config.type() != OptimizerConfig::SGD) slot2_ = zeros_on(s, flat, DType::f32);
  for (int h : params.embedding_handles()) {
    TableState t{h, zeros_on(s, params.info(h).shape, DType::f32), {}};
    if (config.sparse_type() == OptimizerConfig::SPARSE_ADAM) t.slot2 = zeros_on(s, params.info(h).shape, DType::f32);
    tables_.push_back(std::move(t));
  }
}

namespace {

// The rows of a sparse gradient: its count, read back from the device where a captured step left
// it there (a synchronization, for the norm only: the update reads it on the device).
int64_t host_count(const Stream& s, const SparseGrad<float>& sg) {
  if (sg.count != SparseGrad<float>::kOnDevice) return sg.count;
  return to_host(s, sg.device_count).data<int64_t>()[0];
}

}  // namespace

double Optimizer::step(const Stream& s, float lr, bool want_norm) {
  ++steps_;
  int64_t n = params_.dense_count();
  float* p = params_.dense_values().data<float>();
  float* g = params_.dense_grads().data<float>();
  double norm = std::numeric_limits<double>::quiet_NaN();
  if (want_norm || config_.clip_global_norm() > 0) {
    double sumsq = kernels::sum_squares<float>(s, g, n);
    for (const TableState& t : tables_) {
      const SparseGrad<float>& sg = params_.sparse_grad(t.handle);
      if (const int64_t count = host_count(s, sg))
        sumsq += kernels::sum_squares<float>(s, sg.rows.data<float>(), count * params_.info(t.handle).shape[1]);
    }
    norm = std::sqrt(sumsq);
  }
  if (config_.clip_global_norm() > 0 && norm > config_.clip_global_norm()) {
    float factor = static_cast<float>(config_.clip_global_norm() / norm);
    kernels::scale_inplace<float>(s, g, n, factor);
    for (const TableState& t : tables_) {
      SparseGrad<float>& sg = params_.sparse_grad(t.handle);
      if (const int64_t count = host_count(s, sg))
        kernels::scale_inplace<float>(s, sg.rows.data<float>(), count * params_.info(t.handle).shape[1], factor);
    }
  }
  kernels::AdamHyper adam;
  adam.lr = lr;
  adam.beta1 = config_.beta1();
  adam.beta2 = config_.beta2();
  adam.eps = config_.epsilon();
  adam.weight_decay = config_.weight_decay();
  adam.decoupled_weight_decay = config_.type() == OptimizerConfig::ADAMW;
  adam.step = steps_;
  if (config_.type() == OptimizerConfig::SGD) {
    kernels::SgdHyper sgd{lr, config_.momentum(), config_.weight_decay(), config_.nesterov()};
    kernels::sgd_update<float>(s, n, p, g, slot1_.data<float>(), sgd);
  } else {
    kernels::adam_update<float>(s, n, p, g, slot1_.data<float>(), slot2_.data<float>(), adam);
  }
  for (TableState& t : tables_) {
    const SparseGrad<float>& sg = params_.sparse_grad(t.handle);
    if (!sg.count) continue;
    // A count left on the device: the update reads it there, launched for the capacity.
    const bool on_device = sg.count == SparseGrad<float>::kOnDevice;
    const int64_t count = on_device ? sg.capacity : sg.count;
    const int64_t* device_count = on_device ? sg.device_count.data<int64_t>() : nullptr;
    int64_t dim = params_.info(t.handle).shape[1];
    float* table = params_.value(t.handle);
    if (config_.sparse_type() == OptimizerConfig::SPARSE_ADAGRAD)
      kernels::sparse_adagrad_update<float>(s, dim, table, t.slot1.data<float>(), sg.unique_ids.data<int64_t>(), count,
                                            sg.rows.data<float>(), lr, 1e-10f, device_count);
    else
      kernels::sparse_adam_update<float>(s, dim, table, t.slot1.data<float>(), t.slot2.data<float>(),
                                         sg.unique_ids.data<int64_t>(), count, sg.rows.data<float>(), adam,
                                         device_count);
  }
  return norm;
}

std::vector<io::NamedTensor> Optimizer::state() const {
  std::vector<io::NamedTensor> out;
  Tensor steps = Tensor::empty(Shape{1}, DType::i64);
  steps.data<int64_t>()[0] = steps_;
  out.push_back({"optimizer/steps", steps});
  out.push_back({"optimizer/slot1", slot1_});
  if (slot2_.defined()) out.push_back({"optimizer/slot2", slot2_});
  for (const TableState& t : tables_) {
    std::string base = str_cat("optimizer/table", t.handle);
    out.push_back({base + "/slot1", t.slot1});
    if (t.slot2.defined()) out.push_back({base + "/slot2", t.slot2});
  }
  return out;
}

namespace {
void load_into(const Stream& s, const io::CheckpointFile& file, const std::string& name, const Tensor& dst) {
  const Tensor* src = file.find(name);
  if (!src) fail("checkpoint lacks ", name, " (was it written with another optimizer?)");
  if (src->shape() != dst.shape() || src->dtype() != dst.dtype())
    fail("checkpoint tensor ", name, " has shape ", src->shape().to_string(), ", expected ", dst.shape().to_string());
  copy_sync(s, dst, *src);
}
}  // namespace

void Optimizer::load_state(const io::CheckpointFile& file) {
  const Tensor* steps = file.find("optimizer/steps");
  if (!steps) fail("checkpoint lacks optimizer/steps");
  steps_ = steps->data<int64_t>()[0];
  load_into(params_.stream(), file, "optimizer/slot1", slot1_);
  if (slot2_.defined()) load_into(params_.stream(), file, "optimizer/slot2", slot2_);
  for (TableState& t : tables_) {
    std::string base = str_cat("optimizer/table", t.handle);
    load_into(params_.stream(), file, base + "/slot1", t.slot1);
    if (t.slot2.defined()) load_into(params_.stream(), file, base + "/slot2", t.slot2);
  }
}

float learning_rate_at(const LrSchedule& schedule, float base_lr, int64_t step, int64_t total_steps) {
  if (schedule.warmup_steps() > 0 && step < schedule.warmup_steps())
    return base_lr * static_cast<float>(step + 1) / static_cast<float>(schedule.warmup_steps());
  switch (schedule.type()) {
    case LrSchedule::CONSTANT: return base_lr;
    case LrSchedule::STEP: {
      int64_t size = std::max<int64_t>(schedule.step_size(), 1);
      return base_lr * std::pow(schedule.gamma(), static_cast<float>(step / size));
    }
    case LrSchedule::COSINE: {
      // Reaches min_lr at the last step, total_steps - 1.
      int64_t span = std::max<int64_t>(total_steps - 1 - schedule.warmup_steps(), 1);
      double t = std::min(1.0, static_cast<double>(step - schedule.warmup_steps()) / static_cast<double>(span));
      double cos = 0.5 * (1.0 + std::cos(std::numbers::pi * t));
      return static_cast<float>(schedule.min_lr() + (base_lr - schedule.min_lr()) * cos);
    }
  }
  return base_lr;
}

}  // namespace kiln::models
