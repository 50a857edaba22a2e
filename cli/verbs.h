#pragma once
// One file per verb. Each registers its subcommand and returns the action to run when chosen.
#include <CLI/CLI.hpp>
#include <functional>

namespace kiln::cli {

using Action = std::function<int()>;

Action add_analyze(CLI::App& app);
Action add_train(CLI::App& app);
Action add_transform(CLI::App& app);
Action add_evaluate(CLI::App& app);
Action add_tune(CLI::App& app);
Action add_export(CLI::App& app);
Action add_serve(CLI::App& app);
Action add_predict(CLI::App& app);

}  // namespace kiln::cli
