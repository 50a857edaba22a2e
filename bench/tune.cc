// kiln_bench_tune: sample efficiency and suggestion time of kiln tune's suggesters on the
// standard synthetic functions, in process (no trial commands), for bench/run_tune.sh.
//   kiln_bench_tune --function branin|hartmann6 --trials N --seeds S [--algorithm gp|random] [--batch B]
//   kiln_bench_tune --timing 200
// Prints one JSON object: per seed, the best value after each trial (and the suggestion times).
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "tuning/gp_bandit.h"
#include "tuning/suggester.h"

namespace {

using kiln::tuning::Assignment;
using kiln::tuning::ParamValue;

double branin(const std::vector<double>& x) {
  const double a = 1, b = 5.1 / (4 * M_PI * M_PI), c = 5 / M_PI, r = 6, s = 10, t = 1 / (8 * M_PI);
  double u = x[1] - b * x[0] * x[0] + c * x[0] - r;
  return a * u * u + s * (1 - t) * std::cos(x[0]) + s;
}

double hartmann6(const std::vector<double>& x) {
  static const double alpha[4] = {1.0, 1.2, 3.0, 3.2};
  static const double A[4][6] = {{10, 3, 17, 3.5, 1.7, 8},
                                 {0.05, 10, 17, 0.1, 8, 14},
                                 {3, 3.5, 1.7, 10, 17, 8},
                                 {17, 8, 0.05, 10, 0.1, 14}};
  static const double P[4][6] = {{1312, 1696, 5569, 124, 8283, 5886},
                                 {2329, 4135, 8307, 3736, 1004, 9991},
                                 {2348, 1451, 3522, 2883, 3047, 6650},
                                 {4047, 8828, 8732, 5743, 1091, 381}};
  double sum = 0;
  for (int i = 0; i < 4; ++i) {
    double inner = 0;
    for (int j = 0; j < 6; ++j) inner += A[i][j] * (x[j] - 1e-4 * P[i][j]) * (x[j] - 1e-4 * P[i][j]);
    sum += alpha[i] * std::exp(-inner);
  }
  return -sum;
}

struct Problem {
  std::string name;
  std::vector<std::pair<double, double>> bounds;
  double (*f)(const std::vector<double>&);
  double optimum;
};

Problem problem(const std::string& name) {
  if (name == "branin") return {name, {{-5, 10}, {0, 15}}, branin, 0.397887};
  if (name == "hartmann6") return {name, std::vector<std::pair<double, double>>(6, {0.0, 1.0}), hartmann6, -3.32237};
  std::fprintf(stderr, "unknown function %s\n", name.c_str());
  std::exit(2);
}

kiln::StudySpec spec_for(const Problem& p, const std::string& algorithm, uint64_t seed) {
  kiln::StudySpec spec;
  spec.set_goal(kiln::StudySpec::MINIMIZE);
  spec.set_hyperparameter_metric_tag("y");
  spec.set_max_trials(1000);
  spec.set_seed(seed);
  spec.set_algorithm(algorithm == "random" ? kiln::StudySpec::RANDOM : kiln::StudySpec::GP_BANDIT);
  for (size_t i = 0; i < p.bounds.size(); ++i) {
    auto* param = spec.add_params();
    param->set_parameter_name("x" + std::to_string(i));
    param->set_type(kiln::ParameterSpec::DOUBLE);
    param->set_min_value(p.bounds[i].first);
    param->set_max_value(p.bounds[i].second);
  }
  return spec;
}

std::vector<double> point_of(const Assignment& a, size_t dims) {
  std::vector<double> x(dims);
  for (size_t i = 0; i < dims; ++i) x[i] = a.at("x" + std::to_string(i)).number;
  return x;
}

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// One study: best-so-far after each trial, and each suggestion's time.
void run_study(const Problem& p, const std::string& algorithm, int trials, int batch, uint64_t seed, std::vector<double>& best,
               std::vector<double>& times) {
  kiln::StudySpec spec = spec_for(p, algorithm, seed);
  auto suggester = kiln::tuning::make_suggester(spec);
  kiln::tuning::TrialHistory h;
  double b = INFINITY;
  // `batch` suggestions at a time, the earlier ones of a batch pending (max_parallel_trials).
  for (int t = 0; t < trials; t += batch) {
    for (int k = 0; k < batch && t + k < trials; ++k) {
      h.trial_number = t + k;
      auto start = std::chrono::steady_clock::now();
      auto a = suggester->suggest(h);
      times.push_back(seconds_since(start));
      h.pending.push_back(*a);
    }
    for (const Assignment& a : h.pending) {
      double y = p.f(point_of(a, p.bounds.size()));
      h.observed.push_back({a, y});
      b = std::min(b, y);
      best.push_back(b);
    }
    h.pending.clear();
  }
}

// Time of one suggestion with `completed` trials done (Hartmann-6, random points), from a fresh
// suggester (no warm start: the first suggestion a resumed driver makes) and a warm one.
void timing(int completed) {
  Problem p = problem("hartmann6");
  kiln::StudySpec spec = spec_for(p, "gp", 7);
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> u(0, 1);
  kiln::tuning::TrialHistory h;
  for (int i = 0; i < completed; ++i) {
    Assignment a;
    std::vector<double> x(6);
    for (int j = 0; j < 6; ++j) a["x" + std::to_string(j)] = ParamValue::of(x[j] = u(rng));
    h.observed.push_back({a, p.f(x)});
  }
  h.trial_number = completed;
  kiln::tuning::GpBandit gp(spec);
  std::vector<double> cold, warm;
  for (int rep = 0; rep < 3; ++rep) {
    kiln::tuning::GpBandit fresh(spec);
    auto start = std::chrono::steady_clock::now();
    fresh.suggest(h);
    cold.push_back(seconds_since(start));
  }
  gp.suggest(h);
  for (int rep = 0; rep < 3; ++rep) {
    auto start = std::chrono::steady_clock::now();
    gp.suggest(h);
    warm.push_back(seconds_since(start));
  }
  std::sort(cold.begin(), cold.end());
  std::sort(warm.begin(), warm.end());
  std::printf("{\"completed\": %d, \"cold_seconds_median\": %.4f, \"warm_seconds_median\": %.4f}\n", completed, cold[1],
              warm[1]);
}

}  // namespace

