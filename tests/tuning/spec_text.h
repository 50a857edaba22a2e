#pragma once
// Study specs for the unit tests: a valid header plus the given fields, validated.
#include <string>

#include "io/config_file.h"
#include "tuning/study_spec.h"

namespace kiln::tuning {

inline StudySpec spec_from(const std::string& fields) {
  StudySpec spec;
  io::parse_config_text("goal: MINIMIZE hyperparameter_metric_tag: 'loss' max_trials: 100 command: 'true' " + fields, "spec", spec);
  validate_study_spec(spec, "spec");
  return spec;
}

}  // namespace kiln::tuning
