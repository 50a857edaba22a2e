#include "tuning/study_driver.h"

#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <csignal>
#include <filesystem>
#include <list>
#include <map>
#include <memory>
#include <thread>

#include "core/error.h"
#include "io/atomic_file.h"
#include "tuning/command_template.h"
#include "tuning/json_object.h"
#include "tuning/median_stopping.h"
#include "tuning/metrics_reader.h"
#include "tuning/search_space.h"
#include "tuning/study_spec.h"
#include "tuning/study_store.h"
#include "tuning/trial_process.h"
#include "tuning/trial_table.h"

namespace kiln::tuning {

namespace fs = std::filesystem;

namespace {

volatile std::sig_atomic_t g_interrupted = 0;
void on_signal(int) { g_interrupted = 1; }

// SIGINT/SIGTERM set a flag for the loop; the previous handlers come back at scope exit.
class InterruptGuard {
 public:
  InterruptGuard() {
    g_interrupted = 0;
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int_);
    sigaction(SIGTERM, &sa, &old_term_);
  }
  ~InterruptGuard() {
    sigaction(SIGINT, &old_int_, nullptr);
    sigaction(SIGTERM, &old_term_, nullptr);
  }

 private:
  struct sigaction old_int_ {}, old_term_ {};
};

double wall_now() { return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count(); }
double mono_now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

struct RunningTrial {
  Trial trial;
  TrialProcess process;
  std::unique_ptr<MetricsReader> metrics;
  Curve curve;
  double started_mono = 0;
  // Set when the driver ends the trial (early stopping, timeout, bad metrics): the state to
  // record and why.
  std::optional<TrialState> end_state;
  std::string end_reason;
  double term_sent = 0;  // monotonic time of the SIGTERM
};

class Driver {
 public:
  explicit Driver(const DriverOptions& o)
      : opt_(o), store_(o.study_dir, o.storage), spec_(store_.spec()), space_(spec_), suggester_(make_suggester(spec_)) {}

  int run() {
    InterruptGuard guard;
    driver_id_ = store_.register_driver();
    workdir_ = store_.working_dir();
    reclaim();
    if (!opt_.quiet) print(trial_table_header(spec_.hyperparameter_metric_tag()));
    ClaimOutcome last = ClaimOutcome::kClaimed;
    double next_heartbeat = 0, next_reclaim = mono_now() + 10;
    while (true) {
      if (g_interrupted) return shutdown();
      double now = mono_now();
      if (now >= next_heartbeat) {
        store_.heartbeat(driver_id_);
        next_heartbeat = now + 2;
      }
      if (now >= next_reclaim) {
        reclaim();
        next_reclaim = now + 10;
      }
      poll_running();
      while (!g_interrupted && static_cast<int>(running_.size()) < spec_.max_parallel_trials()) {
        Trial t;
        last = store_.claim_trial(driver_id_, *suggester_, t);
        if (last != ClaimOutcome::kClaimed) break;
        // The suggester's cost grows with the trials (GP fit): users want to see it. A trial
        // with attempts > 1 was queued, not suggested now.
        if (t.attempts == 1 && t.suggestion_seconds) suggestion_seconds_.push_back(*t.suggestion_seconds);
        start(std::move(t));
      }
      if (running_.empty() && last != ClaimOutcome::kClaimed && last != ClaimOutcome::kParallelLimit) {
        // Nothing left for this driver to start. It still stays while other drivers' trials run,
        // so that a driver killed on the way has its trials finished (adopted or run again) now,
        // not by the next --resume: same host at once, another host after its heartbeat goes stale.
        if (!others_running()) break;
        next_reclaim = std::min(next_reclaim, now + 1);
      }
      // Waiting only on other drivers' trials: look less often.
      std::this_thread::sleep_for(std::chrono::duration<double>(running_.empty() ? 0.5 : opt_.poll_seconds));
    }
    store_.unregister_driver(driver_id_);
    return summarize(last);
  }

 private:
  void print(const std::string& line) {
    std::fprintf(opt_.out, "%s\n", line.c_str());
    std::fflush(opt_.out);
  }

