#include "tuning/study_report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "core/error.h"
#include "tuning/png_image.h"
#include "tuning/search_space.h"
#include "tuning/study_spec.h"
#include "tuning/trial_table.h"

namespace kiln::tuning {

namespace {

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

// Best value so far at each trial (by number), over completed trials; nullopt before the first.
std::vector<std::optional<double>> best_so_far(const std::vector<Trial>& trials, bool minimize) {
  std::vector<std::optional<double>> out;
  std::optional<double> best;
  for (const Trial& t : trials) {
    if (t.state == TrialState::kCompleted && t.value && (!best || (minimize ? *t.value < *best : *t.value > *best))) best = t.value;
    out.push_back(best);
  }
  return out;
}

// Round tick steps (1, 2, 5 x 10^k) giving about `target` ticks over [lo, hi].
std::vector<double> nice_ticks(double lo, double hi, int target) {
  double raw = (hi - lo) / target, mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = mag;
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (m * mag >= raw) {
      step = m * mag;
      break;
    }
  std::vector<double> ticks;
  for (double v = std::ceil(lo / step) * step; v <= hi + 1e-9 * step; v += step) ticks.push_back(std::fabs(v) < 1e-12 * step ? 0 : v);
  return ticks;
}

std::string tick_label(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4g", v);
  return buf;
}

}  // namespace

std::string study_report_text(const StudySpec& spec, const std::vector<Trial>& trials) {
  std::string out;
  out += str_cat("study ", spec.name(), ": ", StudySpec::Goal_Name(spec.goal()), " ", spec.hyperparameter_metric_tag(), ", ",
                 StudySpec::Algorithm_Name(spec.algorithm()), ", max_trials ", spec.max_trials(), ", max_parallel_trials ",
                 spec.max_parallel_trials(), spec.enable_trial_early_stopping() ? ", median stopping" : "", "\n");
  for (const ParameterSpec& p : spec.params()) {
    out += "  " + p.parameter_name() + " " + ParameterSpec::Type_Name(p.type());
    if (p.type() == ParameterSpec::DOUBLE || p.type() == ParameterSpec::INTEGER)
      out += str_cat(" [", format_number(p.min_value()), ", ", format_number(p.max_value()), "]");
    for (const auto& c : p.categorical_values()) out += " " + c;
    for (double d : p.discrete_values()) out += " " + format_number(d);
    if (p.scale_type() != ParameterSpec::SCALE_TYPE_UNSPECIFIED) out += " " + ParameterSpec::ScaleType_Name(p.scale_type());
    if (!p.parent_parameter().empty()) {
      out += " when " + p.parent_parameter() + " in {";
      for (int i = 0; i < p.parent_values_size(); ++i) out += (i ? ", " : "") + p.parent_values(i);
      out += "}";
    }
    out += "\n";
  }
  out += trial_counts_text(trials) + "\n\n";
  out += trial_table_header(spec.hyperparameter_metric_tag()) + "\n";
  for (const Trial& t : trials) out += trial_table_row(spec, t) + "\n";
  std::string best = best_trial_line(spec, trials);
  if (!best.empty()) out += "\n" + best + "\n";
  std::vector<double> times;
  for (const Trial& t : trials)
    if (t.suggestion_seconds) times.push_back(*t.suggestion_seconds);
  std::string line = suggestion_times_line(times, "timed");
  const size_t unknown = trials.size() - times.size();
  if (unknown > 0) line += str_cat(line.empty() ? "suggestions: " : "; ", unknown, " made before kiln recorded their time");
  if (!line.empty()) out += line + "\n";
  return out;
}

std::string study_csv(const StudySpec& spec, const std::vector<Trial>& trials) {
  std::string out = "number,state," + csv_field(spec.hyperparameter_metric_tag()) +
                    ",best_so_far,duration_seconds,suggestion_seconds,attempts,exit_code";
  for (const ParameterSpec& p : spec.params()) out += "," + csv_field(p.parameter_name());
  out += ",reason\n";
  auto best = best_so_far(trials, minimizing(spec));
  for (size_t i = 0; i < trials.size(); ++i) {
    const Trial& t = trials[i];
    char dur[32], suggestion[32] = "";
    std::snprintf(dur, sizeof dur, "%.3f", t.duration());
    if (t.suggestion_seconds) std::snprintf(suggestion, sizeof suggestion, "%.6f", *t.suggestion_seconds);
    out += str_cat(t.number, ",", trial_state_name(t.state), ",", t.value ? format_number(*t.value) : "", ",",
                   best[i] ? format_number(*best[i]) : "", ",", dur, ",", suggestion, ",", t.attempts, ",",
                   t.exit_code ? std::to_string(*t.exit_code) : "");
    for (const ParameterSpec& p : spec.params()) {
      auto it = t.params.find(p.parameter_name());
      out += "," + (it == t.params.end() ? std::string() : csv_field(format_value(it->second)));
    }
    out += "," + csv_field(t.reason) + "\n";
  }
  return out;
}

std::string study_plot_png(const StudySpec& spec, const std::vector<Trial>& trials) {
  const int W = 960, H = 580, L = 120, R = 30, T = 80, B = 80;
  const Rgb white{255, 255, 255}, black{30, 30, 30}, grid{225, 225, 225}, blue{31, 119, 180}, orange{230, 100, 20},
      gray{150, 150, 150}, red{200, 40, 40};
  RgbImage img(W, H, white);
  std::string title = spec.name() + ": " + spec.hyperparameter_metric_tag() + " per trial, best so far";
  if (RgbImage::text_width(title, 2) > W - 40) title = title.substr(0, static_cast<size_t>((W - 40) / 12));
  img.text(20, 18, title, black, 2);

  bool minimize = minimizing(spec);
  std::vector<double> values;
  for (const Trial& t : trials)
    if (t.value && (t.state == TrialState::kCompleted || t.state == TrialState::kStopped)) values.push_back(*t.value);
  const int x0 = L, x1 = W - R, y0 = T, y1 = H - B;
  img.line(x0, y1, x1, y1, black);
  img.line(x0, y0, x0, y1, black);
  img.text((x0 + x1) / 2 - RgbImage::text_width("trial", 2) / 2, H - 30, "trial", black, 2);
  img.text_vertical(18, (y0 + y1) / 2 + RgbImage::text_width(spec.hyperparameter_metric_tag(), 2) / 2,
                    spec.hyperparameter_metric_tag(), black, 2);
  if (values.empty()) {
    img.text(x0 + 20, (y0 + y1) / 2, "no completed trials yet", gray, 2);
    return img.encode_png();
  }
  // The y range leaves out far outliers (a diverged run would flatten everything else); they
  // are drawn on the edge.
  std::vector<double> sorted = values;
  std::sort(sorted.begin(), sorted.end());
  double q1 = sorted[sorted.size() / 4], q3 = sorted[(3 * sorted.size()) / 4], iqr = q3 - q1;
  double lo = sorted.front(), hi = sorted.back();
  if (sorted.size() >= 8 && iqr > 0) {
    lo = std::max(lo, q1 - 4 * iqr);
    hi = std::min(hi, q3 + 4 * iqr);
    if (minimize) lo = sorted.front();
    else hi = sorted.back();
  }
  if (hi - lo < 1e-12 * std::max(1.0, std::fabs(hi))) {
    lo -= 0.5 * std::max(1.0, std::fabs(lo)) * 1e-3;
    hi += 0.5 * std::max(1.0, std::fabs(hi)) * 1e-3;
  }
  double pad = 0.05 * (hi - lo);
  lo -= pad;
  hi += pad;
  double n = static_cast<double>(std::max<size_t>(trials.size(), 1));
  auto px = [&](double trial) { return x0 + (trial + 0.5) / n * (x1 - x0); };
  auto py = [&](double v) { return y1 - (std::clamp(v, lo, hi) - lo) / (hi - lo) * (y1 - y0); };
  for (double v : nice_ticks(lo, hi, 6)) {
    img.line(x0 + 1, py(v), x1, py(v), grid);
    img.line(x0 - 5, py(v), x0, py(v), black);
    std::string label = tick_label(v);
    img.text(x0 - 10 - RgbImage::text_width(label, 2), static_cast<int>(py(v)) - 7, label, black, 2);
  }
  for (double v : nice_ticks(0, n - 1, 10)) {
    if (v != std::floor(v)) continue;
    img.line(px(v), y1, px(v), y1 + 5, black);
    std::string label = tick_label(v);
    img.text(static_cast<int>(px(v)) - RgbImage::text_width(label, 2) / 2, y1 + 12, label, black, 2);
  }
  auto best = best_so_far(trials, minimize);
  for (size_t i = 0; i + 1 < trials.size(); ++i)
    if (best[i]) {
      img.line(px(static_cast<double>(i)), py(*best[i]), px(static_cast<double>(i) + 1), py(*best[i]), orange, 3);
      if (*best[i + 1] != *best[i]) img.line(px(static_cast<double>(i) + 1), py(*best[i]), px(static_cast<double>(i) + 1), py(*best[i + 1]), orange, 3);
    }
  for (size_t i = 0; i < trials.size(); ++i) {
    const Trial& t = trials[i];
    double x = px(static_cast<double>(i));
    if (t.state == TrialState::kCompleted && t.value) img.dot(x, py(*t.value), 5, blue);
    else if (t.state == TrialState::kStopped && t.value) img.dot(x, py(*t.value), 5, gray, false);
    else if (t.state == TrialState::kFailed) img.cross(x, y1 - 8, 5, red);
  }
  // Legend: one row between the title and the plot, where it hides no data.
  int lx = x0, ly = 52;
  img.dot(lx, ly + 7, 5, blue);
  img.text(lx + 12, ly, "completed", black, 2);
  lx += 12 + RgbImage::text_width("completed", 2) + 30;
  img.line(lx - 8, ly + 7, lx + 8, ly + 7, orange, 3);
  img.text(lx + 14, ly, "best so far", black, 2);
  lx += 14 + RgbImage::text_width("best so far", 2) + 30;
  img.dot(lx, ly + 7, 5, gray, false);
  img.text(lx + 12, ly, "stopped", black, 2);
  lx += 12 + RgbImage::text_width("stopped", 2) + 30;
  img.cross(lx, ly + 7, 5, red);
  img.text(lx + 12, ly, "failed", black, 2);
  return img.encode_png();
}

}  // namespace kiln::tuning
