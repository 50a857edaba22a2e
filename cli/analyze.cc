// kiln analyze: the full pass over training data that records preprocessing statistics, its
// summary, and the comparison of two datasets' statistics. Runs across MPI ranks under mpirun.
#include <google/protobuf/text_format.h>

#include <cstdio>
#include <filesystem>

#include "cli/train_config_loader.h"
#include "cli/verbs.h"
#include "core/communicator.h"
#include "core/error.h"
#include "core/stream.h"
#include "io/atomic_file.h"
#include "io/config_file.h"
#include "models/training_data.h"
#include "transform/dataset_analysis.h"
#include "transform/state_report.h"

namespace kiln::cli {

namespace {

TransformState read_state(const std::string& path) {
  TransformState s;
  io::load_config(path, s);
  return s;
}

}  // namespace

Action add_analyze(CLI::App& app) {
  auto* cmd = app.add_subcommand("analyze", "Compute the preprocessing statistics (TransformState) of CSV data");
  struct Options {
    std::string config, spec, output;
    std::vector<std::string> data, overrides, compare;
    int threads = 0;
    bool quiet = false;
  };
  auto o = std::make_shared<Options>();
  cmd->add_option("--config", o->config, "TrainConfig with data.csv (its train_files, feature spec and state path)");
  cmd->add_option("--set", o->overrides, "Override a --config field: path.to.field=value (repeatable)");
  cmd->add_option("--spec", o->spec, "FeatureSpec file (.pbtxt or .json), instead of --config");
  cmd->add_option("--data", o->data, "CSV files or patterns to analyze, e.g. 'data/train-*.csv.gz' (with --spec)");
  cmd->add_option("--output", o->output, "Where to write the TransformState (text format); default with --config: "
                                         "its transform_state path");
  cmd->add_option("--threads", o->threads, "Parser threads per process (default: all cores)");
  cmd->add_option("--compare", o->compare, "Compare two TransformState files: per-feature L-infinity (categorical) "
                                           "and Jensen-Shannon divergence (numeric)")
      ->expected(2);
  cmd->add_flag("--quiet", o->quiet, "Do not print the per-feature summary");
  cmd->footer(
      "Under mpirun -np N, each rank reads its share of the files (file i goes to rank i mod N) and the\n"
      "exactly mergeable statistics are combined: the result equals a single-process run. Rank 0 writes.");
  return [o] {
    if (!o->compare.empty()) {
      if (!o->config.empty() || !o->spec.empty()) fail("--compare takes two state files and nothing else");
      auto d = transform::compare_states(read_state(o->compare[0]), read_state(o->compare[1]));
      std::fputs(transform::format_distances(d).c_str(), stdout);
      return 0;
    }
    FeatureSpec spec;
    transform::AnalysisOptions opts;
    std::string output = o->output;
    if (!o->config.empty()) {
      if (!o->spec.empty() || !o->data.empty()) fail("give --config, or --spec with --data, not both");
      TrainConfig config = load_train_config(o->config, o->overrides);
      if (!config.data().has_csv()) fail(o->config, ": data.csv is not set");
      const CsvData& csv = config.data().csv();
      if (csv.has_feature_spec()) spec = csv.feature_spec();
      if (!csv.feature_spec_file().empty()) io::load_config(csv.feature_spec_file(), spec);
      opts.files.assign(csv.train_files().begin(), csv.train_files().end());
      if (opts.files.empty()) fail(o->config, ": data.csv.train_files is empty");
      if (output.empty()) output = models::transform_state_path(config);
    } else {
      if (o->spec.empty() || o->data.empty()) fail("give --config, or --spec and --data");
      io::load_config(o->spec, spec);
      opts.files = o->data;
    }
    opts.threads = o->threads > 0 ? o->threads : cpu_threads();
    opts.progress = !o->quiet;
    Communicator& comm = world();
    TransformState state = transform::analyze_dataset(spec, opts, comm);
    if (comm.rank() != 0) return 0;
    if (!output.empty()) {
      std::string text;
      google::protobuf::TextFormat::PrintToString(state, &text);
      auto parent = std::filesystem::path(output).parent_path();
      if (!parent.empty()) std::filesystem::create_directories(parent);
      io::write_file_atomic(output, text);
    }
    if (!o->quiet) std::fputs(transform::summarize_state(state).c_str(), stdout);
    if (!output.empty()) std::printf("transform state %s\n", output.c_str());
    return 0;
  };
}

}  // namespace kiln::cli