  // Trials of drivers that died. One that left its outcome (it finished while no driver ran) or
  // whose process still runs on this host is adopted: its outcome is recorded, or it is watched
  // to the end, never started again. The others (the process ended without an outcome, or ran
  // on a host whose driver stopped its heartbeat) run again; what is left of them is ended.
  void reclaim() {
    auto adoptable = [this](Trial& t, bool same_host) {
      if (fs::exists(outcome_path(t))) return true;
      if (!same_host) return false;
      if (t.pid && t.pid_start) return process_alive(static_cast<pid_t>(*t.pid), *t.pid_start);
      // Started, but its driver died before recording the pid: found by its attempt's entry.
      auto leader = find_group_leader_by_env(attempt_env(t));
      if (leader) t.pid = leader->first, t.pid_start = leader->second;
      return leader.has_value();
    };
    StudyStore::Reclaimed r = store_.reclaim_orphans(driver_id_, adoptable);
    for (const Trial& t : r.requeued) {
      if (t.pid && t.pid_start) terminate_orphan_group(static_cast<pid_t>(*t.pid), *t.pid_start, spec_.stop_grace_seconds());
      if (!opt_.quiet) print(str_cat("trial ", t.number, " was running under a driver that is gone and left no outcome; it runs again"));
    }
    for (const Trial& t : r.adopted) adopt(t);
  }

  bool others_running() {
    for (const Trial& t : store_.trials())
      if (t.state == TrialState::kRunning && t.driver_id != driver_id_) return true;
    return false;
  }

  std::string outcome_path(const Trial& t) const { return trial_dir(t) + "/outcome"; }
  // An environment entry unique to this attempt of the trial (see find_group_leader_by_env).
  std::string attempt_env(const Trial& t) const {
    return str_cat("KILN_TUNE_ATTEMPT=", fs::weakly_canonical(opt_.study_dir).string(), "#", t.id, "#", t.attempts);
  }

  // The trial's exit code, as its wrapper recorded it (see wrap_command), or nullopt.
  std::optional<ExitStatus> read_outcome(const Trial& t) const {
    std::error_code ec;
    if (!fs::exists(outcome_path(t), ec)) return std::nullopt;
    std::string text = io::read_file(outcome_path(t));
    char* end = nullptr;
    long code = std::strtol(text.c_str(), &end, 10);
    if (end == text.c_str()) return std::nullopt;
    ExitStatus e;
    e.code = static_cast<int>(code);
    return e;
  }

  void adopt(Trial t) {
    auto r = std::make_unique<RunningTrial>();
    r->metrics = std::make_unique<MetricsReader>(trial_dir(t) + "/metrics.jsonl", spec_.hyperparameter_metric_tag());
    r->process = TrialProcess::adopt(t.pid ? static_cast<pid_t>(*t.pid) : 0, t.pid_start.value_or(0));
    // The timeout counts from the trial's start, not from the adoption.
    r->started_mono = mono_now() - std::max(0.0, t.started > 0 ? wall_now() - t.started : 0.0);
    if (!opt_.quiet)
      print(str_cat("trial ", t.number, " was running under a driver that is gone; ",
                    fs::exists(outcome_path(t)) ? "it finished meanwhile: its outcome is recorded" : "it still runs: waiting for it"));
    t.driver_id = driver_id_;
    r->trial = std::move(t);
    running_.push_back(std::move(r));
  }

  // The trial's command under a wrapper shell that records its exit code in the trial
  // directory (outcome, written by rename), so that a trial that ends while no driver runs
  // leaves its outcome for the next one. The command runs in the background of the wrapper and
  // is waited for again after each signal: a SIGTERM to the group reaches the command, and the
  // wrapper (which traps it) outlives it, so the driver still sees the group end with it.
  std::string wrap_command(const Trial& t, const std::string& command) const {
    const std::string tmp = shell_quote(outcome_path(t) + ".tmp"), done = shell_quote(outcome_path(t));
    return "trap : INT TERM HUP\n"
           "/bin/sh -c " + shell_quote(command) + " &\n"
           "pid=$!\n"
           "while :; do wait $pid; rc=$?; kill -0 $pid 2>/dev/null || break; done\n"
           "printf '%s\\n' \"$rc\" > " + tmp + " && mv -f " + tmp + " " + done + "\n"
           "exit $rc\n";
  }

  std::string trial_dir(const Trial& t) const { return opt_.study_dir + "/trials/" + std::to_string(t.number); }

