// kiln: analyze, train, tune, export, serve, predict — one binary, one verb per file.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>

#include "cli/verbs.h"
#include "core/communicator.h"
#include "core/error.h"

namespace {
// Errors are one line (docs/cli.md): a message that spans several (a library's report, a
// multi-line statement) has its line breaks replaced, so log scrapers see one record.
std::string one_line(const char* what) {
  std::string out;
  for (const char* p = what; *p; ++p) {
    if (*p != '\n' && *p != '\r') {
      out += *p;
      continue;
    }
    while (!out.empty() && out.back() == ' ') out.pop_back();
    if (!out.empty() && out.back() != ';' && p[1] != '\0') out += ';';
    if (!out.empty() && p[1] != '\0') out += ' ';
    while (p[1] == ' ' || p[1] == '\n' || p[1] == '\r') ++p;
  }
  while (!out.empty() && (out.back() == ' ' || out.back() == ';')) out.pop_back();
  return out;
}

// Under mpirun a rank that fails must end the whole job (the others would wait in their next
// collective), and its message must say which rank it was.
int fail_job(const char* kind, const char* raw_what, int code) {
  const std::string line = one_line(raw_what);
  const char* what = line.c_str();
  kiln::Communicator* comm = kiln::world_if_started();
  if (comm && comm->size() > 1) {
    std::fprintf(stderr, "kiln: %s: %s: %s\n", kind, comm->describe().c_str(), what);
    comm->abort(code);
  }
  std::fprintf(stderr, "kiln: %s: %s\n", kind, what);
  return code;
}
}  // namespace

#ifndef KILN_VERSION
#define KILN_VERSION "0.0.0"
#endif

// OpenMP threads (kernels, oneDNN) that find no work spin before they sleep: libgomp spins
// 300,000 iterations by default. With two trainings on 2 cores (parallel tune trials, CI, a
// shared node) the spinning threads take the cores from the ones with work. Two 1,500-step
// Fashion-MNIST MLP runs at once (2 threads each) against one alone: 4.2x with 10,000 spins,
// 2.7x with 4,000, 2.0x (the fair share) with 2,000 at ~7% on a lone run, 1.7x with 1,000 at ~12%.
// Tiny models get one thread anyway (Trainer's automatic threads). bench/results/
// oversubscription.md. libgomp reads its settings once, when it is loaded, before main: so kiln
// sets the variable and executes itself again (~5 ms), unless the user chose a wait policy.
static void bound_openmp_spinning(char** argv) {
  if (std::getenv("GOMP_SPINCOUNT") || std::getenv("OMP_WAIT_POLICY")) return;
  ::setenv("GOMP_SPINCOUNT", "2000", 1);
  ::execv("/proc/self/exe", argv);
  // No /proc: run on with the default spinning.
}

int main(int argc, char** argv) {
  bound_openmp_spinning(argv);
  CLI::App app{"Kiln: train tabular and image models on CPU or GPU and serve them without training/serving skew"};
  app.set_version_flag("--version", std::string("kiln ") + KILN_VERSION);
  app.require_subcommand(1);
  app.footer("Run 'kiln VERB --help' for a verb's options. Docs: docs/cli.md and docs/config.md.");
  std::vector<kiln::cli::Action> actions;
  actions.push_back(kiln::cli::add_analyze(app));
  actions.push_back(kiln::cli::add_train(app));
  actions.push_back(kiln::cli::add_evaluate(app));
  actions.push_back(kiln::cli::add_transform(app));
  actions.push_back(kiln::cli::add_tune(app));
  actions.push_back(kiln::cli::add_export(app));
  actions.push_back(kiln::cli::add_serve(app));
  actions.push_back(kiln::cli::add_predict(app));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // CLI11 prints the message (or the help) and has a code per kind of mistake (105, 106, ...);
    // scripts get the one docs/cli.md promises for any bad command line.
    return app.exit(e) == 0 ? 0 : 2;
  }
  try {
    auto subs = app.get_subcommands();
    const auto& all = app.get_subcommands({});
    for (size_t i = 0; i < all.size(); ++i)
      if (all[i] == subs.front()) return actions[i]();
  } catch (const kiln::Error& e) {
    return fail_job("error", e.what(), 1);
  } catch (const std::exception& e) {
    return fail_job("internal error", e.what(), 3);
  }
  return 2;
}
