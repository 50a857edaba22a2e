#pragma once
// Loading and validating a StudySpec. Every mistake is reported before any trial runs, with the
// field path: "study.pbtxt: params[1].min_value: must be > 0 on a LOG scale (got 0)".
#include <string>
#include <vector>

#include "proto/study.pb.h"

namespace kiln::tuning {

// Reads `path` (text format or JSON), applies `--set` overrides, fills the defaults that depend
// on the file (name), and validates.
StudySpec load_study_spec(const std::string& path, const std::vector<std::string>& overrides = {});

// kiln::Error "<source>: <field path>: <problem>" for the first problem found.
void validate_study_spec(const StudySpec& spec, const std::string& source);

// max_failed_trials with its default applied.
int effective_max_failed_trials(const StudySpec& spec);

// The trial command template with the default applied.
std::string effective_command(const StudySpec& spec);

// "MINIMIZE rmse": lower is better?
inline bool minimizing(const StudySpec& spec) { return spec.goal() == StudySpec::MINIMIZE; }

}  // namespace kiln::tuning