  std::string command_for(const Trial& t) const {
    std::map<std::string, std::string> values;
    std::string set_args;
    for (const auto& p : space_.params()) {
      auto it = t.params.find(p.name);
      values[p.name] = it == t.params.end() ? "''" : shell_quote(format_value(it->second));
      if (it != t.params.end())
        set_args += (set_args.empty() ? "--set " : " --set ") + shell_quote(p.config_field + "=" + format_value(it->second));
    }
    values["set_args"] = set_args;
    values["kiln"] = shell_quote(opt_.kiln_binary);
    values["train_config"] = shell_quote(spec_.train_config());
    values["trial_id"] = std::to_string(t.number);
    values["trial_dir"] = shell_quote(trial_dir(t));
    values["study_dir"] = shell_quote(opt_.study_dir);
    return expand_template(effective_command(spec_), values);
  }

  void start(Trial t) {
    std::string dir = trial_dir(t);
    fs::create_directories(dir);
    std::string command = command_for(t);
    io::write_file_atomic(dir + "/command.sh", command + "\n");
    std::error_code ec;
    fs::remove(outcome_path(t), ec);  // an earlier attempt's
    SpawnRequest req;
    req.command = wrap_command(t, command);
    req.working_dir = workdir_;
    req.stdout_path = dir + "/stdout.txt";
    req.stderr_path = dir + "/stderr.txt";
    std::string metrics = dir + "/metrics.jsonl";
    req.extra_env = {"KILN_TUNE_STUDY=" + spec_.name(),
                     "KILN_TUNE_STUDY_DIR=" + opt_.study_dir,
                     "KILN_TUNE_TRIAL_ID=" + std::to_string(t.number),
                     "KILN_TUNE_TRIAL_DIR=" + dir,
                     "KILN_TUNE_PARAMS=" + assignment_to_json(t.params),
                     "KILN_TUNE_METRIC=" + spec_.hyperparameter_metric_tag(),
                     "KILN_TUNE_METRICS_FILE=" + metrics,
                     attempt_env(t)};
    auto r = std::make_unique<RunningTrial>();
    r->metrics = std::make_unique<MetricsReader>(metrics, spec_.hyperparameter_metric_tag());
    try {
      r->process = TrialProcess::spawn(req);
    } catch (const Error& e) {
      store_.finish_trial(t.id, TrialState::kFailed, std::nullopt, std::nullopt, e.what());
      return;
    }
    t.started = wall_now();
    store_.set_process(t.id, r->process.pid(), r->process.start_time(), t.started);
    r->trial = std::move(t);
    r->started_mono = mono_now();
    if (!opt_.quiet) print(trial_table_row(spec_, r->trial));
    running_.push_back(std::move(r));
  }

  // Ends a trial from the driver's side: SIGTERM now, SIGKILL after the grace period.
  void end_trial(RunningTrial& r, TrialState state, const std::string& reason) {
    if (r.end_state) return;
    r.end_state = state;
    r.end_reason = reason;
    r.term_sent = mono_now();
    r.process.signal_group(SIGTERM);
  }

  void refresh_completed_curves() {
    completed_curves_.clear();
    for (auto& [id, c] : store_.curves(TrialState::kCompleted)) completed_curves_.push_back(std::move(c));
    curves_refreshed_ = mono_now();
  }

  void poll_running() {
    bool early_stopping = spec_.enable_trial_early_stopping();
    if (early_stopping && mono_now() - curves_refreshed_ > 5) refresh_completed_curves();
    for (auto it = running_.begin(); it != running_.end();) {
      RunningTrial& r = **it;
      std::optional<ExitStatus> exit = r.process.poll();
      if (exit && exit->unknown) {
        // An adopted trial ended: its wrapper recorded how, unless it was killed itself.
        exit = read_outcome(r.trial);
        if (!exit) {
          store_.add_measurements(r.trial.id, r.metrics->poll(true));
          store_.requeue(r.trial.id, "requeued: its process ended without leaving an outcome");
          if (!opt_.quiet) print(str_cat("trial ", r.trial.number, " ended without leaving an outcome; it runs again"));
          it = running_.erase(it);
          continue;
        }
      }
      std::vector<MetricPoint> fresh = r.metrics->poll(exit.has_value());
      store_.add_measurements(r.trial.id, fresh);
      r.curve.insert(r.curve.end(), fresh.begin(), fresh.end());
      if (!r.metrics->error().empty()) end_trial(r, TrialState::kFailed, r.metrics->error());
      double age = mono_now() - r.started_mono;
      if (spec_.trial_timeout_seconds() > 0 && age > spec_.trial_timeout_seconds())
        end_trial(r, TrialState::kFailed, str_cat("timed out after ", format_duration(spec_.trial_timeout_seconds())));
      if (early_stopping && !fresh.empty() && !r.end_state) {
        auto why = median_stopping_decision(r.curve, completed_curves_, spec_.early_stopping(), minimizing(spec_));
        if (why) end_trial(r, TrialState::kStopped, *why);
      }
      if (r.end_state && !exit && mono_now() - r.term_sent > spec_.stop_grace_seconds()) r.process.signal_group(SIGKILL);
      if (!exit) {
        ++it;
        continue;
      }
      finish(r, *exit);
      it = running_.erase(it);
      if (early_stopping) refresh_completed_curves();
    }
  }

