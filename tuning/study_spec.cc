#include "tuning/study_spec.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <set>

#include "core/error.h"
#include "io/config_file.h"
#include "tuning/command_template.h"
#include "tuning/search_space.h"

namespace kiln::tuning {

namespace {

bool is_identifier(const std::string& s) {
  if (s.empty() || std::isdigit(static_cast<unsigned char>(s[0]))) return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; });
}

// Parses a parent value written as text into the parent's value space; false if it is not one.
bool parent_value_ok(const ParameterSpec& parent, const std::string& text) {
  if (parent.type() == ParameterSpec::CATEGORICAL) {
    const auto& v = parent.categorical_values();
    return std::find(v.begin(), v.end(), text) != v.end();
  }
  double x = 0;
  try {
    size_t used = 0;
    x = std::stod(text, &used);
    if (used != text.size()) return false;
  } catch (const std::exception&) {
    return false;
  }
  if (parent.type() == ParameterSpec::INTEGER)
    return std::nearbyint(x) == x && x >= parent.min_value() && x <= parent.max_value();
  const auto& v = parent.discrete_values();
  return std::find(v.begin(), v.end(), x) != v.end();
}

class Validator {
 public:
  Validator(const StudySpec& spec, std::string source) : spec_(spec), source_(std::move(source)) {}

  void run() {
    if (spec_.goal() == StudySpec::GOAL_TYPE_UNSPECIFIED) error("goal", "required: MINIMIZE or MAXIMIZE");
    const std::string& tag = spec_.hyperparameter_metric_tag();
    if (tag.empty()) error("hyperparameter_metric_tag", "required: the metric key trials report, e.g. \"rmse\"");
    if (tag == "step") error("hyperparameter_metric_tag", "\"step\" is the step counter of a metric line, not a metric");
    if (spec_.params().empty()) error("params", "at least one parameter is required");
    for (int i = 0; i < spec_.params_size(); ++i) check_param(i);
    bool grid = spec_.algorithm() == StudySpec::GRID;
    if (spec_.max_trials() < 0 || (spec_.max_trials() == 0 && !grid))
      error("max_trials", str_cat("must be > 0 (got ", spec_.max_trials(), ")"));
    if (spec_.max_parallel_trials() < 1)
      error("max_parallel_trials", str_cat("must be >= 1 (got ", spec_.max_parallel_trials(), ")"));
    if (spec_.max_failed_trials() < 0)
      error("max_failed_trials", str_cat("must be >= 0 (got ", spec_.max_failed_trials(), ")"));
    if (!(spec_.trial_timeout_seconds() >= 0))
      error("trial_timeout_seconds", "must be >= 0 (0 = no timeout)");
    if (!(spec_.stop_grace_seconds() >= 0)) error("stop_grace_seconds", "must be >= 0");
    if (spec_.early_stopping().warmup_steps() < 0) error("early_stopping.warmup_steps", "must be >= 0");
    if (spec_.early_stopping().min_completed_trials() < 1)
      error("early_stopping.min_completed_trials", "must be >= 1");
    if (spec_.gp_bandit().initial_trials() < 0) error("gp_bandit.initial_trials", "must be >= 0");
    if (spec_.gp_bandit().candidates() < 16 || spec_.gp_bandit().candidates() > 1000000)
      error("gp_bandit.candidates", str_cat("must be in [16, 1000000] (got ", spec_.gp_bandit().candidates(), ")"));
    check_command();
    if (grid) {
      SearchSpace space(spec_);
      auto size = space.cardinality(kMaxGridPoints);
      if (!size) error("algorithm", str_cat("GRID: the grid has more than ", kMaxGridPoints, " points"));
    }
  }

 private:
  static constexpr uint64_t kMaxGridPoints = 100000;

  [[noreturn]] void error(const std::string& path, const std::string& problem) const {
    fail(source_, ": ", path, ": ", problem);
  }

