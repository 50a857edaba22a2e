#include "runtime/exporter.h"

#include <fcntl.h>
#include <google/protobuf/text_format.h>
#include <sys/file.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>

#include "core/error.h"
#include "io/atomic_file.h"
#include "io/checkpoint_file.h"
#include "io/csv_reader.h"
#include "io/file_pattern.h"
#include "io/idx.h"
#include "io/number_parse.h"
#include "models/device_config.h"
#include "models/trainer.h"
#include "models/transformed_source.h"
#include "proto/checkpoint.pb.h"
#include "runtime/json_writer.h"
#include "runtime/servable.h"
#include "transform/csv_rows.h"

namespace kiln::runtime {

namespace fs = std::filesystem;

namespace {

struct StopReading {};

std::vector<float> run_training_path(models::Trainer& trainer, std::shared_ptr<const io::ExampleSource> source,
                                     int64_t rows, int64_t batch_size, uint64_t seed) {
  io::PipelineOptions opts;
  opts.batch_size = batch_size;
  opts.shuffle = false;
  io::InputPipeline pipeline(std::move(source), opts);
  std::vector<float> out;
  while (static_cast<int64_t>(out.size()) < rows * trainer.model().output_shape().numel()) {
    io::Batch b = pipeline.next();
    const Tensor y = trainer.predict(b, seed);
    out.insert(out.end(), y.data<float>(), y.data<float>() + y.numel());
    if (b.index + 1 == pipeline.batches_per_epoch()) break;
  }
  out.resize(static_cast<size_t>(rows * trainer.model().output_shape().numel()));
  return out;
}

// Runs prepared inputs through the servable in batches of 1, 2, 3, ... rows: dynamic batching
// puts a request into batches of any size, and its outputs must not depend on that.
std::vector<float> run_servable_path(const Servable& s, const Device& device,
                                     const std::function<transform::ModelInputs(int64_t, int64_t)>& rows, int64_t total) {
  // Graphs on sim and CUDA, as the server runs them (batches of 1, 2, 3, ... fill every bucket),
  // sized for the largest batch below.
  int64_t largest = 0;
  for (int64_t covered = 0; covered < total; covered += ++largest) {
  }
  ModelRunner runner(s, device, Precision::DEFAULT, /*graphs=*/true, largest);
  std::vector<float> out;
  int64_t size = 1;
  for (int64_t begin = 0; begin < total; begin += size, ++size) {
    int64_t n = std::min(size, total - begin);
    transform::ModelInputs in = rows(begin, n);
    const float* y = runner.run(in);
    out.insert(out.end(), y, y + n * runner.output_width());
  }
  return out;
}

void compare(const std::vector<float>& a, const std::vector<float>& b, int64_t width, const std::string& what) {
  KILN_CHECK(a.size() == b.size(), "identity check: ", a.size(), " vs ", b.size(), " outputs");
  for (size_t i = 0; i < a.size(); ++i)
    if (std::memcmp(&a[i], &b[i], sizeof(float)) != 0)
      fail("export identity check failed on ", what, ": row ", static_cast<int64_t>(i) / width, " output ",
           static_cast<int64_t>(i) % width, " is ", a[i], " on the training path and ", b[i],
           " through the servable; nothing was published");
}

std::string warmup_json(const transform::RawRows& rows, int64_t r, const Signature& sig, int columns) {
  std::string out = "{";
  for (int c = 0; c < columns; ++c) {
    const bool is_key = c >= sig.inputs_size();
    const std::string& name = is_key ? sig.key() : sig.inputs(c).name();
    if (is_key && rows.is_na(r, c)) continue;
    if (out.size() > 1) out += ',';
    append_json_string(out, name);
    out += ':';
    std::string_view v = rows.field(r, c);
    double d;
    if (rows.is_na(r, c)) {
      out += "null";
    } else if (!is_key && sig.inputs(c).type() == SignatureInput::NUMBER) {
      if (io::parse_double(v, &d) && std::isfinite(d)) append_json_number(out, d);
      else out += "null";
    } else {
      append_json_string(out, v);
    }
  }
  return out + "}";
}

void add_file(ServableManifest& m, const std::string& dir, const std::string& name) {
  std::string bytes = io::read_file((fs::path(dir) / name).string());
  ServableFile* f = m.add_files();
  f->set_name(name);
  f->set_size(static_cast<int64_t>(bytes.size()));
  f->set_xxh3(XXH3_64bits(bytes.data(), bytes.size()));
}

std::string utc_now() {
  std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

constexpr const char* kHighWaterFile = ".kiln_version_high_water";
constexpr const char* kLockFile = ".kiln_export.lock";

// Removes what stale_staging_dirs finds; returns the removed paths.
std::vector<std::string> remove_stale_staging(const std::string& base) {
  std::vector<std::string> removed;
  for (const std::string& dir : stale_staging_dirs(base)) {
    std::error_code rm;
    fs::remove_all(dir, rm);
    if (!rm) removed.push_back(dir);
  }
  return removed;
}

// An exclusive flock on BASE/.kiln_export.lock for choosing a version number: concurrent exports
// get different numbers. Held for milliseconds, not for the export.
class BaseLock {
 public:
  explicit BaseLock(const std::string& base) {
    const std::string path = (fs::path(base) / kLockFile).string();
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) fail("cannot open ", path, ": ", std::strerror(errno));
    while (::flock(fd_, LOCK_EX) != 0)
      if (errno != EINTR) fail("cannot lock ", path, ": ", std::strerror(errno));
  }
  ~BaseLock() { ::close(fd_); }
  BaseLock(const BaseLock&) = delete;
  BaseLock& operator=(const BaseLock&) = delete;

 private:
  int fd_ = -1;
};

// The highest version number ever taken in `base` (0 if none): BASE/.kiln_version_high_water,
// else the newest version directory (a base path from before the file existed).
int64_t high_water_mark(const std::string& base) {
  int64_t mark = 0;
  const std::string path = (fs::path(base) / kHighWaterFile).string();
  if (fs::exists(path)) {
    const std::string text = io::read_file(path);
    char* end = nullptr;
    mark = std::strtoll(text.c_str(), &end, 10);
    if (end == text.c_str() || mark < 0) fail(path, ": not a version number: '", text.substr(0, 40), "'");
  }
  const auto existing = list_versions(base);
  if (!existing.empty()) mark = std::max(mark, existing.rbegin()->first);
  return mark;
}

// Reserves the version this export publishes: one more than the high-water mark, or the one asked
// for, which must be above it (a number once used is never reused: clients pinned to
// /versions/N must not silently get another model). The mark is raised at once (atomically), so
// a concurrent export takes the next number and a failed export leaves a gap, not a reuse.
int64_t reserve_version(const std::string& base, int64_t requested) {
  BaseLock lock(base);
  const int64_t mark = high_water_mark(base);
  int64_t version = mark + 1;
  if (requested > 0) {
    const std::string dir = (fs::path(base) / std::to_string(requested)).string();
    if (fs::exists(dir)) fail("version directory ", dir, " already exists");
    if (requested <= mark)
      fail("version ", requested, " was already used in ", base, " (versions up to ", mark, " were taken, see ",
           (fs::path(base) / kHighWaterFile).string(), "): version numbers are never reused; choose one above ", mark);
    version = requested;
  }
  io::write_file_atomic((fs::path(base) / kHighWaterFile).string(), std::to_string(version) + "\n");
  return version;
}

}  // namespace

std::vector<std::string> stale_staging_dirs(const std::string& base) {
  std::vector<std::string> stale;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(base, ec)) {
    const std::string name = e.path().filename().string();
    if (name.rfind(".tmp-", 0) != 0) continue;
    const size_t dash = name.rfind('-');
    if (dash <= 5) continue;
    const long pid = std::strtol(name.c_str() + dash + 1, nullptr, 10);
    if (pid > 0 && !io::process_exists(pid)) stale.push_back(e.path().string());
  }
  std::sort(stale.begin(), stale.end());
  return stale;
}

