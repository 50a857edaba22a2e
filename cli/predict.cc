// kiln predict: offline batch prediction through the same Servable the server uses.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <numeric>

#include "cli/run_device.h"
#include "cli/verbs.h"
#include "core/error.h"
#include "core/stream.h"
#include "io/csv_reader.h"
#include "runtime/json_request.h"
#include "runtime/responses.h"
#include "runtime/servable.h"
#include "transform/csv_rows.h"

namespace kiln::cli {

namespace fs = std::filesystem;

Action add_predict(CLI::App& app) {
  auto* cmd = app.add_subcommand("predict", "Predict offline: raw rows (CSV or JSON Lines) through an exported servable");
  cmd->footer("One JSON object per input row, in order, with the same outputs and bits as kiln serve. See docs/serving.md.");
  struct Options {
    std::string model, input, output, device, precision, kernel_library;
    int64_t batch = 256;
    int threads = 0;
  };
  auto o = std::make_shared<Options>();
  cmd->add_option("--model", o->model, "Servable version directory, or a base path (newest version)")->required();
  cmd->add_option("--input", o->input, "rows.csv or rows.jsonl (.csv.gz too)")->required();
  cmd->add_option("--output", o->output, "predictions.jsonl (one line per input row, in order)")->required();
  cmd->add_option("--batch_size", o->batch, "Rows per model batch")->capture_default_str();
  cmd->add_option("--threads", o->threads, "CPU threads (default: all)");
  cmd->add_option("--device", o->device, "cpu, cuda[:INDEX] or sim[:INDEX] (default cpu)");
  cmd->add_option("--precision", o->precision,
                  "GEMMs and convolutions at fp32, tf32 or bf16 (default: as the version was exported)");
  cmd->add_option("--kernel_library", o->kernel_library, "kiln or vendor: the kernels on CUDA (default kiln)");
  return [o] {
    if (o->batch < 1) fail("--batch_size must be >= 1");
    ServeConfig choice;
    if (!o->device.empty()) apply_device_flag(o->device, choice);
    if (!o->precision.empty()) apply_precision_flag(o->precision, choice);
    if (!o->kernel_library.empty()) apply_kernel_library_flag(o->kernel_library, choice);
    const Device device = models::configured_device(choice.device(), choice.device_index(), "pass --device cpu");
    apply_kernel_library(choice.kernel_library(), choice.kernel_library_overrides());
    if (o->threads > 0) set_cpu_threads(o->threads);
    auto servable = runtime::Servable::load(runtime::resolve_version_dir(o->model));
    runtime::ModelRunner runner(*servable, device, choice.precision(), /*graphs=*/true, o->batch);
    std::string tmp = o->output + ".tmp";
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) fail("cannot write ", tmp);
    int64_t rows = 0;
    // Keys come back only where the input has them, as the server answers a request.
    const std::string& key = servable->signature().key();
    const int key_col = key.empty() || !servable->tabular() ? -1 : servable->schema().find(key);
    const std::vector<std::string> no_keys;
    auto run = [&](const transform::ModelInputs& in, bool with_key) {
      const float* y = runner.run(in);
      runtime::Predictions p = servable->postprocess(y, in.batch, runner.output_width());
      out << runtime::jsonl_predictions(servable->signature(), p, with_key ? in.keys : no_keys);
      rows += in.batch;
    };
    const bool jsonl = o->input.size() > 6 && (o->input.ends_with(".jsonl") || o->input.ends_with(".json"));
    if (jsonl) {
      std::ifstream in(o->input, std::ios::binary);
      if (!in) fail("cannot read ", o->input);
      runtime::RequestLimits limits;
      limits.max_rows = o->batch;
      std::string line, block;
      int64_t first_line = 1, line_no = 0, in_block = 0;
      auto flush = [&] {
        if (in_block == 0) return;
        runtime::ParsedRequest parsed;
        try {
          runtime::parse_json_lines(block, o->input, servable->schema(), limits, parsed);
        } catch (const Error& e) {
          // parse_json_lines counts lines within the block; report the file's line.
          fail(e.what(), " (block starting at line ", first_line, ")");
        }
        if (servable->tabular())
          run(servable->prepare(parsed.rows), key_col >= 0 && parsed.rows.any_present(key_col));
        else
          run(servable->prepare_tensor(parsed.tensor, parsed.count), false);
        block.clear();
        in_block = 0;
        first_line = line_no + 1;
      };
      while (std::getline(in, line)) {
        ++line_no;
        block += line;
        block += '\n';
        if (line.find_first_not_of(" \t\r") != std::string::npos) ++in_block;
        if (in_block == o->batch) flush();
      }
      flush();
    } else {
      if (!servable->tabular()) fail("--input: image models take JSON Lines, one array of pixels per line");
      io::CsvOptions opts = transform::csv_options(servable->manifest().transform_state().spec().csv(), 1);
      io::CsvReader reader({o->input}, opts, nullptr);
      std::vector<int> map;
      for (const auto& c : servable->columns()) {
        int idx = reader.column_index(c);
        if (idx < 0 && c != servable->signature().key())
          fail(o->input, ": no column '", c, "' (the model takes: ", servable->schema().column_list(), ")");
        map.push_back(idx);
      }
      reader.for_each_chunk([&](const io::CsvChunk& chunk) {
        for (int64_t b = 0; b < chunk.rows(); b += o->batch) {
          std::vector<int64_t> rows(static_cast<size_t>(std::min(o->batch, chunk.rows() - b)));
          std::iota(rows.begin(), rows.end(), b);
          run(servable->prepare(transform::BoundCsvRows(chunk, map, std::move(rows))),
              key_col >= 0 && map[static_cast<size_t>(key_col)] >= 0);
        }
      });
    }
    out.close();
    if (!out) fail("writing ", tmp, " failed");
    fs::rename(tmp, o->output);
    std::fprintf(stderr, "kiln predict: %lld rows -> %s (model %s version %lld on %s%s)\n", static_cast<long long>(rows),
                 o->output.c_str(), servable->name().c_str(), static_cast<long long>(servable->version()),
                 device.to_string().c_str(),
                 runner.graph_launches() ? str_cat("; ", runner.graph_launches(), " batches as ", runner.graphs_captured(),
                                                   " captured graphs").c_str()
                                         : "");
    return 0;
  };
}

}  // namespace kiln::cli
