// kiln: analyze, train, tune, export, serve, predict — one binary, one verb per file.
#include <cstdio>
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

int main(int argc, char** argv) {
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
    return app.exit(e);
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
