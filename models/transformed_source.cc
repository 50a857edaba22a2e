#include "models/transformed_source.h"

#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>

#include "core/communicator.h"
#include "core/error.h"
#include "io/example_shard.h"
#include "models/shard_stream.h"
#include "transform/csv_rows.h"
#include "transform/example_shard_writing.h"

namespace kiln::models {

TransformedSource::TransformedSource(const std::vector<transform::ModelInputs>& parts) {
  for (const auto& p : parts) {
    if (p.batch == 0) continue;
    if (rows_ == 0) {
      width_ = p.dense.dim(1);
      ids_.resize(p.ids.size());
      for (auto& c : ids_) c.offsets.push_back(0);
      label_dtype_ = p.label.defined() ? p.label.dtype() : DType::f32;
    }
    KILN_CHECK(p.dense.dim(1) == width_ && p.ids.size() == ids_.size());
    const float* d = p.dense.data<float>();
    dense_.insert(dense_.end(), d, d + p.dense.numel());
    for (size_t c = 0; c < ids_.size(); ++c) {
      const int64_t* off = p.ids[c].offsets.data<int64_t>();
      const int64_t* id = p.ids[c].ids.data<int64_t>();
      int64_t base = static_cast<int64_t>(ids_[c].ids.size());
      ids_[c].ids.insert(ids_[c].ids.end(), id, id + off[p.batch]);
      for (int64_t r = 1; r <= p.batch; ++r) ids_[c].offsets.push_back(base + off[r]);
    }
    if (label_dtype_ == DType::i32) {
      const int32_t* l = p.label.data<int32_t>();
      label_i_.insert(label_i_.end(), l, l + p.batch);
    } else if (p.label.defined()) {
      const float* l = p.label.data<float>();
      label_f_.insert(label_f_.end(), l, l + p.batch);
    }
    rows_ += p.batch;
  }
}

std::vector<std::pair<Shape, DType>> TransformedSource::signature() const {
  std::vector<std::pair<Shape, DType>> sig;
  sig.emplace_back(Shape{width_}, DType::f32);
  for (size_t c = 0; c < ids_.size(); ++c) {
    sig.emplace_back(Shape{}, DType::i64);  // placeholder ids, replaced in gather
    sig.emplace_back(Shape{}, DType::i64);  // placeholder offsets, replaced in gather
  }
  sig.emplace_back(Shape{}, label_dtype_);
  return sig;
}

void TransformedSource::gather(const int64_t* indices, int64_t count, std::vector<Tensor>& out) const {
  float* d = out[0].data<float>();
  for (int64_t i = 0; i < count; ++i)
    std::memcpy(d + i * width_, dense_.data() + indices[i] * width_, static_cast<size_t>(width_) * sizeof(float));
  for (size_t c = 0; c < ids_.size(); ++c) {
    const Csr& csr = ids_[c];
    Tensor offsets = Tensor::empty(Shape{count + 1}, DType::i64);
    int64_t* off = offsets.data<int64_t>();
    off[0] = 0;
    for (int64_t i = 0; i < count; ++i) off[i + 1] = off[i] + csr.offsets[indices[i] + 1] - csr.offsets[indices[i]];
    Tensor ids = Tensor::empty(Shape{std::max<int64_t>(off[count], 1)}, DType::i64);
    int64_t* id = ids.data<int64_t>();
    for (int64_t i = 0; i < count; ++i) {
      int64_t b = csr.offsets[indices[i]], e = csr.offsets[indices[i] + 1];
      std::copy(csr.ids.begin() + b, csr.ids.begin() + e, id + off[i]);
    }
    out[1 + 2 * c] = ids;
    out[2 + 2 * c] = offsets;
  }
  Tensor& label = out.back();
  for (int64_t i = 0; i < count; ++i) {
    if (label_dtype_ == DType::i32)
      label.data<int32_t>()[i] = label_i_[indices[i]];
    else
      label.data<float>()[i] = label_f_.empty() ? 0.0f : label_f_[indices[i]];
  }
}

std::shared_ptr<TransformedSource> transform_csv_files(const TransformState& state,
                                                       const std::vector<std::string>& files,
                                                       const io::CsvOptions& options,
                                                       const std::shared_ptr<io::ErrorBudget>& budget) {
  io::CsvReader reader(files, options, budget);
  transform::Transformer bound(state, reader.column_names(), true);
  std::mutex mutex;
  std::map<int64_t, transform::ModelInputs> parts;
  reader.for_each_chunk([&](const io::CsvChunk& chunk) {
    transform::ModelInputs in = bound.apply(transform::CsvRows(chunk), budget.get());
    std::lock_guard<std::mutex> lock(mutex);
    parts.emplace(chunk.index(), std::move(in));
  });
  std::vector<transform::ModelInputs> ordered;
  for (auto& [index, p] : parts) ordered.push_back(std::move(p));
  return std::make_shared<TransformedSource>(ordered);
}

std::shared_ptr<TransformedSource> read_example_shards(const TransformState& state,
                                                       const std::vector<std::string>& files,
                                                       io::ErrorBudget& budget) {
  const io::ExampleShardSchema expected = transform::example_shard_schema(state);
  std::vector<transform::ModelInputs> parts;
  for (const std::string& file : files) {
    io::ExampleShardReader shard(file);
    check_shard_schema(shard, expected);
    for (int64_t b = 0; b < shard.blocks(); ++b) {
      std::optional<io::ExampleBlock> read = shard.read_block_or_skip(b, budget);
      if (!read) {
        // Every rank reads every shard: rank 0 speaks for them.
        if (world().rank() == 0)
          std::fprintf(stderr, "kiln: warning: %s: %s: checksum mismatch (the file is corrupt); skipped its rows\n",
                       file.c_str(), shard.block_name(b).c_str());
        continue;
      }
      parts.push_back(block_model_inputs(std::move(*read), expected));
    }
  }
  return std::make_shared<TransformedSource>(parts);
}

}  // namespace kiln::models
