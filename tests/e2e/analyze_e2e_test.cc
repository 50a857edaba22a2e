// End-to-end tests of `kiln analyze`: summary, state file, 2 MPI ranks equal 1 process,
// --compare, quantiles against numpy, and bad input (a spec naming a column the data lacks, malformed rows).
#include <gtest/gtest.h>

#include "kiln_process.h"

namespace kiln::e2e {
namespace {

namespace fs = std::filesystem;

std::string flights_dir() { return source_dir() + "/examples/flights"; }

// The state file without its list of analyzed files (which names the inputs).
std::string state_without_files(const std::string& path) {
  std::string text = slurp(path), out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (line.rfind("files:", 0) != 0) out += line + "\n";
  return out;
}

TEST(AnalyzeE2E, SummaryStateFileAndCompare) {
  ASSERT_TRUE(fs::exists(flights_dir() + "/data/eval.csv")) << "run examples/flights/fetch_data.sh first";
  TempDir dir;
  RunResult r = run_kiln({"analyze", "--spec", flights_dir() + "/feature_spec.pbtxt", "--data",
                          flights_dir() + "/data/train-*.csv", "--output", "state.pbtxt"},
                         dir.path());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("rows 294617, 8481 rows left out: 8481 missing label, files 7"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("tailnum"), std::string::npos);
  EXPECT_NE(r.out.find("OOV"), std::string::npos);
  EXPECT_NE(r.out.find("mean "), std::string::npos);
  EXPECT_TRUE(fs::exists(dir.path() + "/state.pbtxt"));
  // The eval split against the training split: small but non-zero distances.
  RunResult e = run_kiln({"analyze", "--spec", flights_dir() + "/feature_spec.pbtxt", "--data",
                          flights_dir() + "/data/eval.csv", "--output", "eval.pbtxt", "--quiet"},
                         dir.path());
  ASSERT_EQ(e.exit_code, 0) << e.err;
  RunResult c = run_kiln({"analyze", "--compare", "state.pbtxt", "eval.pbtxt"}, dir.path());
  ASSERT_EQ(c.exit_code, 0) << c.err;
  EXPECT_NE(c.out.find("carrier                L-inf"), std::string::npos) << c.out;
  EXPECT_NE(c.out.find("dep_delay              JS"), std::string::npos) << c.out;
  RunResult same = run_kiln({"analyze", "--compare", "state.pbtxt", "state.pbtxt"}, dir.path());
  EXPECT_NE(same.out.find("dep_delay              JS     0.000000"), std::string::npos) << same.out;
}

TEST(AnalyzeE2E, TwoMpiRanksEqualOneProcess) {
  ASSERT_TRUE(fs::exists(flights_dir() + "/data/eval.csv")) << "run examples/flights/fetch_data.sh first";
  TempDir dir;
  RunResult one = run_kiln({"analyze", "--spec", flights_dir() + "/feature_spec.pbtxt", "--data",
                            flights_dir() + "/data/train-*.csv", "--output", "one.pbtxt", "--quiet", "--threads", "1"},
                           dir.path());
  ASSERT_EQ(one.exit_code, 0) << one.err;
  std::string cmd = "cd " + shell_quote(dir.path()) +
                    " && OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1 "
                    "mpirun -np 2 " +
                    shell_quote(kiln_binary()) + " analyze --spec " + shell_quote(flights_dir() + "/feature_spec.pbtxt") +
                    " --data " + shell_quote(flights_dir() + "/data/train-*.csv") +
                    " --output two.pbtxt --quiet > mpi.log 2>&1";
  int rc = std::system(cmd.c_str());
  ASSERT_EQ(rc, 0) << slurp(dir.path() + "/mpi.log");
  std::string a = state_without_files(dir.path() + "/one.pbtxt"), b = state_without_files(dir.path() + "/two.pbtxt");
  ASSERT_GT(a.size(), 1000u);
  EXPECT_TRUE(a == b) << "2 ranks produced a different TransformState";
}

// Medians and quantile-bucket boundaries within 0.1% rank error of numpy's on offset, narrow,
// heavy-tailed, duplicate-heavy and constant columns; the same state for any sharding and 2 ranks.
TEST(AnalyzeE2E, QuantilesWithinRankErrorOfNumpy) {
  const char* python = std::getenv("KILN_PYTHON");
  if (!python) GTEST_SKIP() << "KILN_PYTHON (a python with numpy) is not set; scripts/test.sh sets it";
  TempDir dir;
  const std::string cmd = shell_quote(python) + " " + shell_quote(source_dir() + "/tests/tools/quantiles_vs_numpy.py") +
                          " " + shell_quote(kiln_binary()) + " " + shell_quote(dir.path()) + " > " +
                          shell_quote(dir.path() + "/check.log") + " 2>&1";
  const int rc = std::system(cmd.c_str());
  EXPECT_EQ(rc, 0) << slurp(dir.path() + "/check.log");
}

TEST(AnalyzeE2E, BadInputIsNamed) {
  TempDir dir;
  dir.file("data.csv", "a,b,label\n1,x,3\n2,y,4\n3,\"z,5\n");
  // A spec naming a column the data lacks fails before any work, naming the column.
  dir.file("missing.pbtxt", "features { name: 'nope' numeric {} } label { column: 'label' }");
  RunResult r = run_kiln({"analyze", "--spec", "missing.pbtxt", "--data", "data.csv"}, dir.path());
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("has no column 'nope'"), std::string::npos) << r.err;
  // A malformed row fails with file:line when the budget is 0 ...
  dir.file("spec.pbtxt", "features { name: 'a' numeric {} } features { name: 'b' categorical { vocabulary {} } } "
                         "label { column: 'label' }");
  r = run_kiln({"analyze", "--spec", "spec.pbtxt", "--data", "data.csv"}, dir.path());
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("data.csv:4"), std::string::npos) << r.err;
  // ... and is counted and skipped within a budget.
  dir.file("lenient.pbtxt", "csv { max_bad_rows: 5 } features { name: 'a' numeric {} } "
                            "features { name: 'b' categorical { vocabulary {} } } label { column: 'label' }");
  r = run_kiln({"analyze", "--spec", "lenient.pbtxt", "--data", "data.csv"}, dir.path());
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("rows 2, 1 row left out: 1 malformed CSV row"), std::string::npos) << r.out;
  // An unparseable number is a bad row too, named with file:line:column and the feature.
  dir.file("nums.csv", "a,b,label\n1,x,3\nabc,y,4\n");
  r = run_kiln({"analyze", "--spec", "spec.pbtxt", "--data", "nums.csv"}, dir.path());
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("nums.csv:3:1: cannot parse 'abc' as a number for feature 'a'"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace kiln::e2e
