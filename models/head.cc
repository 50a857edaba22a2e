#include "models/head.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/device_memory.h"
#include "core/error.h"
#include "kernels/loss.h"
#include "kernels/reduce.h"
#include "models/layers/layers.h"

namespace kiln::models {

template <typename T>
Head<T>::Head(const HeadSpec& spec, const Shape& output_shape) : spec_(spec) {
  if (output_shape.rank() != 1) fail("the head needs a flat model output, got ", output_shape.to_string());
  if (spec.type() == HeadSpec::MULTICLASS) {
    if (spec.num_classes() < 2) fail("model.head.num_classes must be >= 2 for MULTICLASS, got ", spec.num_classes());
    if (output_shape[0] != spec.num_classes())
      fail("model output has ", output_shape[0], " units but model.head.num_classes is ", spec.num_classes());
    classes_ = spec.num_classes();
  } else if (output_shape[0] != 1) {
    fail("a ", spec.type() == HeadSpec::BINARY ? "BINARY" : "REGRESSION", " head needs 1 output unit, got ",
         output_shape[0]);
  }
  if (spec.type() == HeadSpec::REGRESSION && spec.regression_loss() == HeadSpec::HUBER && spec.huber_delta() <= 0)
    fail("model.head.huber_delta must be > 0");
}

template <typename T>
DType Head<T>::label_dtype() const {
  return spec_.type() == HeadSpec::MULTICLASS ? DType::i32 : dtype_of<T>::value;
}

template <typename T>
Tensor Head<T>::losses(const Stream& s, const Tensor& output, const Tensor& labels, int64_t batch, Tensor* doutput) {
  Tensor losses = scratch(s, losses_, Shape{batch}, dtype_of<T>::value);
  const T* out = output.template data<T>();
  T* l = losses.template data<T>();
  T scale = static_cast<T>(1.0 / static_cast<double>(batch));
  T* d = doutput ? doutput->template data<T>() : nullptr;
  switch (spec_.type()) {
    case HeadSpec::MULTICLASS: {
      const int32_t* y = labels.template data<int32_t>();
      Tensor probs = scratch(s, probs_, Shape{batch, classes_}, dtype_of<T>::value);
      kernels::softmax_cross_entropy_forward<T>(s, out, y, batch, classes_, probs.template data<T>(), l);
      if (d) kernels::softmax_cross_entropy_backward<T>(s, probs.template data<T>(), y, batch, classes_, scale, d);
      break;
    }
    case HeadSpec::BINARY: {
      const T* y = labels.template data<T>();
      kernels::logistic_forward<T>(s, out, y, batch, l);
      if (d) kernels::logistic_backward<T>(s, out, y, batch, scale, d);
      break;
    }
    case HeadSpec::REGRESSION: {
      const T* y = labels.template data<T>();
      if (spec_.regression_loss() == HeadSpec::HUBER) {
        T delta = static_cast<T>(spec_.huber_delta());
        kernels::huber_forward<T>(s, out, y, batch, delta, l);
        if (d) kernels::huber_backward<T>(s, out, y, batch, delta, scale, d);
      } else {
        kernels::mse_forward<T>(s, out, y, batch, l);
        if (d) kernels::mse_backward<T>(s, out, y, batch, scale, d);
      }
      break;
    }
  }
  return losses;
}

template <typename T>
double Head<T>::loss(const Stream& s, const Tensor& output, const Tensor& labels, int64_t batch, Tensor* doutput) {
  return mean_loss(to_host(s, losses(s, output, labels, batch, doutput)));
}

double mean_loss(const Tensor& host_losses) {
  double sum = 0;
  const int64_t n = host_losses.numel();
  if (host_losses.dtype() == DType::f64) {
    const double* l = host_losses.data<double>();
    for (int64_t i = 0; i < n; ++i) sum += l[i];
  } else {
    const float* l = host_losses.data<float>();
    for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(l[i]);
  }
  return sum / static_cast<double>(n);
}

template <typename T>
void MetricAccumulator<T>::add(const Stream& s, const Tensor& output, const Tensor& labels, int64_t batch,
                               double mean_loss) {
  loss_sum_ += mean_loss * static_cast<double>(batch);
  count_ += batch;
  const T* out = output.template data<T>();
  switch (spec_.type()) {
    case HeadSpec::MULTICLASS:
      correct_ += kernels::count_argmax_matches<T>(s, out, labels.template data<int32_t>(), batch, spec_.num_classes());
      break;
    case HeadSpec::BINARY: {
      const T* y = labels.template data<T>();
      for (int64_t i = 0; i < batch; ++i) {
        int label = y[i] > static_cast<T>(0.5) ? 1 : 0;
        correct_ += (out[i] > 0) == (label == 1);
        scores_.emplace_back(static_cast<double>(out[i]), label);
      }
      break;
    }
    case HeadSpec::REGRESSION: {
      const T* y = labels.template data<T>();
      for (int64_t i = 0; i < batch; ++i) {
        double e = static_cast<double>(out[i]) - static_cast<double>(y[i]);
        abs_err_ += std::abs(e);
        sq_err_ += e * e;
      }
      break;
    }
  }
}

template <typename T>
std::map<std::string, double> MetricAccumulator<T>::result() const {
  std::map<std::string, double> m;
  double n = static_cast<double>(std::max<int64_t>(count_, 1));
  m["loss"] = loss_sum_ / n;
  switch (spec_.type()) {
    case HeadSpec::MULTICLASS: m["accuracy"] = static_cast<double>(correct_) / n; break;
    case HeadSpec::BINARY:
      m["accuracy"] = static_cast<double>(correct_) / n;
      m["auc"] = roc_auc(scores_);
      break;
    case HeadSpec::REGRESSION:
      m["rmse"] = std::sqrt(sq_err_ / n);
      m["mae"] = abs_err_ / n;
      break;
  }
  return m;
}

template <typename T>
void MetricAccumulator<T>::reduce(Communicator& comm) {
  if (comm.size() == 1) return;
  double sums[3] = {loss_sum_, abs_err_, sq_err_};
  int64_t counts[2] = {count_, correct_};
  comm.all_reduce_sum(sums, 3);
  comm.all_reduce_sum(counts, 2);
  loss_sum_ = sums[0], abs_err_ = sums[1], sq_err_ = sums[2];
  count_ = counts[0], correct_ = counts[1];
  if (spec_.type() != HeadSpec::BINARY) return;
  // AUC needs every score: gather them, in rank order.
  std::string mine(reinterpret_cast<const char*>(scores_.data()), scores_.size() * sizeof(scores_[0]));
  std::vector<std::string> all = comm.all_gather(mine);
  scores_.clear();
  for (const std::string& bytes : all) {
    size_t n = bytes.size() / sizeof(scores_[0]);
    size_t at = scores_.size();
    scores_.resize(at + n);
    std::memcpy(static_cast<void*>(scores_.data() + at), bytes.data(), n * sizeof(scores_[0]));
  }
}

bool metric_higher_is_better(const std::string& metric) { return metric == "accuracy" || metric == "auc"; }

double roc_auc(std::vector<std::pair<double, int>> scores) {
  std::sort(scores.begin(), scores.end());
  double pos = 0, neg = 0, rank_sum = 0;
  // Average ranks over tied scores.
  for (size_t i = 0; i < scores.size();) {
    size_t j = i;
    while (j < scores.size() && scores[j].first == scores[i].first) ++j;
    double avg_rank = (static_cast<double>(i) + static_cast<double>(j - 1)) / 2.0 + 1.0;
    for (size_t k = i; k < j; ++k) {
      if (scores[k].second) {
        rank_sum += avg_rank;
        pos += 1;
      } else {
        neg += 1;
      }
    }
    i = j;
  }
  if (pos == 0 || neg == 0) return 0.5;
  return (rank_sum - pos * (pos + 1) / 2.0) / (pos * neg);
}

template class Head<float>;
template class Head<double>;
template class MetricAccumulator<float>;
template class MetricAccumulator<double>;

}  // namespace kiln::models
