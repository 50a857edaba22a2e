// kiln.train's C++ half: `kiln train` in this process. Progress events go to a Python callable
// (the package draws a tqdm bar); Ctrl-C in Python stops the run between steps.
#include <string>
#include <vector>

#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include "core/error.h"
#include "io/config_file.h"
#include "models/device_config.h"
#include "models/kernel_library_config.h"
#include "models/trainer.h"
#include "python/src/bindings.h"
#include "python/src/config_or_text.h"

namespace nb = nanobind;

namespace kiln::python {

namespace {

nb::dict train(const std::string& config_or_path, const std::vector<std::string>& overrides, nb::object on_progress) {
  TrainConfig config = read_config_or_text<TrainConfig>(config_or_path, "train_config");
  io::apply_overrides(overrides, config);
  const Device device = models::configured_device(config.device(), config.device_index(), "pass device='CPU'");
  models::apply_kernel_library(config.kernel_library(), config.kernel_library_overrides());
  models::TrainResult r;
  {
    nb::gil_scoped_release released;
    models::Trainer trainer(config, /*evaluation_only=*/false, device);
    // Always a listener: it keeps stderr quiet and lets a KeyboardInterrupt end the run.
    trainer.set_progress_listener([&on_progress](const models::ProgressEvent& e) {
      nb::gil_scoped_acquire gil;
      if (PyErr_CheckSignals() != 0) throw nb::python_error();
      if (on_progress.is_none()) return;
      nb::dict d;
      d["step"] = e.step;
      d["total"] = e.total;
      d["epoch"] = e.epoch;
      d["loss"] = e.loss;
      d["learning_rate"] = e.learning_rate;
      d["examples_per_second"] = e.examples_per_second;
      d["message"] = e.message;
      on_progress(d);
    });
    r = trainer.run();
  }
  nb::dict out;
  out["steps"] = r.steps;
  out["epochs"] = r.epochs_completed;
  out["early_stopped"] = r.early_stopped;
  out["already_done"] = r.already_done;
  out["examples_per_second"] = r.examples_per_second;
  out["checkpoint"] = r.checkpoint;
  nb::dict metrics;
  for (const auto& [k, v] : r.final_eval) metrics[k.c_str()] = v;
  out["metrics"] = metrics;
  out["output_dir"] = config.output_dir();
  return out;
}

}  // namespace

void bind_training(nb::module_& m) {
  m.def("train", &train, nb::arg("config"), nb::arg("overrides"), nb::arg("on_progress").none());
}

}  // namespace kiln::python
