#include "tuning/trial_table.h"

#include <gtest/gtest.h>

#include "tests/tuning/spec_text.h"
#include "tuning/study_store.h"

namespace kiln::tuning {
namespace {

// The trial table and the best-trial line list parameters as the spec declares them, not in the
// alphabetical order of the assignment map (issue 17).
TEST(TrialTable, ParametersInDeclarationOrder) {
  const StudySpec spec = spec_from(
      "params { parameter_name: 'zeta' type: DOUBLE min_value: 0 max_value: 1 } "
      "params { parameter_name: 'alpha' type: CATEGORICAL categorical_values: ['a', 'b'] }");
  Trial t;
  t.number = 3;
  t.state = TrialState::kCompleted;
  t.value = 0.5;
  t.params = {{"alpha", ParamValue::of(std::string("b"))}, {"zeta", ParamValue::of(0.25)}};
  const std::string row = trial_table_row(spec, t);
  EXPECT_NE(row.find("zeta=0.25 alpha=b"), std::string::npos) << row;
  const std::string best = best_trial_line(spec, {t});
  EXPECT_NE(best.find("zeta=0.25 alpha=b"), std::string::npos) << best;
}

}  // namespace
}  // namespace kiln::tuning
