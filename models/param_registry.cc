#include "models/param_registry.h"

#include <cmath>

#include "core/device_memory.h"
#include "core/error.h"
#include "core/philox.h"

namespace kiln::models {

namespace {
// Parameters start on 64-byte boundaries so vector loops over one parameter stay aligned.
int64_t align_elements(int64_t n, size_t elem) {
  int64_t per_line = static_cast<int64_t>(64 / elem);
  return (n + per_line - 1) / per_line * per_line;
}
}  // namespace

template <typename T>
typename ParamRegistry<T>::Handle ParamRegistry<T>::add(const std::string& name, const Shape& shape, ParamKind kind,
                                                        Init init, int64_t fan_in, int64_t fan_out) {
  KILN_CHECK(!allocated_, "parameter ", name, " added after allocation");
  ParamInfo info{name, shape, kind, init, fan_in, fan_out, 0};
  if (kind == ParamKind::dense) {
    info.offset = dense_size_;
    dense_size_ += align_elements(shape.numel(), sizeof(T));
  } else if (kind == ParamKind::state) {
    info.offset = state_size_;
    state_size_ += align_elements(shape.numel(), sizeof(T));
  }
  infos_.push_back(std::move(info));
  return static_cast<Handle>(infos_.size() - 1);
}

template <typename T>
void ParamRegistry<T>::allocate(const Stream& s) {
  KILN_CHECK(!allocated_);
  stream_ = s;
  DType dt = dtype_of<T>::value;
  dense_ = zeros_on(s, Shape{dense_size_}, dt);
  dense_grad_ = zeros_on(s, Shape{dense_size_}, dt);
  state_ = zeros_on(s, Shape{state_size_}, dt);
  tables_.resize(infos_.size());
  sparse_.resize(infos_.size());
  for (size_t i = 0; i < infos_.size(); ++i) {
    if (infos_[i].kind == ParamKind::embedding) tables_[i] = zeros_on(s, infos_[i].shape, dt);
  }
  allocated_ = true;
}

template <typename T>
void ParamRegistry<T>::initialize(uint64_t seed) {
  KILN_CHECK(allocated_);
  for (size_t i = 0; i < infos_.size(); ++i) {
    const ParamInfo& p = infos_[i];
    const Tensor dst = tensor(static_cast<Handle>(i));
    const Tensor host = dst.device().is_cpu() ? dst : Tensor::empty(dst.shape(), dst.dtype());
    T* v = host.template data<T>();
    int64_t n = p.shape.numel();
    // Stream ids start past the ones dropout and shuffling use, so streams never overlap.
    PhiloxGenerator rng(seed, 0x1000000ull + i);
    double fan_in = static_cast<double>(p.fan_in), fan_out = static_cast<double>(p.fan_out);
    for (int64_t j = 0; j < n; ++j) {
      double x = 0;
      switch (p.init) {
        case Init::zeros: x = 0; break;
        case Init::ones: x = 1; break;
        case Init::he_normal: x = rng.normal() * std::sqrt(2.0 / fan_in); break;
        case Init::he_uniform: x = (2.0 * rng.uniform() - 1.0) * std::sqrt(6.0 / fan_in); break;
        case Init::glorot_normal: x = rng.normal() * std::sqrt(2.0 / (fan_in + fan_out)); break;
        case Init::glorot_uniform: x = (2.0 * rng.uniform() - 1.0) * std::sqrt(6.0 / (fan_in + fan_out)); break;
        case Init::embedding_normal: x = rng.normal() / std::sqrt(fan_out); break;
      }
      v[j] = static_cast<T>(x);
    }
    if (!dst.device().is_cpu()) copy_sync(stream_, dst, host);
  }
}

template <typename T>
void ParamRegistry<T>::set_element(Handle h, int64_t i, T v) {
  KILN_CHECK(i >= 0 && i < infos_[h].shape.numel(), "element ", i, " of ", infos_[h].name);
  Tensor host = Tensor::empty(Shape{1}, dtype_of<T>::value);
  host.template data<T>()[0] = v;
  copy_sync(stream_, tensor(h).reshape(Shape{infos_[h].shape.numel()}).view(i, Shape{1}), host);
}

template <typename T>
T* ParamRegistry<T>::value(Handle h) const {
  const ParamInfo& p = infos_[h];
  switch (p.kind) {
    case ParamKind::dense: return dense_.data<T>() + p.offset;
    case ParamKind::state: return state_.data<T>() + p.offset;
    case ParamKind::embedding: return tables_[h].template data<T>();
  }
  return nullptr;
}

template <typename T>
T* ParamRegistry<T>::grad(Handle h) const {
  KILN_CHECK(infos_[h].kind == ParamKind::dense, infos_[h].name, " has no dense gradient");
  return dense_grad_.data<T>() + infos_[h].offset;
}

template <typename T>
Tensor ParamRegistry<T>::tensor(Handle h) const {
  const ParamInfo& p = infos_[h];
  switch (p.kind) {
    case ParamKind::dense: return dense_.view(p.offset, p.shape);
    case ParamKind::state: return state_.view(p.offset, p.shape);
    case ParamKind::embedding: return tables_[h];
  }
  return {};
}

template <typename T>
std::vector<typename ParamRegistry<T>::Handle> ParamRegistry<T>::embedding_handles() const {
  std::vector<Handle> out;
  for (size_t i = 0; i < infos_.size(); ++i)
    if (infos_[i].kind == ParamKind::embedding) out.push_back(static_cast<Handle>(i));
  return out;
}

template <typename T>
int64_t ParamRegistry<T>::total_count() const {
  int64_t n = 0;
  for (const auto& p : infos_)
    if (p.kind != ParamKind::state) n += p.shape.numel();
  return n;
}

template <typename T>
void ParamRegistry<T>::zero_grads() {
  zero_async(stream_, dense_grad_);
  for (auto& s : sparse_) s.count = 0;
}

template class ParamRegistry<float>;
template class ParamRegistry<double>;

}  // namespace kiln::models
