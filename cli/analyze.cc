// kiln analyze: the full pass over training data that records preprocessing statistics, its
// summary, the comparison of two datasets' statistics, and the HTML data report. Runs across MPI
// ranks under mpirun.
#include <google/protobuf/text_format.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <optional>

#include "cli/train_config_loader.h"
#include "cli/verbs.h"
#include "core/communicator.h"
#include "core/error.h"
#include "core/stream.h"
#include "io/atomic_file.h"
#include "io/config_file.h"
#include "models/training_data.h"
#include "transform/comparison_spec.h"
#include "transform/dataset_analysis.h"
#include "transform/html_report.h"
#include "transform/report_charts.h"
#include "transform/state_report.h"

namespace kiln::cli {

namespace {

TransformState read_state(const std::string& path) {
  TransformState s;
  io::load_config(path, s);
  return s;
}

// A --compare argument that names statistics already computed rather than data to analyze.
bool is_state_file(const std::string& path) {
  return path.ends_with(".pbtxt") || path.ends_with(".json") || path.ends_with(".textproto");
}

// The files or patterns of a data set, as the report's legend names it.
std::string name_of(const std::vector<std::string>& files) {
  std::string name;
  for (const std::string& f : files) name += (name.empty() ? "" : " ") + std::filesystem::path(f).filename().string();
  return transform::shorten(name, 40);
}

void write_output(const std::string& path, const std::string& text) {
  auto parent = std::filesystem::path(path).parent_path();
  std::error_code error;
  if (!parent.empty() && !std::filesystem::create_directories(parent, error) && error)
    fail("cannot create the directory of ", path, ": ", error.message());
  io::write_file_atomic(path, text);
}

}  // namespace

Action add_analyze(CLI::App& app) {
  auto* cmd = app.add_subcommand("analyze", "Compute the preprocessing statistics (TransformState) of CSV data");
  struct Options {
    std::string config, spec, output, report;
    std::vector<std::string> data, overrides, compare;
    int threads = 0;
    double drift_threshold = 0.01;
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
  cmd->add_option("--compare", o->compare,
                  "With --spec/--config: other data (CSV files or patterns, or its TransformState) whose "
                  "distributions are compared with the analyzed data's. Alone: two TransformState files. "
                  "Per-feature L-infinity (categorical) and Jensen-Shannon divergence (numeric)")
      ->expected(1, CLI::detail::expected_max_vector_size);
  cmd->add_option("--report", o->report, "Write a self-contained HTML data report (statistics and charts per "
                                         "feature; with --compare both data sets side by side)");
  cmd->add_option("--drift_threshold", o->drift_threshold,
                  "With --compare: a feature whose distance is above this is marked (default 0.01)")
      ->check(CLI::Range(0.0, 1.0));
  cmd->add_flag("--quiet", o->quiet, "Do not print the per-feature summary");
  cmd->footer(
      "Under mpirun -np N, each rank reads its share of the files (file i goes to rank i mod N) and the\n"
      "exactly mergeable statistics are combined: the result equals a single-process run. Rank 0 writes.");
  return [o] {
    transform::ReportOptions report;
    report.drift_threshold = o->drift_threshold;
    if (!o->compare.empty() && o->config.empty() && o->spec.empty() && o->data.empty()) {
      if (o->compare.size() != 2)
        fail("--compare alone takes two TransformState files (or give --spec and --data, or --config, and the "
             "other data)");
      if (!o->output.empty()) fail("--output: --compare A B analyzes nothing (give --spec and --data, or --config)");
      TransformState a = read_state(o->compare[0]), b = read_state(o->compare[1]);
      std::fputs(transform::format_distances(transform::compare_states(a, b), o->drift_threshold).c_str(), stdout);
      if (!o->report.empty()) {
        report.data_name = name_of({o->compare[0]});
        report.compare_name = name_of({o->compare[1]});
        write_output(o->report, transform::html_report(a, &b, report));
        std::printf("report %s\n", o->report.c_str());
      }
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
    if (o->compare.size() > 1 && std::any_of(o->compare.begin(), o->compare.end(), is_state_file))
      fail("--compare takes the other data's CSV files or one TransformState file, not both");
    opts.threads = o->threads > 0 ? o->threads : cpu_threads();
    opts.progress = !o->quiet;
    Communicator& comm = world();
    TransformState state = transform::analyze_dataset(spec, opts, comm);
    // The other data goes through the same row screening, keeping every category it sees.
    std::optional<TransformState> other;
    if (o->compare.size() == 1 && is_state_file(o->compare[0])) {
      other = read_state(o->compare[0]);
    } else if (!o->compare.empty()) {
      transform::AnalysisOptions other_opts = opts;
      other_opts.files = o->compare;
      other = transform::analyze_dataset(transform::comparison_spec(state), other_opts, comm);
    }
    if (comm.rank() != 0) return 0;
    if (!output.empty()) {
      std::string text;
      google::protobuf::TextFormat::PrintToString(state, &text);
      write_output(output, text);
    }
    if (!o->quiet) std::fputs(transform::summarize_state(state).c_str(), stdout);
    if (!output.empty()) std::printf("transform state %s\n", output.c_str());
    if (other) {
      std::printf("compared with %s\n", name_of(o->compare).c_str());
      std::fputs(transform::format_distances(transform::compare_states(state, *other), o->drift_threshold).c_str(),
                 stdout);
    }
    if (!o->report.empty()) {
      report.data_name = name_of(opts.files);
      if (other) report.compare_name = name_of(o->compare);
      write_output(o->report, transform::html_report(state, other ? &*other : nullptr, report));
      std::printf("report %s\n", o->report.c_str());
    }
    return 0;
  };
}

}  // namespace kiln::cli
