#pragma once
// The parts of the kiln._kiln extension, each defined in its own file and registered by module.cc.
#include <nanobind/nanobind.h>

namespace kiln::python {

void bind_servable(nanobind::module_& m);  // servable_binding.cc
void bind_analysis(nanobind::module_& m);  // analysis_binding.cc
void bind_training(nanobind::module_& m);  // training_binding.cc

}  // namespace kiln::python
