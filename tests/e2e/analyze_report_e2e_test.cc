// End-to-end tests of `kiln analyze --report` and `--compare`. In a browser: the flights training
// split compared with a drifted one (the eval split's JFK departures only), the report opened in
// headless Chromium by tests/tools/report_in_browser.py: every feature rendered with its chart,
// exactly the features kiln printed as over the threshold marked, no console errors. The report
// and a screenshot stay in the build tree (e2e_artifacts/AnalyzeReportE2E/) for a person or CI to
// look at. Without one: a report of one data set, of two states, and the misuses named.
#include <gtest/gtest.h>

#include <algorithm>
#include <sstream>

#include "io/config_file.h"
#include "kiln_process.h"
#include "proto/feature_spec.pb.h"

namespace kiln::e2e {
namespace {

namespace fs = std::filesystem;

std::string flights_dir() { return source_dir() + "/examples/flights"; }

// The rows of a CSV (no quoted fields) whose `column` equals `value`, with the header.
std::string rows_where(const std::string& csv, const std::string& column, const std::string& value) {
  std::istringstream in(csv);
  std::string header, line, out;
  std::getline(in, header);
  out = header + "\n";
  size_t index = 0;
  for (std::istringstream h(header); std::getline(h, line, ',') && line != column;) ++index;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string field;
    for (size_t i = 0; i <= index; ++i) std::getline(fields, field, ',');
    if (field == value) out += line + "\n";
  }
  return out;
}

// The features of `kiln analyze --compare`'s distance table that end in "over THRESHOLD".
std::vector<std::string> drifted_features(const std::string& out) {
  std::vector<std::string> names;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) {
    if (line.find("  over ") == std::string::npos) continue;
    names.push_back(line.substr(0, line.find(' ')));  // the label's line: its column, then "(label)"
  }
  return names;
}

TEST(AnalyzeReportE2E, RendersEveryFeatureInABrowser) {
  ASSERT_TRUE(fs::exists(flights_dir() + "/data/eval.csv")) << "run examples/flights/fetch_data.sh first";
  const char* python = std::getenv("KILN_PYTHON");
  if (!python)
    GTEST_SKIP() << "KILN_PYTHON (a python with selenium, beside Debian's chromium and chromium-driver) is not set; "
                    "scripts/test.sh sets it";
  TempDir dir;
  dir.file("jfk.csv", rows_where(slurp(flights_dir() + "/data/eval.csv"), "origin", "JFK"));
  const std::string artifacts = fs::absolute("e2e_artifacts/AnalyzeReportE2E").string();
  fs::remove_all(artifacts);
  const std::string report = artifacts + "/report.html", screenshot = artifacts + "/report.png";
  RunResult r = run_kiln({"analyze", "--spec", flights_dir() + "/feature_spec.pbtxt", "--data",
                          flights_dir() + "/data/train-*.csv", "--compare", "jfk.csv", "--report", report, "--quiet"},
                         dir.path());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("compared with jfk.csv"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("report " + report), std::string::npos) << r.out;
  const std::vector<std::string> drifted = drifted_features(r.out);
  EXPECT_NE(std::find(drifted.begin(), drifted.end(), "origin"), drifted.end()) << r.out;  // JFK only: 33% -> 100%
  EXPECT_EQ(std::find(drifted.begin(), drifted.end(), "month"), drifted.end()) << r.out;

  FeatureSpec spec;
  io::load_config(flights_dir() + "/feature_spec.pbtxt", spec);
  std::string cmd = shell_quote(python) + " " + shell_quote(source_dir() + "/tests/tools/report_in_browser.py") + " " +
                    shell_quote(report) + " " + shell_quote(screenshot);
  for (const FeatureColumn& f : spec.features()) cmd += " --feature " + shell_quote(f.name());
  cmd += " --feature " + shell_quote(spec.label().column());
  for (const std::string& name : drifted) cmd += " --drifted " + shell_quote(name);
  const std::string log = dir.path() + "/browser.log";
  const int rc = std::system((cmd + " > " + shell_quote(log) + " 2>&1").c_str());
  EXPECT_EQ(rc, 0) << slurp(log);
  EXPECT_TRUE(fs::exists(screenshot)) << slurp(log);
  EXPECT_GT(fs::exists(screenshot) ? fs::file_size(screenshot) : 0, 10000u);
  RecordProperty("screenshot", screenshot);
}

size_t sections(const std::string& page) {
  size_t n = 0;
  for (size_t at = page.find("<section class=\"feature"); at != std::string::npos;
       at = page.find("<section class=\"feature", at + 1))
    ++n;
  return n;
}

TEST(AnalyzeReportE2E, OneDataSetTwoStatesAndMisuse) {
  const std::string babyweight = source_dir() + "/examples/babyweight";
  ASSERT_TRUE(fs::exists(babyweight + "/data/eval.csv")) << "run examples/babyweight/fetch_data.sh first";
  TempDir dir;
  const std::string spec = babyweight + "/feature_spec.pbtxt";
  RunResult r = run_kiln({"analyze", "--spec", spec, "--data", babyweight + "/data/train-*.csv", "--output",
                          "train.pbtxt", "--report", "out/train.html", "--quiet"},
                         dir.path());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string page = slurp(dir.path() + "/out/train.html");
  EXPECT_EQ(sections(page), 13u);  // 12 features and the label
  EXPECT_EQ(page.find("data-distance"), std::string::npos);
  r = run_kiln({"analyze", "--spec", spec, "--data", babyweight + "/data/eval.csv", "--output", "eval.pbtxt", "--quiet"},
               dir.path());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = run_kiln({"analyze", "--compare", "train.pbtxt", "eval.pbtxt", "--report", "states.html", "--drift_threshold",
                "0.5"},
               dir.path());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("weight_pounds (label)  JS"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find(" over "), std::string::npos) << r.out;
  const std::string states = slurp(dir.path() + "/states.html");
  EXPECT_EQ(sections(states), 13u);
  EXPECT_NE(states.find("0 of 11 features above the drift threshold 0.5"), std::string::npos);

  r = run_kiln({"analyze", "--spec", spec, "--data", babyweight + "/data/eval.csv", "--compare", "train.pbtxt",
                "eval.csv"},
               dir.path());
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("--compare takes the other data's CSV files or one TransformState file"), std::string::npos)
      << r.err;
  r = run_kiln({"analyze", "--compare", "train.pbtxt"}, dir.path());
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("--compare alone takes two TransformState files"), std::string::npos) << r.err;
  dir.file("other.csv", "key,is_male\nb1,True\n");
  r = run_kiln({"analyze", "--spec", spec, "--data", babyweight + "/data/eval.csv", "--compare", "other.csv"},
               dir.path());
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("the data (other.csv) has no column"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace kiln::e2e
