#pragma once
// The driver: runs a study's trials until its budget is spent, its space is exhausted or too
// many trials failed. Up to max_parallel_trials trial processes run at once (counted over every
// driver on the study). Each trial gets these environment variables:
//   KILN_TUNE_STUDY, KILN_TUNE_STUDY_DIR, KILN_TUNE_TRIAL_ID (its number), KILN_TUNE_TRIAL_DIR,
//   KILN_TUNE_PARAMS (JSON object of the active parameters), KILN_TUNE_METRIC (the tag), and
//   KILN_TUNE_METRICS_FILE, to which it appends JSON lines {"step": N, "<tag>": value}.
// Exit code 0 with a metric -> COMPLETED (value = the last reported); anything else -> FAILED
// with the reason; ended by the median stopping rule -> STOPPED. stdout, stderr, the metrics file
// and the command line are kept in STUDY_DIR/trials/<number>/.
//
// Interruptions: on SIGINT or SIGTERM the driver sends SIGTERM to its running trials (SIGKILL
// after stop_grace_seconds) and puts them back in the queue. After a kill -9 of the driver its
// trials are still RUNNING in the database and their processes go on; each runs under a wrapper
// shell that records its exit code in trials/<number>/outcome when it ends. The next driver on
// the study (kiln tune --resume) adopts a trial that left an outcome (recording it) or whose
// process still runs on this host (waiting for it); only a trial whose process ended without
// an outcome runs again, under the same trial number. Completed trials are never re-run.
#include <cstdio>
#include <string>

namespace kiln::tuning {

struct DriverOptions {
  std::string study_dir;    // absolute; holds study.db (created by the caller) and trials/N/
  std::string storage;      // a postgresql:// URL holding the study instead of study.db; "" = SQLite
  std::string kiln_binary;  // what {kiln} expands to
  bool quiet = false;       // no table, only the summary
  double poll_seconds = 0.05;
  std::FILE* out = stdout;
};

// Returns the process exit code: 0 when the study ran out of budget or space, 1 when it stopped
// because max_failed_trials trials failed, 130 when interrupted by SIGINT/SIGTERM.
int run_study(const DriverOptions& options);

}  // namespace kiln::tuning
