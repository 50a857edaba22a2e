// kiln tune: runs a hyper-parameter study (StudySpec) to the end, resumes one, or reports on one.
#include <google/protobuf/util/message_differencer.h>
#include <unistd.h>

#include <climits>
#include <cstdio>
#include <filesystem>
#include <sstream>

#include "cli/verbs.h"
#include "core/error.h"
#include "io/atomic_file.h"
#include "io/config_file.h"
#include "tuning/postgres_db.h"
#include "tuning/study_driver.h"
#include "tuning/study_report.h"
#include "tuning/study_spec.h"
#include "tuning/study_store.h"

namespace kiln::cli {

namespace fs = std::filesystem;

namespace {

struct TuneOptions {
  std::string config, study_dir, report, csv, png, storage;
  std::vector<std::string> overrides;
  bool resume = false, quiet = false;
};

std::string self_binary() {
  char buf[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return "kiln";
  return std::string(buf, static_cast<size_t>(n));
}


int report(const TuneOptions& o) {
  std::string dir = fs::absolute(o.report).lexically_normal().string();
  tuning::StudyStore store(dir, o.storage);
  StudySpec spec = store.spec();
  std::vector<tuning::Trial> trials = store.trials();
  std::fputs(tuning::study_report_text(spec, trials).c_str(), stdout);
  std::string csv = o.csv.empty() ? dir + "/report.csv" : o.csv;
  std::string png = o.png.empty() ? dir + "/report.png" : o.png;
  io::write_file_atomic(csv, tuning::study_csv(spec, trials));
  io::write_file_atomic(png, tuning::study_plot_png(spec, trials));
  std::printf("\nwrote %s and %s\n", csv.c_str(), png.c_str());
  return 0;
}

// On --resume, only the limits may change; the search space, goal and command may not.
void check_resumable(const StudySpec& stored, const StudySpec& wanted, const std::string& dir) {
  google::protobuf::util::MessageDifferencer diff;
  const auto* d = StudySpec::descriptor();
  for (const char* f : {"max_trials", "max_parallel_trials", "max_failed_trials", "trial_timeout_seconds",
                        "enable_trial_early_stopping", "early_stopping", "stop_grace_seconds"})
    diff.IgnoreField(d->FindFieldByName(f));
  // Only what differs (not the limits it was told to ignore), on one line as errors are.
  diff.set_report_ignores(false);
  std::string report;
  diff.ReportDifferencesToString(&report);
  if (diff.Compare(stored, wanted)) return;
  std::string differences;
  std::istringstream lines(report);
  for (std::string line; std::getline(lines, line);)
    if (!line.empty()) differences += (differences.empty() ? "" : "; ") + line;
  fail("the study in ", dir, " was created from a different spec; on --resume only the limits (max_trials, "
       "max_parallel_trials, max_failed_trials, trial_timeout_seconds, early stopping) may change: ", differences);
}

int run(const TuneOptions& o) {
  if (o.config.empty() && !o.resume) fail("kiln tune needs --config STUDY (or --resume --study-dir DIR, or --report DIR)");
  StudySpec spec;
  if (!o.config.empty()) spec = tuning::load_study_spec(o.config, o.overrides);
  if (o.study_dir.empty() && o.config.empty()) fail("--resume without --config needs --study-dir");
  std::string dir = fs::absolute(o.study_dir.empty() ? "runs/tune/" + spec.name() : o.study_dir).lexically_normal().string();
  if (!spec.train_config().empty()) spec.set_train_config(fs::absolute(spec.train_config()).lexically_normal().string());
  auto already_holds_one = [&] { fail(dir, " already holds a study; pass --resume to continue it, or choose another --study-dir"); };
  bool exists = tuning::StudyStore::holds_study(dir, o.storage);
  if (exists && !o.resume) already_holds_one();
  // --resume with --config also starts a study that was never created (or whose creation was
  // interrupted), so a driver restarted by a supervisor after a kill -9 goes on either way.
  if (!exists && o.resume && o.config.empty())
    fail("no study to resume in ", dir, "; run kiln tune --config STUDY --study-dir ", dir, " to create it");
  if (!exists && !tuning::StudyStore::create(dir, spec, fs::current_path().string(), o.storage)) {
    if (!o.resume) already_holds_one();
    exists = true;  // another driver created it meanwhile: join it
  }
  if (exists) {
    tuning::StudyStore store(dir, o.storage);
    StudySpec stored = store.spec();
    StudySpec wanted = stored;
    if (!o.config.empty()) {
      wanted = spec;
    } else {
      io::apply_overrides(o.overrides, wanted);
      tuning::validate_study_spec(wanted, "--set");
    }
    check_resumable(stored, wanted, dir);
    store.update_spec(wanted);
  }
  tuning::DriverOptions d;
  d.study_dir = dir;
  d.storage = o.storage;
  d.kiln_binary = self_binary();
  d.quiet = o.quiet;
  int rc = tuning::run_study(d);
  if (rc != 130)
    std::printf("report: kiln tune --report %s%s\n", dir.c_str(),
                o.storage.empty() ? "" : str_cat(" --storage ", tuning::redact_url(o.storage)).c_str());
  return rc;
}

}  // namespace

Action add_tune(CLI::App& app) {
  auto* cmd = app.add_subcommand("tune", "Search hyper-parameters: run trials of a command (default kiln train), Bayesian (GP + LogEI)");
  auto o = std::make_shared<TuneOptions>();
  cmd->add_option("--config", o->config, "StudySpec file (.pbtxt or .json): goal, metric, parameters, budget, trial command");
  cmd->add_option("--set", o->overrides, "Override a spec field: path.to.field=value (repeatable), e.g. --set max_trials=40");
  cmd->add_option("--study-dir", o->study_dir, "Where the study lives (study.db, trials/N/); default runs/tune/NAME");
  cmd->add_option("--storage", o->storage,
                  "postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE: keep the study in PostgreSQL, shared by drivers on "
                  "several machines (each with the same --study-dir name for its trials' files); default: "
                  "STUDY_DIR/study.db (SQLite). See docs/tuning.md")
      ->envname("KILN_TUNE_STORAGE");
  cmd->add_flag("--resume", o->resume,
                "Continue the study in --study-dir: trials a dead driver left are adopted (finished or still running) or run again");
  cmd->add_option("--report", o->report, "Print the study in DIR and write DIR/report.csv and DIR/report.png")->type_name("DIR");
  cmd->add_option("--csv", o->csv, "With --report: CSV path (default DIR/report.csv)");
  cmd->add_option("--png", o->png, "With --report: plot path (default DIR/report.png)");
  cmd->add_flag("--quiet", o->quiet, "Print only the summary, not a line per trial start and end");
  cmd->footer(
      "Each trial runs the spec's command (default: kiln train --config TRAIN_CONFIG --set FIELD=VALUE ...) in a process\n"
      "group of its own, with KILN_TUNE_PARAMS (JSON) and KILN_TUNE_METRICS_FILE set; it appends JSON lines\n"
      "{\"step\": N, \"<metric>\": value} to that file (kiln train does so by itself). Exit code 0 with a metric = completed.\n"
      "The study is a SQLite database (WAL): kill the driver at any time and run again with --resume; several drivers\n"
      "may work on one study at once. Ctrl-C stops the running trials and queues them for --resume.\n"
      "Exit code: 0 done, 1 bad spec or max_failed_trials reached, 130 interrupted. Docs: docs/tuning.md.");
  return [o] { return o->report.empty() ? run(*o) : report(*o); };
}

}  // namespace kiln::cli
