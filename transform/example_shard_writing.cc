#include "transform/example_shard_writing.h"

#include <cstdio>
#include <filesystem>
#include <map>
#include <mutex>

#include "core/error.h"
#include "io/atomic_file.h"
#include "io/json_text.h"
#include "transform/csv_rows.h"
#include "transform/state_fingerprint.h"

namespace kiln::transform {

namespace fs = std::filesystem;

namespace {

std::string shard_name(size_t index) {
  char name[32];
  std::snprintf(name, sizeof name, "examples-%05zu.kex", index);
  return name;
}

// Refuses shards already there (mixing two runs' shards would train on both); removes the
// hidden temporary files a killed transform left (io::AtomicFileWriter names them
// .NAME.tmp.XXXXXX).
void prepare_output_dir(const std::string& dir) {
  fs::create_directories(dir);
  for (const fs::directory_entry& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (name.rfind(".examples", 0) == 0 && name.find(".tmp.") != std::string::npos) {
      std::fprintf(stderr, "kiln transform: removing %s, left by an earlier transform that did not finish\n",
                   e.path().c_str());
      fs::remove(e.path());
    } else if (name == "examples.json" || (name.rfind("examples-", 0) == 0 && e.path().extension() == ".kex")) {
      fail(dir, " already holds example shards (", name, "): choose another --output or delete them");
    }
  }
}

}  // namespace

io::ExampleShardSchema example_shard_schema(const TransformState& state) {
  io::ExampleShardSchema schema;
  schema.dense_width = state.dense_width();
  const std::vector<InputSpec> inputs = model_inputs(state);
  for (size_t i = 1; i < inputs.size(); ++i) schema.ids_features.push_back(inputs[i].name());
  schema.has_label = true;
  schema.label_dtype = state.spec().label().type() == LabelSpec::MULTICLASS ? DType::i32 : DType::f32;
  schema.state_fingerprint = state_fingerprint(state);
  return schema;
}

io::ExampleBlock to_example_block(const ModelInputs& in) {
  io::ExampleBlock block;
  block.rows = in.batch;
  block.dense = in.dense;
  for (const IdsInput& ids : in.ids) {
    block.ids.push_back(ids.ids);
    block.offsets.push_back(ids.offsets);
  }
  block.label = in.label;
  return block;
}

ShardWriteResult write_example_shards(const TransformState& state, const std::vector<std::string>& csv_files,
                                      const io::CsvOptions& options, const std::shared_ptr<io::ErrorBudget>& budget,
                                      const ShardWriteOptions& write) {
  KILN_CHECK(write.shards >= 0 && write.shard_bytes > 0);
  prepare_output_dir(write.output_dir);
  const io::ExampleShardSchema schema = example_shard_schema(state);
  io::CsvReader reader(csv_files, options, budget);
  const Transformer bound(state, reader.column_names(), true);

  ShardWriteResult result;
  std::vector<std::unique_ptr<io::ExampleShardWriter>> open;  // by shard index; null once committed
  auto path_of = [&](size_t s) { return (fs::path(write.output_dir) / shard_name(s)).string(); };
  auto open_shard = [&] {
    open.push_back(std::make_unique<io::ExampleShardWriter>(path_of(open.size()), schema));
    result.files.push_back(path_of(open.size() - 1));
    result.rows.push_back(0);
  };
  auto commit = [&](size_t s) {
    result.total_bytes += open[s]->bytes_written();
    result.rows[s] = open[s]->rows();
    open[s]->commit();
    open[s].reset();
    if (write.progress)
      std::fprintf(stderr, "kiln transform: %s: %lld rows\n", result.files[s].c_str(),
                   static_cast<long long>(result.rows[s]));
  };
  for (int s = 0; s < write.shards; ++s) open_shard();

  // Chunks arrive out of order from the parser threads; blocks are appended in chunk order.
  std::mutex mutex;
  std::map<int64_t, io::ExampleBlock> pending;
  int64_t next_chunk = 0, blocks = 0;
  auto append = [&](const io::ExampleBlock& block) {
    if (block.rows == 0) return;
    size_t s;
    if (write.shards > 0) {
      s = static_cast<size_t>(blocks % write.shards);
    } else {
      if (open.empty() || !open.back()) open_shard();
      s = open.size() - 1;
    }
    open[s]->append(block);
    result.total_rows += block.rows;
    ++blocks;
    if (write.shards == 0 && open[s]->bytes_written() >= write.shard_bytes) commit(s);
  };
  reader.for_each_chunk([&](const io::CsvChunk& chunk) {
    io::ExampleBlock block = to_example_block(bound.apply(CsvRows(chunk), budget.get()));
    std::lock_guard<std::mutex> lock(mutex);
    pending.emplace(chunk.index(), std::move(block));
    for (auto it = pending.begin(); it != pending.end() && it->first == next_chunk; it = pending.erase(it), ++next_chunk)
      append(it->second);
  });
  for (auto& [index, block] : pending) append(block);  // none unless chunk indices had gaps
  if (open.empty()) open_shard();  // no rows at all: one empty shard says so
  for (size_t s = 0; s < open.size(); ++s)
    if (open[s]) commit(s);

  std::string manifest = "{\"format\":\"kiln-example-shards\",\"state_fingerprint\":";
  io::append_json_string(manifest, schema.state_fingerprint);
  manifest += ",\"rows\":" + std::to_string(result.total_rows) + ",\"shards\":[";
  for (size_t s = 0; s < result.files.size(); ++s) {
    manifest += s ? ",{\"file\":" : "{\"file\":";
    io::append_json_string(manifest, fs::path(result.files[s]).filename().string());
    manifest += ",\"rows\":" + std::to_string(result.rows[s]) + "}";
  }
  manifest += "]}\n";
  io::write_file_atomic((fs::path(write.output_dir) / "examples.json").string(), manifest);
  return result;
}

}  // namespace kiln::transform
