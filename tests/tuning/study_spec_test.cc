// Study specs: every mistake is rejected before any trial runs, with the field path.
#include "tuning/study_spec.h"

#include <gtest/gtest.h>

#include <algorithm>
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

// parent_values of an INTEGER or DISCRETE parent may be bare numbers (issue 17): they mean what
// the quoted form means, in text format, JSON and --set alike.
TEST(StudySpec, ParentValuesTakeBareNumbers) {
  const std::string parents = std::string(kBase) + R"(
    params { parameter_name: 'layers' type: INTEGER min_value: -1 max_value: 4 }
    params { parameter_name: 'drop' type: DISCRETE discrete_values: [0.5, 1, 2] }
  )";
  auto spec_with = [&](const std::string& children) { return parents + children; };
  const std::string bare = spec_with(R"(
    params { parameter_name: 'a' type: DOUBLE min_value: 0 max_value: 1 parent_parameter: 'layers' parent_values: [2, -1] }
    params { parameter_name: 'b' type: DOUBLE min_value: 0 max_value: 1 parent_parameter: 'layers' parent_values: 3 }  # 1
    params { parameter_name: 'c' type: DOUBLE min_value: 0 max_value: 1 parent_parameter: 'drop' parent_values: [0.5, "1", 2e0] }
  )");
  const std::string quoted = spec_with(R"(
    params { parameter_name: 'a' type: DOUBLE min_value: 0 max_value: 1 parent_parameter: 'layers' parent_values: ["2", "-1"] }
    params { parameter_name: 'b' type: DOUBLE min_value: 0 max_value: 1 parent_parameter: 'layers' parent_values: "3" }  # 1
    params { parameter_name: 'c' type: DOUBLE min_value: 0 max_value: 1 parent_parameter: 'drop' parent_values: ['0.5', "1", "2e0"] }
  )");
  StudySpec a = load_study_spec(write_spec("bare.pbtxt", bare)), b = load_study_spec(write_spec("quoted.pbtxt", quoted));
  a.clear_name();
  b.clear_name();
  EXPECT_EQ(a.DebugString(), b.DebugString());
  ASSERT_EQ(a.params(2).parent_values_size(), 2);
  EXPECT_EQ(a.params(2).parent_values(1), "-1");
  EXPECT_EQ(a.params(3).parent_values(0), "3");
  EXPECT_EQ(a.params(4).parent_values(2), "2e0");
  // JSON, numbers and strings mixed.
  StudySpec j = load_study_spec(write_spec("bare.json", R"({"goal": "MINIMIZE", "hyperparameterMetricTag": "rmse", "maxTrials": 3,
    "command": "true", "params": [{"parameterName": "layers", "type": "INTEGER", "minValue": 1, "maxValue": 4},
    {"parameterName": "w", "type": "INTEGER", "minValue": 1, "maxValue": 9, "parentParameter": "layers", "parentValues": [2, "3", 4]}]})"));
  EXPECT_EQ(std::vector<std::string>(j.params(1).parent_values().begin(), j.params(1).parent_values().end()),
            (std::vector<std::string>{"2", "3", "4"}));
  // --set takes them as it always did.
  StudySpec o = load_study_spec(write_spec("o.pbtxt", quoted), {"params[2].parent_values=1,4"});
  EXPECT_EQ(o.params(2).parent_values(1), "4");
  // A number that is not a value of the parent is blamed on its index; so is a bad one by --set.
  EXPECT_NE(error_of(spec_with("params { parameter_name: 'a' type: DOUBLE min_value: 0 max_value: 1 parent_parameter: 'layers' "
                               "parent_values: [2, 2.5] }"))
                .find("params[2] (a).parent_values[1]: '2.5' is not a value of 'layers'"),
            std::string::npos);
  EXPECT_NE(error_of(spec_with("params { parameter_name: 'a' type: DOUBLE min_value: 0 max_value: 1 parent_parameter: 'drop' "
                               "parent_values: 0.7 }"))
                .find("params[2] (a).parent_values[0]: '0.7' is not a value of 'drop'"),
            std::string::npos);
  try {
    load_study_spec(write_spec("o.pbtxt", quoted), {"params[2].parent_values=2,9"});
    FAIL() << "accepted a parent value out of range";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("params[2] (a).parent_values[1]: '9' is not a value of 'layers'"), std::string::npos)
        << e.what();
  }
  // An error after bare numbers on their line points where the user wrote it, not into the
  // quoted text the parser read.
  const std::string line = "params { parameter_name: 'a' type: DOUBLE parent_parameter: 'layers' parent_values: [2, 3] mni_value: 0 }";
  const std::string text = spec_with(line);
  std::string err = error_of(text);
  const size_t name = text.find("mni_value");  // the error is at the colon after it
  const std::string at = str_cat(":", std::count(parents.begin(), parents.end(), '\n') + 1, ":",
                                 name - text.rfind('\n', name) + 9, ": ");
  EXPECT_NE(err.find(at + "Message type \"kiln.ParameterSpec\" has no field named \"mni_value\""), std::string::npos)
      << at << "\n" << err;
  // Other string fields still want quotes, and say so.
  EXPECT_NE(error_of(std::string(kBase) + "params { parameter_name: 2 }").find("(string values are quoted: \"2\")"),
            std::string::npos);
}

// A misspelled field or enum value is blamed on itself, with the nearest valid name: text format,
// JSON and --set.
TEST(StudySpec, MisspelledFieldsAreBlamedWithASuggestion) {
  const std::string x = "params { parameter_name: 'x' type: DOUBLE min_value: 0 max_value: 1 }\n";
  struct Case {
    std::string file, text, expected;
  };
  std::vector<Case> cases = {
      {"s.pbtxt", std::string(kBase) + "max_trial: 5\n" + x, "s.pbtxt:6:10: Message type \"kiln.StudySpec\" has no field named "
                                                            "\"max_trial\". (did you mean \"max_trials\"?)"},
      {"s.pbtxt", std::string(kBase) + "params { parameter_name: 'x' type: DOUBLE min_vlaue: 0 max_value: 1 }\n",
       "has no field named \"min_vlaue\". (did you mean \"min_value\"?)"},
      {"s.pbtxt", std::string(kBase) + x + "early_stoping { warmup_steps: 2 }\n", "(did you mean \"early_stopping\"?)"},
      {"s.pbtxt", std::string(kBase) + x + "algorithm: RANDOM_SERCH\n", "(did you mean \"RANDOM_SEARCH\"?)"},
      {"s.json", R"({"goal": "MINIMIZE", "hyperparameterMetricTag": "loss", "maxTrial": 3})",
       "s.json: maxTrial: Cannot find field. (did you mean \"maxTrials\"?)"},
      {"s.json", R"({"params": [{"parameterName": "x", "minValu": 0}]})", "(params[0]) minValu: Cannot find field. (did you mean \"minValue\"?)"},
      {"s.json", R"({"goal": "MINIMISE"})", "(did you mean \"MINIMIZE\"?)"},
  };
  for (const Case& c : cases) {
    std::string err;
    try {
      load_study_spec(write_spec(c.file, c.text));
    } catch (const Error& e) {
      err = e.what();
    }
    EXPECT_NE(err.find(c.expected), std::string::npos) << c.text << "\nerror: " << err;
    EXPECT_EQ(err.find("(field '"), std::string::npos) << "blames another field: " << err;
  }
  try {
    load_study_spec(write_spec("s.pbtxt", std::string(kBase) + x), {"max_trial=4"});
    FAIL() << "accepted --set max_trial";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("has no field 'max_trial' (did you mean 'max_trials'?)"), std::string::npos) << e.what();
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
