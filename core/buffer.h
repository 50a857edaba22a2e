#pragma once
#include <cstddef>
#include <memory>

#include "core/allocator.h"

namespace kiln {

// A block of device memory owned by one allocator; shared by the tensors that view it.
class Buffer {
 public:
  Buffer(Allocator& allocator, size_t bytes)
      : allocator_(&allocator), bytes_(bytes), data_(allocator.allocate(bytes)) {}
  ~Buffer() { allocator_->deallocate(data_, bytes_); }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;

  void* data() const { return data_; }
  size_t bytes() const { return bytes_; }
  Device device() const { return allocator_->device(); }

 private:
  Allocator* allocator_;
  size_t bytes_;
  void* data_;
};

}  // namespace kiln
