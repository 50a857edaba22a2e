#include "tuning/trial_process.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "core/error.h"

extern char** environ;

namespace kiln::tuning {

namespace {

struct ProcStat {
  char state = '?';
  pid_t pgrp = 0;
  int64_t start_time = 0;
};

// Fields of /proc/PID/stat after the command name (which may contain spaces and parentheses).
std::optional<ProcStat> read_proc_stat(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(in, line)) return std::nullopt;
  size_t close = line.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::istringstream rest(line.substr(close + 2));
  std::vector<std::string> f;
  for (std::string w; rest >> w;) f.push_back(w);
  if (f.size() < 20) return std::nullopt;
  // f[0] is field 3 (state): pgrp is field 5, starttime field 22.
  return ProcStat{f[0][0], static_cast<pid_t>(std::stol(f[2])), std::stoll(f[19])};
}

// Live processes in group `pgrp` that started no earlier than its leader did (zombies are dead
// already and wait for whoever adopted them).
std::vector<pid_t> group_members(pid_t pgrp, int64_t leader_start) {
  std::vector<pid_t> out;
  DIR* d = opendir("/proc");
  if (!d) return out;
  while (dirent* e = readdir(d)) {
    char* end;
    long pid = std::strtol(e->d_name, &end, 10);
    if (*end || pid <= 0) continue;
    auto st = read_proc_stat(static_cast<pid_t>(pid));
    if (st && st->state != 'Z' && st->pgrp == pgrp && st->start_time >= leader_start) out.push_back(static_cast<pid_t>(pid));
  }
  closedir(d);
  return out;
}

ExitStatus decode_status(int status) {
  ExitStatus s;
  if (WIFEXITED(status)) s.code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) s.signal = WTERMSIG(status);
  return s;
}

struct SpawnAttrs {
  posix_spawnattr_t attr;
  posix_spawn_file_actions_t actions;
  SpawnAttrs() {
    posix_spawnattr_init(&attr);
    posix_spawn_file_actions_init(&actions);
  }
  ~SpawnAttrs() {
    posix_spawnattr_destroy(&attr);
    posix_spawn_file_actions_destroy(&actions);
  }
};

}  // namespace

std::string ExitStatus::describe() const {
  if (signal) return str_cat("killed by signal ", signal, " (", strsignal(signal), ")");
  // The trial's shell reports a child killed by signal N as 128 + N.
  if (code > 128 && code - 128 < NSIG) return str_cat("exit code ", code, " (a child killed by signal ", code - 128, ": ", strsignal(code - 128), ")");
  return str_cat("exit code ", code);
}

