#pragma once
#include <algorithm>
#include <array>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>
#include <vector>

#include "core/error.h"

namespace kiln {

// Dimensions of a tensor, outermost first (row-major). NHWC for images. Held inline, up to
// kMaxRank dimensions: tensors, views and batch shapes are made per request and per layer, and a
// heap-allocated vector made them one of the server's largest sources of allocations.
class Shape {
 public:
  static constexpr int kMaxRank = 8;

  Shape() = default;
  Shape(std::initializer_list<int64_t> dims) { assign(dims.begin(), dims.size()); }
  explicit Shape(const std::vector<int64_t>& dims) { assign(dims.data(), dims.size()); }

  int rank() const { return rank_; }
  int64_t operator[](int i) const { return dims_[i < 0 ? i + rank_ : i]; }
  int64_t& operator[](int i) { return dims_[i < 0 ? i + rank_ : i]; }
  int64_t numel() const {
    int64_t n = 1;
    for (int i = 0; i < rank_; ++i) n *= dims_[i];
    return n;
  }
  std::span<const int64_t> dims() const { return {dims_.data(), static_cast<size_t>(rank_)}; }
  // A shape with `batch` prepended: per-example shapes become batch shapes.
  Shape with_batch(int64_t batch) const {
    if (rank_ >= kMaxRank) fail("a batch of ", to_string(), " would have more than ", kMaxRank, " dimensions");
    Shape s;
    s.rank_ = rank_ + 1;
    s.dims_[0] = batch;
    std::copy_n(dims_.begin(), rank_, s.dims_.begin() + 1);
    return s;
  }
  // The shape without its first dimension.
  Shape drop_batch() const {
    Shape s;
    if (rank_ == 0) return s;
    s.rank_ = rank_ - 1;
    std::copy_n(dims_.begin() + 1, s.rank_, s.dims_.begin());
    return s;
  }
  bool operator==(const Shape& o) const {
    return rank_ == o.rank_ && std::equal(dims_.begin(), dims_.begin() + rank_, o.dims_.begin());
  }
  bool operator!=(const Shape& o) const { return !(*this == o); }
  std::string to_string() const {
    std::string s = "[";
    for (int i = 0; i < rank_; ++i) s += (i ? ", " : "") + std::to_string(dims_[i]);
    return s + "]";
  }

 private:
  void assign(const int64_t* d, size_t n) {
    if (n > static_cast<size_t>(kMaxRank)) fail("a tensor of ", n, " dimensions (at most ", kMaxRank, " are supported)");
    std::copy_n(d, n, dims_.begin());
    rank_ = static_cast<int>(n);
  }
  std::array<int64_t, kMaxRank> dims_{};
  int rank_ = 0;
};

}  // namespace kiln
