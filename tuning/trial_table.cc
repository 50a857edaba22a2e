#include "tuning/trial_table.h"

#include <algorithm>
#include <cstdio>

#include "core/error.h"

namespace kiln::tuning {

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

namespace {

// name=value pairs in the order the spec declares the parameters (not the map's alphabetical
// order); a parameter the spec no longer has comes last.
std::string params_text(const StudySpec& spec, const Assignment& params) {
  std::string out;
  auto add = [&](const std::string& name, const ParamValue& v) {
    out += str_cat(out.empty() ? "" : " ", name, "=", format_value(v));
  };
  for (const ParameterSpec& p : spec.params()) {
    auto it = params.find(p.parameter_name());
    if (it != params.end()) add(it->first, it->second);
  }
  for (const auto& [name, v] : params)
    if (std::none_of(spec.params().begin(), spec.params().end(),
                     [&](const ParameterSpec& p) { return p.parameter_name() == name; }))
      add(name, v);
  return out;
}

}  // namespace

std::string trial_table_row(const StudySpec& spec, const Trial& t, double now) {
  std::string value = t.value ? format_metric(*t.value) : "";
  double seconds = t.duration();
  if (seconds == 0 && t.started > 0 && now > t.started) seconds = now - t.started;
  char buf[128];
  std::snprintf(buf, sizeof buf, "%5lld  %-9s  %-12s  %8s  ", static_cast<long long>(t.number), trial_state_name(t.state),
                value.c_str(), seconds > 0 ? format_duration(seconds).c_str() : "");
  std::string row = buf + params_text(spec, t.params);
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
                 params_text(spec, best->params));
}

std::string trial_counts_text(const std::vector<Trial>& trials) {
  int counts[5] = {};
  for (const Trial& t : trials) ++counts[static_cast<int>(t.state)];
  auto n = [&](TrialState s) { return counts[static_cast<int>(s)]; };
  return str_cat(trials.size(), " trials: ", n(TrialState::kCompleted), " completed, ", n(TrialState::kFailed), " failed, ",
                 n(TrialState::kStopped), " stopped, ", n(TrialState::kRunning) + n(TrialState::kQueued), " running or queued");
}

std::string suggestion_times_line(const std::vector<double>& seconds, const std::string& whose) {
  if (seconds.empty()) return "";
  double sum = 0, most = 0;
  for (double s : seconds) {
    sum += s;
    most = std::max(most, s);
  }
  char line[160];
  std::snprintf(line, sizeof line, "suggestions: %zu %s, %.1f ms each on average, %.1f ms at most", seconds.size(),
                whose.c_str(), 1e3 * sum / static_cast<double>(seconds.size()), 1e3 * most);
  return line;
}

}  // namespace kiln::tuning