int main(int argc, char** argv) {
  std::string function = "branin", algorithm = "gp";
  int trials = 40, seeds = 20, timing_n = 0, batch = 1;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--function") function = v;
    else if (k == "--algorithm") algorithm = v;
    else if (k == "--trials") trials = std::stoi(v);
    else if (k == "--seeds") seeds = std::stoi(v);
    else if (k == "--timing") timing_n = std::stoi(v);
    else if (k == "--batch") batch = std::stoi(v);
    else {
      std::fprintf(stderr, "usage: kiln_bench_tune --function branin|hartmann6 --trials N --seeds S [--algorithm gp|random] [--batch B] | --timing N\n");
      return 2;
    }
  }
  if (timing_n > 0) {
    timing(timing_n);
    return 0;
  }
  Problem p = problem(function);
  std::printf("{\"function\": \"%s\", \"algorithm\": \"kiln_%s\", \"optimum\": %.6f, \"runs\": [\n", function.c_str(),
              algorithm.c_str(), p.optimum);
  for (int s = 0; s < seeds; ++s) {
    std::vector<double> best, times;
    run_study(p, algorithm, trials, batch, static_cast<uint64_t>(s), best, times);
    std::printf("  {\"seed\": %d, \"best\": [", s);
    for (size_t i = 0; i < best.size(); ++i) std::printf("%s%.9g", i ? ", " : "", best[i]);
    std::printf("], \"suggest_seconds\": [");
    for (size_t i = 0; i < times.size(); ++i) std::printf("%s%.4f", i ? ", " : "", times[i]);
    std::printf("]}%s\n", s + 1 < seeds ? "," : "");
    std::fflush(stdout);
  }
  std::printf("]}\n");
  return 0;
}
