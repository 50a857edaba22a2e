// Study specs: every mistake is rejected before any trial runs, with the field path.
#include "tuning/study_spec.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "core/error.h"

namespace kiln::tuning {
namespace {

const char* kBase = R"(
goal: MINIMIZE
hyperparameter_metric_tag: "rmse"
max_trials: 10
train_config: "train.pbtxt"
)";

std::string write_spec(const std::string& name, const std::string& text) {
  std::string dir = std::filesystem::temp_directory_path() / ("kiln_tune_spec_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::string path = dir + "/" + name;
  std::ofstream(path) << text;
  return path;
}

// The error message of loading `text`, "" when it loads.
std::string error_of(const std::string& text) {
  try {
    load_study_spec(write_spec("s.pbtxt", text));
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(StudySpec, ValidSpecLoadsWithDefaults) {
  StudySpec spec = load_study_spec(write_spec("babyweight_study.pbtxt", std::string(kBase) + R"(
    params { parameter_name: "lr" type: DOUBLE min_value: 1e-4 max_value: 0.1 scale_type: UNIT_LOG_SCALE config_field: "optimizer.learning_rate" }
    params { parameter_name: "units" type: INTEGER min_value: 8 max_value: 256 }
  )"));
  EXPECT_EQ(spec.name(), "babyweight_study");
  EXPECT_EQ(spec.algorithm(), StudySpec::GP_BANDIT);
  EXPECT_EQ(spec.max_parallel_trials(), 1);
  EXPECT_EQ(effective_max_failed_trials(spec), 3);
  EXPECT_NE(effective_command(spec).find("{set_args}"), std::string::npos);
}

TEST(StudySpec, CloudMlHyperparameterSpecJsonParses) {
  // Cloud ML Engine's HyperparameterSpec, as its users have it in their training job configs.
  StudySpec spec = load_study_spec(write_spec("cloudml.json", R"({
    "goal": "MAXIMIZE", "hyperparameterMetricTag": "accuracy", "maxTrials": 30, "maxParallelTrials": 3,
    "enableTrialEarlyStopping": true, "algorithm": "RANDOM_SEARCH", "command": "python3 task.py --lr {lr}",
    "params": [{"parameterName": "lr", "type": "DOUBLE", "minValue": 0.0001, "maxValue": 0.1, "scaleType": "UNIT_LOG_SCALE"},
               {"parameterName": "hidden", "type": "DISCRETE", "discreteValues": [16, 32, 64]}]})"));
  EXPECT_EQ(spec.algorithm(), StudySpec::RANDOM);
  EXPECT_EQ(spec.params(0).scale_type(), ParameterSpec::LOG);
  EXPECT_EQ(spec.max_parallel_trials(), 3);
}

TEST(StudySpec, BadInputIsRejectedWithTheFieldPath) {
  struct Case {
    std::string spec, expected;
  };
  std::string p = std::string(kBase);
  std::vector<Case> cases = {
      {p + "params { parameter_name: 'lr' type: DOUBLE min_value: 1 max_value: 1 }", "params[0] (lr).min_value: must be < max_value"},
      {p + "params { parameter_name: 'a' type: INTEGER min_value: 0 max_value: 3 } params { parameter_name: 'lr' type: DOUBLE min_value: 0 max_value: 1 scale_type: LOG }",
       "params[1] (lr).min_value: must be > 0 on a LOG scale (got 0)"},
      {p + "params { parameter_name: 'opt' type: CATEGORICAL }", "params[0] (opt).categorical_values: must not be empty"},
      {p + "params { parameter_name: 'lr' type: DOUBLE min_value: 0 max_value: 1 minimum: 3 }", "minimum"},
      {p + "command: 'python t.py --lr {lr} --units {unit}' params { parameter_name: 'lr' type: DOUBLE min_value: 0 max_value: 1 }",
       "command: {unit} is not a parameter"},
      {p + "params { parameter_name: 'd' type: DISCRETE discrete_values: [1, 3, 2] }", "params[0] (d).discrete_values[2]: values must be strictly increasing"},
      {p + "params { parameter_name: 'u' type: INTEGER min_value: 1.5 max_value: 4 }", "params[0] (u).min_value: INTEGER bounds must be integers"},
      {p + "params { parameter_name: 'x' type: DOUBLE min_value: 0 max_value: 1 } params { parameter_name: 'x' type: DOUBLE min_value: 0 max_value: 1 }",
       "params[1].parameter_name: 'x' is declared twice"},
      {p + "params { parameter_name: 'm' type: DOUBLE min_value: 0 max_value: 1 parent_parameter: 'opt' parent_values: ['sgd'] }",
       "params[0] (m).parent_parameter: 'opt' is not a parameter declared before this one"},
      {p + "params { parameter_name: 'opt' type: CATEGORICAL categorical_values: ['sgd'] } params { parameter_name: 'm' type: DOUBLE min_value: 0 max_value: 1 parent_parameter: 'opt' parent_values: ['adam'] }",
       "params[1] (m).parent_values[0]: 'adam' is not a value of 'opt'"},
      {p + "algorithm: GRID params { parameter_name: 'x' type: DOUBLE min_value: 0 max_value: 1 }", "params[0] (x).type: GRID search needs"},
      {p + "params { parameter_name: 'x' min_value: 0 max_value: 1 }", "params[0] (x).type: required"},
      {p + "params { parameter_name: '2x' type: DOUBLE min_value: 0 max_value: 1 }", "params[0].parameter_name: '2x' is not a name"},
      {"hyperparameter_metric_tag: 'a' max_trials: 3 train_config: 't' params { parameter_name: 'x' type: DOUBLE min_value: 0 max_value: 1 }", "goal: required"},
      {"goal: MINIMIZE max_trials: 3 train_config: 't' params { parameter_name: 'x' type: DOUBLE min_value: 0 max_value: 1 }", "hyperparameter_metric_tag: required"},
      {"goal: MINIMIZE hyperparameter_metric_tag: 'a' max_trials: 3 params { parameter_name: 'x' type: DOUBLE min_value: 0 max_value: 1 }", "train_config: required"},
      {"goal: MINIMIZE hyperparameter_metric_tag: 'a' train_config: 't' params { parameter_name: 'x' type: DOUBLE min_value: 0 max_value: 1 }", "max_trials: must be > 0"},
      {p + "max_parallel_trials: 0 params { parameter_name: 'x' type: DOUBLE min_value: 0 max_value: 1 }", "max_parallel_trials: must be >= 1"},
      {p + "command: 'run {x' params { parameter_name: 'x' type: DOUBLE min_value: 0 max_value: 1 }", "command: unmatched '{' at column 5"},
      {p, "params: at least one parameter is required"},
  };
  for (const Case& c : cases) {
    std::string err = error_of(c.spec);
    EXPECT_NE(err.find(c.expected), std::string::npos) << "spec: " << c.spec << "\nerror: " << err;
    EXPECT_NE(err.find("s.pbtxt"), std::string::npos) << err;  // and the file
  }
}

TEST(StudySpec, OverridesApplyBeforeValidation) {
  std::string path = write_spec("o.pbtxt", std::string(kBase) + "params { parameter_name: 'x' type: DOUBLE min_value: 0 max_value: 1 }");
  EXPECT_EQ(load_study_spec(path, {"max_trials=25"}).max_trials(), 25);
  try {
    load_study_spec(path, {"params[0].max_value=-1"});
    FAIL() << "accepted max_value < min_value";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("params[0] (x).min_value: must be < max_value"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace kiln::tuning
