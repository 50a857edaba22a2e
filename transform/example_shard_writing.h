#pragma once
// `kiln transform`'s output: CSV rows run through the Transformer and written as example shards
// (io/example_shard.h). Chunks are parsed and transformed in parallel; blocks are written in chunk
// order, so the shards are the same for any thread count. Memory holds a few chunks, whatever
// the data size.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "io/csv_reader.h"
#include "io/error_budget.h"
#include "io/example_shard.h"
#include "proto/transform_state.pb.h"
#include "transform/transformer.h"

namespace kiln::transform {

struct ShardWriteOptions {
  std::string output_dir;
  // > 0: exactly this many shards, block k going to shard k % shards. 0: a new shard whenever
  // the current one reaches shard_bytes.
  int shards = 0;
  uint64_t shard_bytes = 256ull << 20;
  bool progress = false;  // a line per shard committed, on stderr
};

struct ShardWriteResult {
  std::vector<std::string> files;  // in shard order
  std::vector<int64_t> rows;       // per shard
  int64_t total_rows = 0;
  uint64_t total_bytes = 0;
};

// Shard s is OUTPUT_DIR/examples-SSSSS.kex; a manifest OUTPUT_DIR/examples.json listing them is
// written last. Refuses a directory that already holds shards; removes the hidden temporary
// files of a killed earlier run (it says so).
ShardWriteResult write_example_shards(const TransformState& state, const std::vector<std::string>& csv_files,
                                      const io::CsvOptions& options, const std::shared_ptr<io::ErrorBudget>& budget,
                                      const ShardWriteOptions& write);

// The shard schema of a state's model inputs (label as the state's task needs).
io::ExampleShardSchema example_shard_schema(const TransformState& state);

// A block from the Transformer's output (sharing its tensors).
io::ExampleBlock to_example_block(const ModelInputs& in);

}  // namespace kiln::transform
