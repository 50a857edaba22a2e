#pragma once
// The head turns the model output into a loss and its gradient, and accumulates evaluation
// metrics. MULTICLASS: softmax cross-entropy, labels i32 [batch], metrics loss and accuracy.
// BINARY: logistic loss on one logit, labels 0/1 as T [batch], metrics loss, accuracy, auc.
// REGRESSION: MSE or Huber on one output, labels T [batch], metrics loss, rmse, mae.
#include <map>
#include <string>
#include <vector>

#include "core/communicator.h"
#include "core/stream.h"
#include "core/tensor.h"
#include "proto/model_spec.pb.h"

namespace kiln::models {

template <typename T>
class Head {
 public:
  // Validates the head against the model's per-example output shape.
  Head(const HeadSpec& spec, const Shape& output_shape);

  // The per-example losses [batch] on s.device() (a view, valid until the next call); writes
  // d(mean loss)/d(output) into doutput when given. Queued on s: nothing waits.
  Tensor losses(const Stream& s, const Tensor& output, const Tensor& labels, int64_t batch, Tensor* doutput);
  // Their mean, read back to the host (waits for s).
  double loss(const Stream& s, const Tensor& output, const Tensor& labels, int64_t batch, Tensor* doutput);

  // The dtype the labels must have.
  DType label_dtype() const;
  const HeadSpec& spec() const { return spec_; }

 private:
  HeadSpec spec_;
  int64_t classes_ = 1;
  Tensor probs_, losses_;
};

// The mean of per-example losses on the host, summed in double in example order.
double mean_loss(const Tensor& host_losses);

// Accumulates predictions over an evaluation pass, from host tensors (to_host of the output).
template <typename T>
class MetricAccumulator {
 public:
  explicit MetricAccumulator(const HeadSpec& spec) : spec_(spec) {}
  void add(const Stream& s, const Tensor& output, const Tensor& labels, int64_t batch, double mean_loss);
  // loss plus the head's metrics.
  std::map<std::string, double> result() const;
  // Combines every rank's accumulator (each evaluated its share of the data); afterwards every
  // rank holds the totals, so every rank's result() is the same.
  void reduce(Communicator& comm);

 private:
  HeadSpec spec_;
  double loss_sum_ = 0, abs_err_ = 0, sq_err_ = 0;
  int64_t count_ = 0, correct_ = 0;
  std::vector<std::pair<double, int>> scores_;  // binary: (logit, label) for AUC
};

// Whether a larger value of `metric` is better (accuracy, auc) or worse (loss, rmse, mae).
bool metric_higher_is_better(const std::string& metric);
// Area under the ROC curve with ties counted half (the Mann-Whitney statistic).
double roc_auc(std::vector<std::pair<double, int>> scores);

}  // namespace kiln::models
