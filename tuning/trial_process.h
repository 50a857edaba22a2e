#pragma once
// A trial's process: `/bin/sh -c COMMAND` started with posix_spawn as the leader of a new process
// group, so that stopping a trial reaches everything it started (mpirun's ranks, a training
// script's workers). stdin is /dev/null; stdout and stderr append to files in the trial's
// directory. Signals the driver blocks or ignores are reset to their defaults in the child.
#include <sys/types.h>

#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace kiln::tuning {

struct SpawnRequest {
  std::string command;                 // run by /bin/sh -c
  std::string working_dir;             // "" = the driver's
  std::vector<std::string> extra_env;  // KEY=VALUE, added to (and overriding) the driver's environment
  std::string stdout_path, stderr_path;
};

struct ExitStatus {
  int code = -1;    // exit code, -1 when killed by a signal
  int signal = 0;   // the signal that killed it, 0 when it exited
  bool unknown = false;  // an adopted process ended: the caller reads the trial's outcome file
  bool success() const { return code == 0 && !unknown; }
  std::string describe() const;  // "exit code 3", "killed by signal 15 (Terminated)"
};

class TrialProcess {
 public:
  static TrialProcess spawn(const SpawnRequest& request);
  // A trial process started by a driver that is gone (same host): not this process's child, so
  // poll() sees it end (the leader no longer exists with `start_time`) but cannot learn how; its
  // status is then ExitStatus::unknown() and the caller reads the outcome the trial left.
  static TrialProcess adopt(pid_t pid, int64_t start_time);

  pid_t pid() const { return pid_; }
  // Process start time (clock ticks since boot, from /proc): with the pid it identifies this
  // process even after the pid is reused.
  int64_t start_time() const { return start_time_; }

  // The exit status once the leader has exited, else nullopt. On exit, whatever is left of the
  // process group (background children) is killed before the leader is reaped, so the group id
  // cannot have been reused yet.
  std::optional<ExitStatus> poll();
  // Blocks until the leader exits.
  ExitStatus wait();
  // SIGTERM / SIGKILL to the whole group.
  void signal_group(int sig) const;

 private:
  pid_t pid_ = -1;
  int64_t start_time_ = 0;
  bool adopted_ = false;
  std::optional<ExitStatus> status_;
};

// /proc/PID/stat's start time, 0 when no such process exists.
int64_t process_start_time(pid_t pid);
// True when PID exists and started at `start_time` (the same process, not a reused pid).
bool process_alive(pid_t pid, int64_t start_time);
// The live process-group leader whose environment holds `entry` (KEY=VALUE, exactly), as
// (pid, start time). A driver that dies after starting a trial but before recording its pid
// leaves the trial findable this way: each attempt's environment carries a unique entry.
std::optional<std::pair<pid_t, int64_t>> find_group_leader_by_env(const std::string& entry);
// SIGTERM to a group led by (pid, start_time) if that leader still exists; SIGKILL after
// `grace_seconds` if it has not exited. For trials left behind by a driver that died.
void terminate_orphan_group(pid_t pid, int64_t start_time, double grace_seconds);

}  // namespace kiln::tuning