TrialProcess TrialProcess::spawn(const SpawnRequest& r) {
  SpawnAttrs a;
  // New process group led by the child; default dispositions and an empty signal mask, whatever
  // the driver has set for itself.
  sigset_t all, none;
  sigfillset(&all);
  sigemptyset(&none);
  posix_spawnattr_setpgroup(&a.attr, 0);
  posix_spawnattr_setsigdefault(&a.attr, &all);
  posix_spawnattr_setsigmask(&a.attr, &none);
  posix_spawnattr_setflags(&a.attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
  posix_spawn_file_actions_addopen(&a.actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&a.actions, 1, r.stdout_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_addopen(&a.actions, 2, r.stderr_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (!r.working_dir.empty()) posix_spawn_file_actions_addchdir_np(&a.actions, r.working_dir.c_str());

  // The environment: the driver's, with the extra variables replacing same-named ones.
  std::map<std::string, std::string> env;
  for (char** e = environ; *e; ++e) {
    std::string kv = *e;
    env[kv.substr(0, kv.find('='))] = kv;
  }
  for (const std::string& kv : r.extra_env) env[kv.substr(0, kv.find('='))] = kv;
  std::vector<char*> envp;
  for (auto& [k, kv] : env) envp.push_back(kv.data());
  envp.push_back(nullptr);

  std::string sh = "/bin/sh", dash_c = "-c", command = r.command;
  char* argv[] = {sh.data(), dash_c.data(), command.data(), nullptr};
  TrialProcess p;
  int rc = posix_spawn(&p.pid_, sh.c_str(), &a.actions, &a.attr, argv, envp.data());
  if (rc != 0) fail("cannot start trial command (", std::strerror(rc), "): ", r.command);
  p.start_time_ = process_start_time(p.pid_);
  return p;
}

TrialProcess TrialProcess::adopt(pid_t pid, int64_t start_time) {
  TrialProcess p;
  p.pid_ = pid;
  p.start_time_ = start_time;
  p.adopted_ = true;
  return p;
}

std::optional<ExitStatus> TrialProcess::poll() {
  if (status_) return status_;
  if (adopted_) {
    if (process_alive(pid_, start_time_)) return std::nullopt;
    // What the leader left of its group goes too, as for a child of ours.
    if (pid_ > 0 && start_time_ > 0)
      for (pid_t m : group_members(pid_, start_time_)) ::kill(m, SIGKILL);
    status_ = ExitStatus{};
    status_->unknown = true;
    return status_;
  }
  siginfo_t info{};
  // WNOWAIT: look without reaping, so the leader's pid (= the group id) stays taken while the
  // rest of the group is killed.
  if (waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOHANG | WNOWAIT) != 0 || info.si_pid == 0) return std::nullopt;
  ::kill(-pid_, SIGKILL);
  int status = 0;
  waitpid(pid_, &status, 0);
  status_ = decode_status(status);
  return status_;
}

ExitStatus TrialProcess::wait() {
  while (!poll()) std::this_thread::sleep_for(std::chrono::milliseconds(adopted_ ? 20 : 5));
  return *status_;
}

void TrialProcess::signal_group(int sig) const {
  if (status_) return;
  // An adopted leader might have ended and its pid been reused by now: check it is still ours.
  if (adopted_ && !process_alive(pid_, start_time_)) return;
  ::kill(-pid_, sig);
}

int64_t process_start_time(pid_t pid) {
  auto st = read_proc_stat(pid);
  return st ? st->start_time : 0;
}

bool process_alive(pid_t pid, int64_t start_time) {
  if (pid <= 0 || start_time <= 0) return false;
  auto st = read_proc_stat(pid);
  return st && st->state != 'Z' && st->start_time == start_time;  // a zombie has ended already
}

std::optional<std::pair<pid_t, int64_t>> find_group_leader_by_env(const std::string& entry) {
  DIR* d = opendir("/proc");
  if (!d) return std::nullopt;
  std::optional<std::pair<pid_t, int64_t>> found;
  while (dirent* e = readdir(d)) {
    char* end;
    long pid = std::strtol(e->d_name, &end, 10);
    if (*end || pid <= 0) continue;
    auto st = read_proc_stat(static_cast<pid_t>(pid));
    if (!st || st->state == 'Z' || st->pgrp != pid) continue;
    std::ifstream in("/proc/" + std::to_string(pid) + "/environ", std::ios::binary);  // another user's: unreadable
    std::string var;
    while (std::getline(in, var, '\0'))
      if (var == entry) found = std::make_pair(static_cast<pid_t>(pid), st->start_time);
    if (found) break;
  }
  closedir(d);
  return found;
}

void terminate_orphan_group(pid_t pid, int64_t start_time, double grace_seconds) {
  if (pid <= 0 || start_time <= 0) return;
  // A leader with another start time means the pid was reused: that group is someone else's. (A
  // group outlives its leader, but no new process can take the id as its group while any member
  // is left, so members that started after the leader are the trial's.)
  int64_t leader = process_start_time(pid);
  if (leader != 0 && leader != start_time) return;
  std::vector<pid_t> members = group_members(pid, start_time);
  if (members.empty()) return;
  for (pid_t m : members) ::kill(m, SIGTERM);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(grace_seconds);
  while (std::chrono::steady_clock::now() < deadline && !group_members(pid, start_time).empty())
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  for (pid_t m : group_members(pid, start_time)) ::kill(m, SIGKILL);
}

}  // namespace kiln::tuning
