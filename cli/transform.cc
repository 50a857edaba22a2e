// kiln transform: runs CSV rows through the Transformer of a TransformState and writes the model
// inputs as .npy files, for inspection or to feed another framework the very same features.
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

namespace kiln::cli {

Action add_transform(CLI::App& app) {
  auto* cmd = app.add_subcommand("transform", "Apply a TransformState to CSV rows and write the model inputs (.npy)");
  struct Options {
    std::string state, output;
    std::vector<std::string> data;
    int threads = 0;
  };
  auto o = std::make_shared<Options>();
  cmd->add_option("--state", o->state, "TransformState file (from kiln analyze or kiln train)")->required();
  cmd->add_option("--data", o->data, "CSV files or patterns")->required();
  cmd->add_option("--output", o->output, "Directory for dense.npy, <feature>.ids.npy/.offsets.npy, label.npy")->required();
  cmd->add_option("--threads", o->threads, "Parser threads (default: all cores)");
  return [o] {
    TransformState state;
    io::load_config(o->state, state);
    io::CsvOptions opts = transform::csv_options(state.spec().csv(), o->threads > 0 ? o->threads : cpu_threads());
    auto budget = std::make_shared<io::ErrorBudget>(state.spec().csv().max_bad_rows());
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
