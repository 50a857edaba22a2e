#include "python/src/python_columns.h"

#include <nanobind/ndarray.h>
#include <nanobind/stl/string.h>

#include "core/error.h"

namespace nb = nanobind;

namespace kiln::python {

namespace {

using Float64Column = nb::ndarray<const double, nb::ndim<1>, nb::c_contig, nb::device::cpu>;

}  // namespace

PythonColumns::PythonColumns(const nb::dict& given) {
  for (auto [key, value] : given) {
    Column c;
    c.name = nb::cast<std::string>(key);
    int64_t n = 0;
    Float64Column array;
    // convert=false: an array that is not already float64 and contiguous is the package's bug,
    // never a silent copy here.
    if (nb::try_cast(value, array, /*convert=*/false)) {
      c.numbers = array.data();
      n = static_cast<int64_t>(array.shape(0));
      arrays_.push_back(nb::borrow(value));
    } else if (nb::isinstance<nb::list>(value)) {
      nb::list list = nb::borrow<nb::list>(value);
      n = static_cast<int64_t>(nb::len(list));
      c.text.resize(static_cast<size_t>(n));
      c.na.assign(static_cast<size_t>(n), 0);
      for (int64_t r = 0; r < n; ++r) {
        nb::handle v = list[static_cast<size_t>(r)];
        if (v.is_none()) {
          c.na[static_cast<size_t>(r)] = 1;
        } else if (nb::isinstance<nb::str>(v)) {
          c.text[static_cast<size_t>(r)] = storage_.emplace_back(nb::cast<std::string>(v));
        } else {
          fail("column '", c.name, "' row ", r, ": expected str or None, got ", nb::cast<std::string>(nb::str(v.type())));
        }
      }
    } else {
      fail("column '", c.name, "': expected a float64 array or a list of str");
    }
    if (rows_ >= 0 && n != rows_) fail("column '", c.name, "' has ", n, " rows, column '", columns_.front().name, "' ", rows_);
    rows_ = n;
    columns_.push_back(std::move(c));
  }
  if (rows_ < 0) rows_ = 0;
}

const PythonColumns::Column* PythonColumns::find(const std::string& name) const {
  for (const Column& c : columns_)
    if (c.name == name) return &c;
  return nullptr;
}

const PythonColumns::Column& PythonColumns::at(const std::string& name) const {
  const Column* c = find(name);
  if (!c) fail("no column '", name, "'");
  return *c;
}

const double* PythonColumns::numbers(const std::string& name) const { return at(name).numbers; }
const std::vector<std::string_view>& PythonColumns::text(const std::string& name) const { return at(name).text; }
const std::vector<uint8_t>& PythonColumns::missing(const std::string& name) const { return at(name).na; }

int PythonColumns::add_to(transform::ColumnRows& out, const std::string& name) const {
  const Column& c = at(name);
  if (c.numbers) return out.add_numbers(c.name, c.numbers);
  return out.add_text(c.name, c.text, c.na);
}

}  // namespace kiln::python
