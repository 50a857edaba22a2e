#pragma once
// A study on disk: STUDY_DIR/study.db, SQLite in WAL mode. Tables:
//   study        the spec (text format), the working directory trials run in, creation time
//   drivers      each `kiln tune` process on the study: host, pid, pid start time, heartbeat
//   trials       number, state, parameters (JSON), final value, start/end, exit code, reason,
//                attempts, the owning driver and the trial's process (pid, start time), and the
//                time its suggestion took (a column that studies made before it lack until a
//                driver adds it; their trials' times are unknown)
//   measurements intermediate values (trial, step, value)
// Every state change is one committed transaction, so a kill -9 of a driver loses nothing that
// was recorded. Suggestion and insertion of a trial happen in one write transaction
// (claim_trial): a second driver waits for the lock and then sees the first one's trial, so two
// drivers never get the same suggestion.
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "proto/study.pb.h"
#include "tuning/assignment.h"
#include "tuning/median_stopping.h"
#include "tuning/study_db.h"
#include "tuning/suggester.h"

namespace kiln::tuning {

enum class TrialState { kQueued, kRunning, kCompleted, kFailed, kStopped };
const char* trial_state_name(TrialState s);

struct Trial {
  int64_t id = 0;
  int64_t number = 0;  // 0, 1, 2, ... in order of creation
  TrialState state = TrialState::kQueued;
  Assignment params;
  std::optional<double> value;  // completed: the last reported value; stopped: the last before the stop
  double created = 0, started = 0, finished = 0;  // Unix seconds, 0 = not yet
  std::optional<int64_t> exit_code;
  std::string reason;  // why it failed or stopped, or why it was requeued
  int64_t attempts = 0;
  std::optional<int64_t> driver_id, pid, pid_start;
  // How long the suggester took to propose the parameters (fitting the GP, optimising the
  // acquisition); unknown for trials of a study made before it was recorded.
  std::optional<double> suggestion_seconds;
  double duration() const { return finished > 0 && started > 0 ? finished - started : 0; }
};

// Why claim_trial returned no trial.
enum class ClaimOutcome { kClaimed, kParallelLimit, kBudgetSpent, kTooManyFailures, kSpaceExhausted };

class StudyStore {
 public:
  static std::string database_path(const std::string& study_dir);
  // Creates STUDY_DIR/study.db holding `spec`, atomically: the schema and the study are written
  // to a temporary database (STUDY_DIR/study.db.tmp-PID) that is renamed into place, so study.db
  // exists only with a study in it, whatever kills the process or fills the disk midway. A
  // study.db without a study (an interrupted creation by an older kiln) is replaced; temporary
  // databases of dead processes are removed. Returns false, changing nothing, when the
  // directory already holds a study.
  // With `storage` (a postgresql:// URL, docs/tuning.md) the study lives in that database instead,
  // in a schema named after the study directory (tuning/postgres_db.h), created in one
  // transaction, so it too exists only whole.
  static bool create(const std::string& study_dir, const StudySpec& spec, const std::string& working_dir,
                     const std::string& storage = "");
  // True when STUDY_DIR/study.db exists and holds a study.
  static bool holds_study(const std::string& study_dir, const std::string& storage = "");
  // Opens the study in `study_dir`; kiln::Error when there is none.
  explicit StudyStore(const std::string& study_dir, const std::string& storage = "");
  StudySpec spec();
  // Replaces the stored spec (resuming with new limits); the caller checks that the search space
  // is unchanged.
  void update_spec(const StudySpec& spec);
  std::string working_dir();

  int64_t register_driver();
  void heartbeat(int64_t driver_id);
  void unregister_driver(int64_t driver_id);

  // RUNNING trials whose driver is gone (its process no longer exists on this host, or its
  // heartbeat is older than `stale_seconds`): those `adopt` accepts (called with the trial and
  // whether its driver ran on this host) pass to `driver_id` and stay RUNNING; the others become
  // QUEUED again. Both are returned as they were, so the caller can watch the adopted ones and
  // end what is left of the requeued ones' processes.
  struct Reclaimed {
    std::vector<Trial> adopted, requeued;
  };
  using AdoptFn = std::function<bool(Trial&, bool same_host)>;  // may fill in pid and pid_start
  Reclaimed reclaim_orphans(int64_t driver_id = 0, const AdoptFn& adopt = {}, double stale_seconds = 120);

  // One write transaction: a QUEUED trial if there is one, else a new trial from `suggester`,
  // recorded as RUNNING for `driver_id` with the time the suggestion took — unless the study's
  // limits say to wait or stop. A new trial is the one claimed with attempts == 1.
  ClaimOutcome claim_trial(int64_t driver_id, Suggester& suggester, Trial& claimed);

  void set_process(int64_t trial_id, int64_t pid, int64_t pid_start, double started);
  void add_measurements(int64_t trial_id, const std::vector<MetricPoint>& points);
  void finish_trial(int64_t trial_id, TrialState state, std::optional<double> value, std::optional<int64_t> exit_code,
                    const std::string& reason);
  // Back to QUEUED (the driver was interrupted): the next driver runs it again.
  void requeue(int64_t trial_id, const std::string& reason);

  std::vector<Trial> trials();
  // Measurements of the trials in `state`, by trial id.
  std::vector<std::pair<int64_t, Curve>> curves(TrialState state);
  Curve curve(int64_t trial_id);

 private:
  Trial read_trial(StudyDb::Statement& s) const;
  std::vector<Trial> trials_locked();
  // The columns read_trial reads, NULL for the suggestion time where the column is missing.
  std::string trial_columns() const;
  bool has_suggestion_column();
  // Adds the suggestion time column to a study made by an older kiln.
  void add_suggestion_column();

  std::unique_ptr<StudyDb> db_;
  StudySpec spec_;
  bool spec_loaded_ = false;
  bool suggestion_column_ = false;
};

}  // namespace kiln::tuning
