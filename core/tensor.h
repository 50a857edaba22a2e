#pragma once
// Tensor: a typed, shaped view over a ref-counted Buffer. Copying a Tensor copies the view, not
// the data. No autograd: layers own their backward passes.
#include <cstdint>
#include <cstring>
#include <memory>

#include "core/buffer.h"
#include "core/dtype.h"
#include "core/error.h"
#include "core/shape.h"

namespace kiln {

class Tensor {
 public:
  Tensor() = default;
  Tensor(std::shared_ptr<Buffer> buffer, size_t offset_bytes, Shape shape, DType dtype)
      : buffer_(std::move(buffer)), offset_(offset_bytes), shape_(std::move(shape)), dtype_(dtype) {
    KILN_CHECK(!buffer_ || offset_ + bytes() <= buffer_->bytes(), "view past the end of its buffer");
  }

  // A new, uninitialized tensor on `device`.
  static Tensor empty(const Shape& shape, DType dtype, Device device = Device::cpu());
  // A new CPU tensor filled with zeros.
  static Tensor zeros(const Shape& shape, DType dtype);

  bool defined() const { return buffer_ != nullptr; }
  const Shape& shape() const { return shape_; }
  DType dtype() const { return dtype_; }
  Device device() const { return buffer_ ? buffer_->device() : Device::cpu(); }
  int64_t numel() const { return shape_.numel(); }
  size_t bytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype_); }
  int64_t dim(int i) const { return shape_[i]; }

  void* raw() const { return static_cast<char*>(buffer_->data()) + offset_; }
  template <typename T>
  T* data() const {
    KILN_CHECK(dtype_of<T>::value == dtype_, "tensor is ", dtype_name(dtype_), ", accessed as ",
               dtype_name(dtype_of<T>::value));
    return static_cast<T*>(raw());
  }

  // The same data seen with another shape of equal element count.
  Tensor reshape(const Shape& shape) const;
  // Rows [begin, end) of the outermost dimension, sharing the buffer.
  Tensor slice_rows(int64_t begin, int64_t end) const;
  // A view of `shape` starting `element_offset` elements into this tensor.
  Tensor view(int64_t element_offset, const Shape& shape) const;
  // A deep copy on the CPU.
  Tensor clone() const;
  void fill_zero() const { std::memset(raw(), 0, bytes()); }
  const std::shared_ptr<Buffer>& buffer() const { return buffer_; }

 private:
  std::shared_ptr<Buffer> buffer_;
  size_t offset_ = 0;
  Shape shape_;
  DType dtype_ = DType::f32;
};

}  // namespace kiln
