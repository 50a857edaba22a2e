#include "core/tensor.h"

namespace kiln {

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
  size_t bytes = static_cast<size_t>(shape.numel()) * dtype_size(dtype);
  auto buffer = std::make_shared<Buffer>(allocator_for(device), bytes);
  return Tensor(std::move(buffer), 0, shape, dtype);
}

Tensor Tensor::zeros(const Shape& shape, DType dtype) {
  Tensor t = empty(shape, dtype);
  t.fill_zero();
  return t;
}

Tensor Tensor::reshape(const Shape& shape) const {
  KILN_CHECK(shape.numel() == numel(), "reshape ", shape_.to_string(), " -> ", shape.to_string());
  return Tensor(buffer_, offset_, shape, dtype_);
}

Tensor Tensor::slice_rows(int64_t begin, int64_t end) const {
  KILN_CHECK(shape_.rank() >= 1 && 0 <= begin && begin <= end && end <= shape_[0]);
  Shape s = shape_;
  s[0] = end - begin;
  size_t row_bytes = static_cast<size_t>(shape_.drop_batch().numel()) * dtype_size(dtype_);
  return Tensor(buffer_, offset_ + static_cast<size_t>(begin) * row_bytes, s, dtype_);
}

Tensor Tensor::view(int64_t element_offset, const Shape& shape) const {
  KILN_CHECK(element_offset >= 0 && element_offset + shape.numel() <= numel());
  return Tensor(buffer_, offset_ + static_cast<size_t>(element_offset) * dtype_size(dtype_), shape, dtype_);
}

Tensor Tensor::clone() const {
  KILN_CHECK(device().is_cpu(), "clone() copies CPU tensors");
  Tensor t = empty(shape_, dtype_);
  std::memcpy(t.raw(), raw(), bytes());
  return t;
}

}  // namespace kiln
