// kiln._kiln: the C++ half of the Python package (python/kiln holds the Python half, which turns
// DataFrames, dicts of arrays and lists of dicts into the columns these functions take).
#include <nanobind/nanobind.h>

#include "core/error.h"
#include "python/src/bindings.h"

NB_MODULE(_kiln, m) {
  m.doc() = "Kiln's C++ core: servables, analysis and training (use the kiln package, not this module)";
  // kiln::Error carries the file, row and field of bad input: Python sees it as KilnError.
  static nanobind::exception<kiln::Error> error(m, "KilnError", PyExc_ValueError);
  kiln::python::bind_servable(m);
  kiln::python::bind_analysis(m);
  kiln::python::bind_training(m);
}
