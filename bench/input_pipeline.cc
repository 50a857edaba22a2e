// The training input pipeline alone, no model: example shards streamed (models/shard_stream.h) or
// held in memory, batches drawn for whole epochs as `kiln train` draws them. bench/data_beyond_memory.py
// runs it beside a PyTorch DataLoader over the same examples.
//
//   kiln_bench_input_pipeline --state STATE --shards 'DIR/*.kex' [--batch_size 256]
//       [--shuffle_buffer 131072] [--epochs 1] [--in_memory] [--prefetch 2]
//
// Threads: the consumer (this loop), the batch producer and the window reader. The last line of
// stdout is JSON: examples, seconds, examples_per_s, peak_rss_mib.
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "core/error.h"
#include "io/config_file.h"
#include "io/error_budget.h"
#include "io/file_pattern.h"
#include "models/shard_stream.h"
#include "models/transformed_source.h"
#include "transform/example_shard_writing.h"

using namespace kiln;

int main(int argc, char** argv) try {
  std::string state_path, shards;
  int64_t batch_size = 256, shuffle_buffer = 131072, epochs = 1;
  int prefetch = 2;
  bool in_memory = false;
  for (int i = 1; i < argc; ++i) {
    auto value = [&] {
      if (i + 1 >= argc) fail(argv[i], " needs a value");
      return std::string(argv[++i]);
    };
    if (!std::strcmp(argv[i], "--state")) state_path = value();
    else if (!std::strcmp(argv[i], "--shards")) shards = value();
    else if (!std::strcmp(argv[i], "--batch_size")) batch_size = std::stoll(value());
    else if (!std::strcmp(argv[i], "--shuffle_buffer")) shuffle_buffer = std::stoll(value());
    else if (!std::strcmp(argv[i], "--epochs")) epochs = std::stoll(value());
    else if (!std::strcmp(argv[i], "--prefetch")) prefetch = std::stoi(value());
    else if (!std::strcmp(argv[i], "--in_memory")) in_memory = true;
    else fail("unknown argument ", argv[i], " (see the comment at the top of bench/input_pipeline.cc)");
  }
  if (state_path.empty() || shards.empty()) fail("--state and --shards are required");
  TransformState state;
  io::load_config(state_path, state);
  const std::vector<std::string> files = io::expand_file_patterns({shards});
  auto budget = std::make_shared<io::ErrorBudget>(0);
  const auto start = std::chrono::steady_clock::now();
  std::unique_ptr<io::InputPipeline> pipeline;
  if (in_memory) {
    io::PipelineOptions opts;
    opts.batch_size = batch_size;
    opts.prefetch = prefetch;
    pipeline = std::make_unique<io::InputPipeline>(models::read_example_shards(state, files, *budget), opts);
  } else {
    auto table = std::make_shared<const models::ShardTable>(transform::example_shard_schema(state), files, 0, 1, budget);
    models::StreamOptions so;
    so.batch_size = batch_size;
    so.shuffle_buffer = shuffle_buffer;
    pipeline = std::make_unique<io::InputPipeline>(std::make_shared<models::ShardBatches>(table, so), prefetch);
  }
  const auto opened = std::chrono::steady_clock::now();
  int64_t examples = 0;
  double checksum = 0;  // touches every batch so nothing is skipped
  for (int64_t b = 0; b < epochs * pipeline->batches_per_epoch(); ++b) {
    io::Batch batch = pipeline->next();
    examples += batch.size;
    if (batch.size > 0) checksum += batch.tensors[0].data<float>()[0];
  }
  const auto end = std::chrono::steady_clock::now();
  const double seconds = std::chrono::duration<double>(end - opened).count();
  const double load = std::chrono::duration<double>(opened - start).count();
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  std::printf("{\"examples\": %lld, \"seconds\": %.4f, \"open_seconds\": %.4f, \"examples_per_s\": %.1f, "
              "\"peak_rss_mib\": %.1f, \"mode\": \"%s\", \"shuffle_buffer\": %lld, \"batch_size\": %lld, "
              "\"checksum\": %.6g}\n",
              static_cast<long long>(examples), seconds, load, static_cast<double>(examples) / seconds,
              static_cast<double>(usage.ru_maxrss) / 1024.0, in_memory ? "in_memory" : "streaming",
              static_cast<long long>(shuffle_buffer), static_cast<long long>(batch_size), checksum);
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "kiln_bench_input_pipeline: %s\n", e.what());
  return 1;
}