ExportResult export_servable(const TrainConfig& config, const ExportOptions& options) {
  if (options.base_path.empty()) fail("--model_base_path is required");
  if (options.check_rows < 1) fail("--check_rows must be >= 1");
  const std::string checkpoints = (fs::path(config.output_dir()) / "checkpoints").string();
  if (options.checkpoint.empty() && models::latest_checkpoint(checkpoints).empty())
    fail("no checkpoint in ", checkpoints, ": train first");
  models::Trainer trainer(config, /*evaluation_only=*/true, options.device);
  // The newest valid checkpoint (a corrupt newer one is set aside with a warning), or the one named.
  if (!trainer.restore(options.checkpoint)) fail("no valid checkpoint in ", checkpoints, ": train first");
  const std::string checkpoint = trainer.restored_checkpoint();

  ExportResult result;
  std::error_code ec;
  fs::create_directories(options.base_path, ec);
  if (ec) fail("cannot create ", options.base_path, ": ", ec.message());
  result.removed_staging = remove_stale_staging(options.base_path);
  result.version = reserve_version(options.base_path, options.version);
  result.dir = (fs::path(options.base_path) / std::to_string(result.version)).string();
  result.trained_steps = trainer.step();

  ServableManifest m;
  m.set_model_name(options.name.empty() ? fs::path(options.base_path).lexically_normal().filename().string()
                                        : options.name);
  m.set_version(result.version);
  *m.mutable_model() = trainer.model().spec();
  m.set_precision(models::precision_kind(trainer.precision()));
  const auto& data = trainer.data();
  if (data.transform_state) {
    *m.mutable_transform_state() = *data.transform_state;
  } else {
    TensorInput* t = m.mutable_tensor_input();
    const InputSpec& in = trainer.model().spec().inputs(0);
    t->set_name(in.name());
    for (int64_t d : in.shape()) t->add_shape(d);
    t->set_scale(config.data().idx().pixel_scale());
  }
  *m.mutable_signature() = make_signature(m.model(), data.transform_state ? &*data.transform_state : nullptr,
                                          m.has_tensor_input() ? &m.tensor_input() : nullptr);
  m.set_created_utc(utc_now());
  m.set_source_checkpoint(fs::absolute(checkpoint).string());
  m.set_trained_steps(trainer.step());

  // Stage.
  const std::string staging =
      (fs::path(options.base_path) / str_cat(".tmp-", result.version, "-", ::getpid())).string();
  try {
    fs::remove_all(staging);
    fs::create_directories(staging);
    const std::vector<io::NamedTensor> weights = trainer.host_weights();
    io::write_checkpoint_file((fs::path(staging) / kWeightsFile).string(), "", weights);
    add_file(m, staging, kWeightsFile);

    // Identity check on sample rows; the same rows become the warm-up requests.
    const int64_t width = trainer.model().output_shape().numel();
    std::vector<float> training, serving;
    std::string what;
    std::vector<std::string> warmup;
    auto write_manifest = [&] {
      std::string text;
      google::protobuf::TextFormat::PrintToString(m, &text);
      io::write_file_atomic((fs::path(staging) / kManifestFile).string(),
                            "# Kiln servable manifest, written by kiln export; checked on load.\n" + text);
    };
    if (data.transform_state) {
      const TransformState& state = *data.transform_state;
      const CsvData& csv = config.data().csv();
      // Raw CSV rows go through both paths: example shards (.kex) hold transformed rows only.
      std::vector<std::string> files;
      for (const auto* split : {&csv.eval_files(), &csv.train_files()}) {
        if (!files.empty() || split->empty()) continue;
        for (const std::string& f : io::expand_file_patterns({split->begin(), split->end()}))
          if (fs::path(f).extension() != ".kex") files.push_back(f);
      }
      if (files.empty())
        fail("export: the identity check runs raw CSV rows through the training path and the servable, but "
             "data.csv.eval_files and train_files are example shards (transformed rows): name a CSV file of the "
             "same data, e.g. --set data.csv.eval_files=eval.csv");
      io::CsvOptions opts = transform::csv_options(state.spec().csv(), 1);
      opts.chunk_bytes = 1 << 20;
      auto budget = std::make_shared<io::ErrorBudget>(-1);
      io::CsvReader reader({files.front()}, opts, budget);
      what = files.front();
      try {
        reader.for_each_chunk([&](const io::CsvChunk& chunk) {
          transform::Transformer with_labels(state, reader.column_names(), true);
          transform::ModelInputs in = with_labels.apply(transform::CsvRows(chunk), budget.get());
          const int64_t n = std::min<int64_t>(options.check_rows, in.batch);
          if (n == 0) fail("identity check: no usable rows in the first block of ", chunk.file());
          // TransformedSource keeps the rows in order; source_rows says where each came from.
          std::vector<int64_t> rows(in.source_rows.begin(), in.source_rows.begin() + n);
          auto source = std::make_shared<models::TransformedSource>(std::vector<transform::ModelInputs>{std::move(in)});
          training = run_training_path(trainer, source, n, config.batch_size(), config.seed());
          write_manifest();
          auto servable = Servable::load(staging);
          std::vector<int> map;
          for (const std::string& c : servable->columns()) map.push_back(reader.column_index(c));
          transform::BoundCsvRows mapped(chunk, map, rows);
          serving = run_servable_path(*servable, options.device, [&](int64_t begin, int64_t count) {
            std::vector<int64_t> part(rows.begin() + begin, rows.begin() + begin + count);
            return servable->prepare(transform::BoundCsvRows(chunk, map, part));
          }, n);
          for (int64_t r = 0; r < std::min<int64_t>(options.warmup_rows, n); ++r)
            warmup.push_back(warmup_json(mapped, r, servable->signature(), static_cast<int>(map.size())));
          throw StopReading{};
        });
      } catch (const StopReading&) {
      }
    } else {
      const IdxData& idx = config.data().idx();
      const bool eval = data.eval != nullptr;
      auto source = eval ? data.eval : data.train;
      if (!source) source = models::load_training_data(config, true).train;
      const std::string images = eval ? idx.eval_images() : idx.train_images();
      what = images;
      Tensor raw = io::read_idx(images);
      // The rows the training path reads: max_eval_examples / max_train_examples may cut the file.
      const int64_t n = std::min({options.check_rows, raw.shape()[0], source->size()});
      training = run_training_path(trainer, source, n, config.batch_size(), config.seed());
      write_manifest();
      auto servable = Servable::load(staging);
      const int64_t per = servable->tensor_elements();
      const uint8_t* px = raw.data<uint8_t>();
      serving = run_servable_path(*servable, options.device, [&](int64_t begin, int64_t count) {
        std::vector<float> v(px + begin * per, px + (begin + count) * per);
        return servable->prepare_tensor(v, count);
      }, n);
      std::string one = "[";
      for (int64_t i = 0; i < per; ++i) one += (i ? "," : "") + std::to_string(px[i]);
      warmup.push_back(one + "]");
    }
    compare(training, serving, width, what);
    result.checked_rows = static_cast<int64_t>(training.size()) / width;
    for (std::string& w : warmup) m.add_warmup_instances(std::move(w));
    write_manifest();
    Servable::load(staging);  // the final manifest loads
    io::fsync_directory(staging);
    // Never over another directory: the number was reserved, so only a hand-made directory or an
    // export by an older kiln can be there.
    if (!io::rename_no_replace(staging, result.dir))
      fail("version directory ", result.dir, " appeared while this export ran (another export?); nothing was published");
    io::fsync_directory(options.base_path);
  } catch (const fs::filesystem_error& e) {
    // A full disk or a permission problem, not a bug in Kiln: a user error, one line.
    fs::remove_all(staging, ec);
    fail("export to ", options.base_path, " failed: ", e.code().message(), " (", e.path1().string(), ")");
  } catch (...) {
    fs::remove_all(staging, ec);
    throw;
  }
  return result;
}

}  // namespace kiln::runtime
