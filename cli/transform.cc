// kiln transform: runs CSV rows through the Transformer of a TransformState and writes the model
// inputs as example shards (docs/example_shards.md: what training reads, streamed, with no
// parsing) or as .npy files, for inspection or to feed another framework the very same features.
#include <cstdio>
#include <filesystem>
#include <map>
#include <mutex>

#include "cli/verbs.h"
#include "core/error.h"
#include "core/stream.h"
#include "io/config_file.h"
#include "io/csv_reader.h"
#include "io/file_pattern.h"
#include "io/npy_file.h"
#include "models/transformed_source.h"
#include "transform/csv_rows.h"
#include "transform/example_shard_writing.h"

namespace kiln::cli {

Action add_transform(CLI::App& app) {
  auto* cmd = app.add_subcommand("transform", "Apply a TransformState to CSV rows and write the model inputs as example shards (.kex) or .npy");
  struct Options {
    std::string state, output, format = "kex";
    std::vector<std::string> data;
    int threads = 0, shards = 0;
    double shard_size_mb = 256;
  };
  auto o = std::make_shared<Options>();
  cmd->add_option("--state", o->state, "TransformState file (from kiln analyze or kiln train)")->required();
  cmd->add_option("--data", o->data, "CSV files or patterns")->required();
  cmd->add_option("--output", o->output,
                  "Directory for examples-NNNNN.kex and examples.json (kex), or dense.npy, "
                  "<feature>.ids.npy/.offsets.npy and label.npy (npy)")
      ->required();
  cmd->add_option("--format", o->format, "kex: example shards, what `kiln train` reads (default); npy: NumPy arrays")
      ->check(CLI::IsMember({"kex", "npy"}));
  cmd->add_option("--shards", o->shards,
                  "kex: exactly this many shards, blocks dealt round-robin (e.g. a multiple of the ranks that will "
                  "read them); default: a new shard every --shard_size_mb")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--shard_size_mb", o->shard_size_mb, "kex: target shard size in MiB when --shards is not given (default 256)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--threads", o->threads, "Parser threads (default: all cores)");
  return [o] {
    TransformState state;
    io::load_config(o->state, state);
    io::CsvOptions opts = transform::csv_options(state.spec().csv(), o->threads > 0 ? o->threads : cpu_threads());
    auto budget = std::make_shared<io::ErrorBudget>(state.spec().csv().max_bad_rows());
    if (o->format == "kex") {
      transform::ShardWriteOptions write;
      write.output_dir = o->output;
      write.shards = o->shards;
      write.shard_bytes = static_cast<uint64_t>(o->shard_size_mb * (1 << 20));
      write.progress = true;
      const transform::ShardWriteResult r =
          transform::write_example_shards(state, io::expand_file_patterns(o->data), opts, budget, write);
      std::printf("%lld rows in %zu shards, %.1f MiB -> %s (%s)\n", static_cast<long long>(r.total_rows),
                  r.files.size(), static_cast<double>(r.total_bytes) / (1 << 20), o->output.c_str(),
                  io::describe_left_out(budget->left_out()).c_str());
      return 0;
    }
    auto source = models::transform_csv_files(state, io::expand_file_patterns(o->data), opts, budget);
    int64_t n = source->size();
    std::vector<int64_t> all(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) all[static_cast<size_t>(i)] = i;
    std::vector<Tensor> t;
    for (const auto& [shape, dtype] : source->signature()) t.push_back(Tensor::empty(shape.with_batch(n), dtype));
    source->gather(all.data(), n, t);
    std::filesystem::create_directories(o->output);
    auto path = [&](const std::string& name) { return (std::filesystem::path(o->output) / name).string(); };
    io::write_npy(path("dense.npy"), t[0]);
    auto inputs = transform::model_inputs(state);
    for (size_t c = 1; c < inputs.size(); ++c) {
      io::write_npy(path(inputs[c].name() + ".ids.npy"), t[2 * c - 1]);
      io::write_npy(path(inputs[c].name() + ".offsets.npy"), t[2 * c]);
    }
    io::write_npy(path("label.npy"), t.back());
    std::printf("%lld rows (%lld malformed skipped) -> %s\n", static_cast<long long>(n),
                static_cast<long long>(budget->count()), o->output.c_str());
    return 0;
  };
}

}  // namespace kiln::cli