  void check_param(int i) {
    const ParameterSpec& p = spec_.params(i);
    std::string at = str_cat("params[", i, "]");
    std::string named = p.parameter_name().empty() ? at : str_cat(at, " (", p.parameter_name(), ")");
    if (!is_identifier(p.parameter_name()))
      error(at + ".parameter_name", str_cat("'", p.parameter_name(), "' is not a name (letters, digits and _, not starting with a digit)"));
    const auto& builtins = builtin_placeholders();
    if (std::find(builtins.begin(), builtins.end(), p.parameter_name()) != builtins.end())
      error(at + ".parameter_name", str_cat("'", p.parameter_name(), "' is a built-in placeholder name"));
    if (!names_.insert(p.parameter_name()).second)
      error(at + ".parameter_name", str_cat("'", p.parameter_name(), "' is declared twice"));
    using P = ParameterSpec;
    bool log = p.scale_type() == P::LOG || p.scale_type() == P::REVERSE_LOG;
    switch (p.type()) {
      case P::PARAMETER_TYPE_UNSPECIFIED:
        error(named + ".type", "required: DOUBLE, INTEGER, CATEGORICAL or DISCRETE");
      case P::DOUBLE:
      case P::INTEGER:
        if (!p.has_min_value()) error(named + ".min_value", "required for " + P::Type_Name(p.type()));
        if (!p.has_max_value()) error(named + ".max_value", "required for " + P::Type_Name(p.type()));
        if (!std::isfinite(p.min_value()) || !std::isfinite(p.max_value()))
          error(named + ".min_value", "min_value and max_value must be finite");
        if (p.min_value() >= p.max_value())
          error(named + ".min_value", str_cat("must be < max_value (got min_value ", p.min_value(), ", max_value ", p.max_value(), ")"));
        if (p.type() == P::INTEGER && (std::nearbyint(p.min_value()) != p.min_value() || std::nearbyint(p.max_value()) != p.max_value()))
          error(named + ".min_value", "INTEGER bounds must be integers");
        if (log && p.min_value() <= 0)
          error(named + ".min_value", str_cat("must be > 0 on a ", P::ScaleType_Name(p.scale_type()), " scale (got ", p.min_value(), ")"));
        if (p.categorical_values_size()) error(named + ".categorical_values", "only for CATEGORICAL parameters");
        if (p.discrete_values_size()) error(named + ".discrete_values", "only for DISCRETE parameters");
        break;
      case P::CATEGORICAL: {
        if (p.categorical_values().empty()) error(named + ".categorical_values", "must not be empty");
        std::set<std::string> seen;
        for (int k = 0; k < p.categorical_values_size(); ++k)
          if (!seen.insert(p.categorical_values(k)).second)
            error(str_cat(named, ".categorical_values[", k, "]"), str_cat("'", p.categorical_values(k), "' is listed twice"));
        if (p.scale_type() != P::SCALE_TYPE_UNSPECIFIED) error(named + ".scale_type", "CATEGORICAL parameters have no scale");
        if (p.has_min_value() || p.has_max_value()) error(named + ".min_value", "CATEGORICAL parameters take categorical_values, not a range");
        if (p.discrete_values_size()) error(named + ".discrete_values", "only for DISCRETE parameters");
        break;
      }
      case P::DISCRETE:
        if (p.discrete_values().empty()) error(named + ".discrete_values", "must not be empty");
        for (int k = 0; k < p.discrete_values_size(); ++k) {
          double v = p.discrete_values(k);
          std::string vk = str_cat(named, ".discrete_values[", k, "]");
          if (!std::isfinite(v)) error(vk, "must be finite");
          if (k > 0 && v <= p.discrete_values(k - 1)) error(vk, "values must be strictly increasing");
          if (log && v <= 0) error(vk, str_cat("must be > 0 on a ", P::ScaleType_Name(p.scale_type()), " scale (got ", v, ")"));
        }
        if (p.has_min_value() || p.has_max_value()) error(named + ".min_value", "DISCRETE parameters take discrete_values, not a range");
        if (p.categorical_values_size()) error(named + ".categorical_values", "only for CATEGORICAL parameters");
        break;
      default:
        error(named + ".type", "unknown type");
    }
    if (p.has_config_field() && p.config_field().empty()) error(named + ".config_field", "must not be empty");
    if (spec_.algorithm() == StudySpec::GRID && p.type() == P::DOUBLE)
      error(named + ".type", "GRID search needs INTEGER, DISCRETE or CATEGORICAL parameters (use DISCRETE for a list of reals)");
    if (p.parent_parameter().empty()) {
      if (p.parent_values_size()) error(named + ".parent_values", "given without parent_parameter");
      return;
    }
    const ParameterSpec* parent = nullptr;
    for (int j = 0; j < i; ++j)
      if (spec_.params(j).parameter_name() == p.parent_parameter()) parent = &spec_.params(j);
    if (!parent)
      error(named + ".parent_parameter", str_cat("'", p.parent_parameter(), "' is not a parameter declared before this one"));
    if (parent->type() == P::DOUBLE)
      error(named + ".parent_parameter", str_cat("'", p.parent_parameter(), "' is DOUBLE; a parent must be CATEGORICAL, INTEGER or DISCRETE"));
    if (p.parent_values().empty()) error(named + ".parent_values", "required with parent_parameter");
    for (int k = 0; k < p.parent_values_size(); ++k)
      if (!parent_value_ok(*parent, p.parent_values(k)))
        error(str_cat(named, ".parent_values[", k, "]"), str_cat("'", p.parent_values(k), "' is not a value of '", p.parent_parameter(), "'"));
  }

  void check_command() {
    std::string tmpl = effective_command(spec_);
    std::vector<std::string> placeholders = template_placeholders(tmpl, source_ + ": command");
    const auto& builtins = builtin_placeholders();
    for (const std::string& name : placeholders) {
      if (names_.count(name)) continue;
      if (std::find(builtins.begin(), builtins.end(), name) == builtins.end()) {
        std::string known;
        for (const auto& n : names_) known += (known.empty() ? "" : ", ") + n;
        error("command", str_cat("{", name, "} is not a parameter (parameters: ", known,
                                 "; built-ins: {kiln} {train_config} {set_args} {trial_id} {trial_dir} {study_dir})"));
      }
      if (name == "train_config" && spec_.train_config().empty())
        error("train_config", "required: the default command runs `kiln train --config TRAIN_CONFIG`; set train_config or command");
    }
  }

  const StudySpec& spec_;
  std::string source_;
  std::set<std::string> names_;
};

}  // namespace

std::string effective_command(const StudySpec& spec) {
  return spec.has_command() ? spec.command() : default_command_template();
}

int effective_max_failed_trials(const StudySpec& spec) {
  return spec.max_failed_trials() > 0 ? spec.max_failed_trials() : std::max(3, spec.max_trials() / 5);
}

void validate_study_spec(const StudySpec& spec, const std::string& source) { Validator(spec, source).run(); }

StudySpec load_study_spec(const std::string& path, const std::vector<std::string>& overrides) {
  StudySpec spec;
  io::load_config(path, spec);
  io::apply_overrides(overrides, spec);
  if (spec.name().empty()) spec.set_name(std::filesystem::path(path).stem().string());
  if (spec.has_command() && spec.command().empty()) fail(path, ": command: must not be empty (leave it out for the default)");
  validate_study_spec(spec, path);
  return spec;
}

}  // namespace kiln::tuning
