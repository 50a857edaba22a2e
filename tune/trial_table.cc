#include "tune/trial_table.h"

#include <cstdio>

#include "core/error.h"

namespace kiln::tune {

std::string format_duration(double s) {
  char buf[32];
  if (s < 60) std::snprintf(buf, sizeof buf, "%.1fs", s);
  else if (s < 3600) std::snprintf(buf, sizeof buf, "%dm%02ds", static_cast<int>(s) / 60, static_cast<int>(s) % 60);
  else std::snprintf(buf, sizeof buf, "%dh%02dm", static_cast<int>(s) / 3600, static_cast<int>(s) % 3600 / 60);
  return buf;
}

std::string trial_table_header(const std::string& metric_tag) {
  char buf[256];
  std::snprintf(buf, sizeof buf, "%5s  %-9s  %-12s  %8s  %s", "trial", "state", metric_tag.substr(0, 12).c_str(), "duration",
                "params");
  return buf;
}

std::string format_metric(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

std::string trial_table_row(const Trial& t, double now) {
  std::string value = t.value ? format_metric(*t.value) : "";
  double seconds = t.duration();
  if (seconds == 0 && t.started > 0 && now > t.started) seconds = now - t.started;
  char buf[128];
  std::snprintf(buf, sizeof buf, "%5lld  %-9s  %-12s  %8s  ", static_cast<long long>(t.number), trial_state_name(t.state),
                value.c_str(), seconds > 0 ? format_duration(seconds).c_str() : "");
  std::string row = buf + assignment_to_text(t.params);
  if (!t.reason.empty() && (t.state == TrialState::kFailed || t.state == TrialState::kStopped)) row += "  [" + t.reason + "]";
  return row;
}

const Trial* best_trial(const std::vector<Trial>& trials, bool minimize) {
  const Trial* best = nullptr;
  for (const Trial& t : trials) {
    if (t.state != TrialState::kCompleted || !t.value) continue;
    if (!best || (minimize ? *t.value < *best->value : *t.value > *best->value)) best = &t;
  }
  return best;
}

std::string best_trial_line(const StudySpec& spec, const std::vector<Trial>& trials) {
  const Trial* best = best_trial(trials, spec.goal() != StudySpec::MAXIMIZE);
  if (!best) return "";
  return str_cat("best trial ", best->number, ": ", spec.hyperparameter_metric_tag(), " ", format_metric(*best->value), "  ",
                 assignment_to_text(best->params));
}

std::string trial_counts_text(const std::vector<Trial>& trials) {
  int counts[5] = {};
  for (const Trial& t : trials) ++counts[static_cast<int>(t.state)];
  auto n = [&](TrialState s) { return counts[static_cast<int>(s)]; };
  return str_cat(trials.size(), " trials: ", n(TrialState::kCompleted), " completed, ", n(TrialState::kFailed), " failed, ",
                 n(TrialState::kStopped), " stopped, ", n(TrialState::kRunning) + n(TrialState::kQueued), " running or queued");
}

}  // namespace kiln::tune
