#pragma once
// Parameters of a model. Dense trainable parameters share one flat buffer, their gradients a
// twin buffer, so the optimizer is one fused pass, clipping is one reduction and a checkpoint is
// a few large writes. Non-trainable state (batch-norm running statistics) has its own buffer.
// Embedding tables are separate tensors with row-sparse gradients. Everything lives on the device
// of the stream given to allocate(); value() and grad() are device pointers for the kernels.
#include <cstdint>
#include <string>
#include <vector>

#include "core/stream.h"
#include "core/tensor.h"

namespace kiln::models {

enum class Init : uint8_t { zeros, ones, he_normal, he_uniform, glorot_normal, glorot_uniform, embedding_normal };

enum class ParamKind : uint8_t { dense, state, embedding };

struct ParamInfo {
  std::string name;
  Shape shape;
  ParamKind kind = ParamKind::dense;
  Init init = Init::zeros;
  int64_t fan_in = 1, fan_out = 1;
  int64_t offset = 0;  // into the flat buffer of its kind (dense and state)
};

// The row-sparse gradient of one embedding table after a backward pass.
template <typename T>
struct SparseGrad {
  // count when it was left on the device: a captured training step cannot read it back.
  static constexpr int64_t kOnDevice = -1;
  Tensor unique_ids;  // i64 [capacity]
  Tensor rows;        // T [capacity, dim]
  int64_t count = 0;  // valid entries, or kOnDevice: then device_count holds it
  // With kOnDevice: i64 [1] on the device (the count), and the rows the backward may have
  // written, which the optimizer's launches are sized for (rows past the count do nothing).
  Tensor device_count;
  int64_t capacity = 0;
};

template <typename T>
class ParamRegistry {
 public:
  using Handle = int;
  Handle add(const std::string& name, const Shape& shape, ParamKind kind, Init init, int64_t fan_in = 1,
             int64_t fan_out = 1);
  // Allocates the buffers on s.device(), zeroed; called once after every layer is built. Later
  // work on them (initialize, zero_grads, set_element) is queued on `s`, which must outlive this.
  void allocate(const Stream& s);
  // Deterministic initialisation from the seed: each parameter draws from its own Philox stream
  // (on the host, then copied to the device: every device starts from the same weights).
  void initialize(uint64_t seed);
  // Sets element i of parameter h (a copy from the host, waited for).
  void set_element(Handle h, int64_t i, T v);
  const Stream& stream() const { return stream_; }

  T* value(Handle h) const;
  T* grad(Handle h) const;  // dense only
  Tensor tensor(Handle h) const;
  SparseGrad<T>& sparse_grad(Handle h) { return sparse_[h]; }
  const ParamInfo& info(Handle h) const { return infos_[h]; }
  int size() const { return static_cast<int>(infos_.size()); }

  // Flat buffers.
  const Tensor& dense_values() const { return dense_; }
  const Tensor& dense_grads() const { return dense_grad_; }
  const Tensor& state_values() const { return state_; }
  Tensor embedding_table(Handle h) const { return tables_[h]; }
  std::vector<Handle> embedding_handles() const;
  int64_t dense_count() const { return dense_size_; }
  int64_t total_count() const;

  void zero_grads();

 private:
  std::vector<ParamInfo> infos_;
  int64_t dense_size_ = 0, state_size_ = 0;
  Tensor dense_, dense_grad_, state_;
  std::vector<Tensor> tables_;  // indexed by handle; defined for embedding params
  std::vector<SparseGrad<T>> sparse_;
  bool allocated_ = false;
  Stream stream_;
};

}  // namespace kiln::models
