#include "models/loss_readback.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "models/head.h"

namespace kiln::models {

LossReadback::LossReadback(const Stream& s, int64_t capacity)
    : stream_(s), ring_(staging_empty(Shape{std::max<int64_t>(capacity, 1)}, DType::f32, s.device())) {}

void LossReadback::add(const Tensor& losses, int64_t step, double share) {
  const int64_t n = losses.numel();
  if (used_ + n > ring_.numel()) drain();
  if (n > ring_.numel()) ring_ = staging_empty(Shape{n}, DType::f32, stream_.device());
  copy_async(stream_, ring_.view(used_, Shape{n}), losses);
  entries_.push_back({used_, n, step, share});
  used_ += n;
}

void LossReadback::drain() {
  if (entries_.empty()) return;
  stream_.synchronize();
  for (const Entry& e : entries_) {
    const double loss = mean_loss(ring_.view(e.offset, Shape{e.count}));
    if (!std::isfinite(loss) && pending_.bad_step < 0) {
      pending_.bad_step = e.step;
      pending_.bad_loss = loss;
    }
    weighted_.push_back(loss * e.share);
  }
  entries_.clear();
  used_ = 0;
}

LossReadback::Taken LossReadback::take(double& sum) {
  drain();
  for (double w : weighted_) sum += w;
  weighted_.clear();
  Taken out = pending_;
  pending_ = Taken();
  return out;
}

}  // namespace kiln::models