  void finish(RunningTrial& r, const ExitStatus& exit) {
    Trial& t = r.trial;
    std::optional<double> value = r.metrics->last_value();
    const std::string& tag = spec_.hyperparameter_metric_tag();
    if (r.end_state) {
      t.state = *r.end_state;
      t.reason = r.end_reason;
      if (t.state != TrialState::kStopped) value.reset();
    } else if (!exit.success()) {
      t.state = TrialState::kFailed;
      t.reason = exit.describe() + " (see " + trial_dir(t) + "/stderr.txt)";
      value.reset();
    } else if (!value) {
      t.state = TrialState::kFailed;
      t.reason = "exited 0 without reporting \"" + tag + "\" in KILN_TUNE_METRICS_FILE";
    } else {
      t.state = TrialState::kCompleted;
      t.reason.clear();
    }
    t.value = value;
    t.exit_code = exit.signal ? std::nullopt : std::optional<int64_t>(exit.code);
    t.finished = wall_now();
    store_.finish_trial(t.id, t.state, t.value, t.exit_code, t.reason);
    if (!opt_.quiet) print(trial_table_row(spec_, t));
  }

  int shutdown() {
    print("interrupted: stopping the running trials; `kiln tune --resume` runs them again");
    for (auto& r : running_) r->process.signal_group(SIGTERM);
    double deadline = mono_now() + spec_.stop_grace_seconds();
    for (auto& r : running_) {
      while (!r->process.poll() && mono_now() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(20));
      if (!r->process.poll()) {
        r->process.signal_group(SIGKILL);
        r->process.wait();
      }
      store_.add_measurements(r->trial.id, r->metrics->poll(true));
      store_.requeue(r->trial.id, "requeued: the driver was interrupted");
    }
    running_.clear();
    store_.unregister_driver(driver_id_);
    return 130;
  }

  int summarize(ClaimOutcome last) {
    std::vector<Trial> all = store_.trials();
    print("study " + spec_.name() + ": " + trial_counts_text(all));
    std::string best = best_trial_line(spec_, all);
    if (!best.empty()) print(best);
    std::string times = suggestion_times_line(suggestion_seconds_, "by this driver");
    if (!times.empty()) print(times);
    if (last == ClaimOutcome::kSpaceExhausted) print("the search space has no untried point left");
    if (last == ClaimOutcome::kTooManyFailures) {
      int failed = static_cast<int>(std::count_if(all.begin(), all.end(), [](const Trial& t) { return t.state == TrialState::kFailed; }));
      print(str_cat("study stopped: ", failed, " trials failed (max_failed_trials ",
                    effective_max_failed_trials(spec_), "); see the reasons with kiln tune --report ", opt_.study_dir));
      return 1;
    }
    return 0;
  }

  DriverOptions opt_;
  StudyStore store_;
  StudySpec spec_;
  SearchSpace space_;
  std::unique_ptr<Suggester> suggester_;
  std::vector<double> suggestion_seconds_;  // of the trials this driver's suggester proposed
  int64_t driver_id_ = 0;
  std::string workdir_;
  std::list<std::unique_ptr<RunningTrial>> running_;
  std::vector<Curve> completed_curves_;
  double curves_refreshed_ = -1e9;
};

}  // namespace

int run_study(const DriverOptions& options) { return Driver(options).run(); }

}  // namespace kiln::tuning
