#include "models/example_records.h"

#include <algorithm>
#include <cstring>

#include "core/error.h"

namespace kiln::models {

ExampleRecords::ExampleRecords(const io::ExampleShardSchema& schema)
    : width_(schema.dense_width), features_(schema.ids_features.size()), has_label_(schema.has_label) {}

void ExampleRecords::reserve(int64_t rows, int64_t bytes_per_row) {
  starts_.reserve(static_cast<size_t>(rows));
  if (static_cast<size_t>(rows * bytes_per_row) > capacity_) grow(static_cast<size_t>(rows * bytes_per_row) - used_);
}

void ExampleRecords::grow(size_t bytes) {
  if (used_ + bytes <= capacity_) return;
  const size_t capacity = std::max(used_ + bytes, capacity_ * 3 / 2);
  std::unique_ptr<char[]> more(new char[capacity]);  // uninitialized
  if (used_) std::memcpy(more.get(), bytes_.get(), used_);
  bytes_ = std::move(more);
  capacity_ = capacity;
}

void ExampleRecords::append(const transform::ModelInputs& p, int64_t begin, int64_t end) {
  KILN_CHECK(begin >= 0 && begin <= end && end <= p.batch, "rows ", begin, "..", end, " of a block of ", p.batch);
  KILN_CHECK(p.dense.dim(1) == width_ && p.ids.size() == features_, "a block that does not fit the schema");
  // Sizes first, so the bytes grow once.
  size_t total = 0;
  for (int64_t r = begin; r < end; ++r) {
    total += static_cast<size_t>(width_) * 4 + features_ * 4 + (has_label_ ? 4 : 0);
    for (const transform::IdsInput& f : p.ids) {
      const int64_t* off = f.offsets.data<int64_t>();
      total += static_cast<size_t>(off[r + 1] - off[r]) * 8;
    }
  }
  grow(total);
  size_t at = used_;
  used_ += total;
  char* out = bytes_.get();
  const float* dense = p.dense.data<float>();
  for (int64_t r = begin; r < end; ++r) {
    starts_.push_back(static_cast<int64_t>(at));
    std::memcpy(out + at, dense + r * width_, static_cast<size_t>(width_) * 4);
    at += static_cast<size_t>(width_) * 4;
    for (const transform::IdsInput& f : p.ids) {
      const int64_t* off = f.offsets.data<int64_t>();
      const int32_t n = static_cast<int32_t>(off[r + 1] - off[r]);
      std::memcpy(out + at, &n, 4);
      std::memcpy(out + at + 4, f.ids.data<int64_t>() + off[r], static_cast<size_t>(n) * 8);
      at += 4 + static_cast<size_t>(n) * 8;
    }
    if (has_label_) {
      std::memcpy(out + at, static_cast<const char*>(p.label.raw()) + r * 4, 4);
      at += 4;
    }
  }
}

void ExampleRecords::gather(const int64_t* indices, int64_t count, std::vector<Tensor>& out) const {
  KILN_CHECK(out.size() == 2 + 2 * features_, "gather into ", out.size(), " tensors");
  const char* base = bytes_.get();
  // Pass 1: the offsets of every ids feature (the batch's records then sit in cache for pass 2).
  std::vector<int64_t*> offsets(features_);
  for (size_t f = 0; f < features_; ++f) {
    out[1 + 2 * f + 1] = Tensor::empty(Shape{count + 1}, DType::i64);
    offsets[f] = out[1 + 2 * f + 1].data<int64_t>();
    offsets[f][0] = 0;
  }
  for (int64_t i = 0; i < count; ++i) {
    const char* rec = base + starts_[static_cast<size_t>(indices[i])] + width_ * 4;
    for (size_t f = 0; f < features_; ++f) {
      int32_t n;
      std::memcpy(&n, rec, 4);
      offsets[f][i + 1] = offsets[f][i] + n;
      rec += 4 + static_cast<size_t>(n) * 8;
    }
  }
  std::vector<int64_t*> ids(features_);
  for (size_t f = 0; f < features_; ++f) {
    out[1 + 2 * f] = Tensor::empty(Shape{std::max<int64_t>(offsets[f][count], 1)}, DType::i64);
    ids[f] = out[1 + 2 * f].data<int64_t>();
  }
  // Pass 2: the values.
  float* dense = out[0].data<float>();
  char* label = has_label_ ? static_cast<char*>(out.back().raw()) : nullptr;
  for (int64_t i = 0; i < count; ++i) {
    const char* rec = base + starts_[static_cast<size_t>(indices[i])];
    std::memcpy(dense + i * width_, rec, static_cast<size_t>(width_) * 4);
    rec += width_ * 4;
    for (size_t f = 0; f < features_; ++f) {
      const int64_t n = offsets[f][i + 1] - offsets[f][i];
      std::memcpy(ids[f] + offsets[f][i], rec + 4, static_cast<size_t>(n) * 8);
      rec += 4 + n * 8;
    }
    if (label) std::memcpy(label + i * 4, rec, 4);
  }
  if (!label) std::memset(out.back().raw(), 0, static_cast<size_t>(count) * 4);
}

}  // namespace kiln::models
