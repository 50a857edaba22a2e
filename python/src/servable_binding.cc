// kiln.Servable's C++ half: an exported version loaded once, predicting raw columns through the
// same Transformer, ModelRunner and postprocessing as kiln serve, so the answers are its bits.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <nanobind/ndarray.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include "core/device_choice.h"
#include "core/error.h"
#include "models/device_config.h"
#include "python/src/bindings.h"
#include "python/src/python_columns.h"
#include "python/src/row_range.h"
#include "runtime/servable.h"
#include "transform/column_rows.h"

namespace nb = nanobind;

namespace kiln::python {

namespace {

// "cpu", "sim[:N]" or "cuda[:N]", as kiln serve --device takes it.
Device device_of(const std::string& name) {
  const size_t colon = name.find(':');
  DeviceChoice::Kind kind = DeviceChoice::CPU;
  switch (parse_device_kind(name.substr(0, colon))) {
    case Device::Kind::cpu: kind = DeviceChoice::CPU; break;
    case Device::Kind::cuda: kind = DeviceChoice::CUDA; break;
    case Device::Kind::sim: kind = DeviceChoice::SIM; break;
  }
  int index = -1;
  if (colon != std::string::npos) {
    const std::string digits = name.substr(colon + 1);
    if (digits.empty() || digits.find_first_not_of("0123456789") != std::string::npos || digits.size() > 4)
      fail("device='", name, "': the index after ':' must be a number >= 0");
    index = std::stoi(digits);
  }
  return models::configured_device(kind, index, "pass device='cpu'");
}

// "default", "fp32", "tf32" or "bf16" (any case), as kiln serve --precision takes it.
Precision::Kind precision_of(const std::string& name) {
  std::string upper = name;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  Precision::Kind kind;
  if (!Precision::Kind_Parse(upper, &kind)) fail("precision='", name, "': choose default, fp32, tf32 or bf16");
  return kind;
}

template <typename T>
nb::object numpy_array(std::vector<T>&& values, int64_t rows, int64_t width) {
  auto* owned = new std::vector<T>(std::move(values));
  nb::capsule owner(owned, [](void* p) noexcept { delete static_cast<std::vector<T>*>(p); });
  const size_t shape[2] = {static_cast<size_t>(rows), static_cast<size_t>(width)};
  return nb::cast(nb::ndarray<nb::numpy, T, nb::ndim<2>>(owned->data(), 2, shape, owner));
}

class ServableHandle {
 public:
  ServableHandle(const std::string& path, const std::string& device, const std::string& precision)
      : servable_(runtime::Servable::load(runtime::resolve_version_dir(path))), device_(device_of(device)) {
    runner_ = std::make_unique<runtime::ModelRunner>(*servable_, device_, precision_of(precision));
  }

  // `given`: name -> float64 array or list of str/None (python/kiln/_columns.py makes them).
  nb::dict predict(const nb::dict& given, int64_t batch_size) {
    if (!servable_->tabular()) fail("this model takes images: pass an array of shape (rows, ", servable_->tensor_elements(), ")");
    if (batch_size < 1) fail("batch_size must be >= 1");
    PythonColumns columns(given);
    const runtime::InputSchema& schema = servable_->schema();
    const int64_t n = columns.rows();
    transform::ColumnRows rows(n, "rows");
    bool with_keys = false;
    std::vector<std::vector<uint8_t>> missing;  // text columns' flags with the NA spellings applied
    for (const runtime::InputColumn& c : schema.columns) {
      if (!columns.has(c.name)) {
        if (!c.is_key) fail("no column '", c.name, "' (the model takes: ", schema.column_list(), ")");
        rows.add_text(c.name, std::vector<std::string_view>(static_cast<size_t>(n)), std::vector<uint8_t>(static_cast<size_t>(n), 1));
        continue;
      }
      with_keys |= c.is_key;
      if (const double* x = columns.numbers(c.name)) {
        if (!c.nullable)
          for (int64_t r = 0; r < n; ++r)
            if (std::isnan(x[r]))
              fail("rows[", r, "].", c.name, ": missing (NaN), but this feature is required (its missing-value policy is DROP_ROW)");
        columns.add_to(rows, c.name);
        continue;
      }
      if (!c.is_string && !c.is_key) fail("column '", c.name, "': the model reads numbers, got text");
      // The training CSV's NA spellings ("", "NA", ...) mean missing, as in a request.
      std::vector<uint8_t> na = columns.missing(c.name);
      const std::vector<std::string_view>& text = columns.text(c.name);
      for (int64_t r = 0; r < n; ++r) {
        auto i = static_cast<size_t>(r);
        if (!na[i] && !c.is_key && schema.is_na_string(text[i])) na[i] = 1;
        if (na[i] && !c.nullable && !c.is_key)
          fail("rows[", r, "].", c.name, ": missing, but this feature is required (its missing-value policy is DROP_ROW)");
      }
      rows.add_text(c.name, text, na);
    }
    Outputs out(servable_->signature());
    {
      nb::gil_scoped_release released;
      std::lock_guard<std::mutex> lock(mutex_);
      for (int64_t b = 0; b < n; b += batch_size) {
        python::RowRange part(rows, b, std::min(n, b + batch_size));
        transform::ModelInputs in = servable_->prepare(part);
        const float* y = runner_->run(in);
        out.append(servable_->postprocess(y, in.batch, runner_->output_width()), in.keys);
      }
    }
    return out.to_python(n, with_keys);
  }

  // Image models: `pixels` [rows, tensor_elements()] raw values.
  nb::dict predict_tensor(nb::ndarray<const float, nb::ndim<2>, nb::c_contig, nb::device::cpu> pixels, int64_t batch_size) {
    if (servable_->tabular()) fail("this model takes columns of raw features, not an array of pixels");
    if (static_cast<int64_t>(pixels.shape(1)) != servable_->tensor_elements())
      fail("pixels: ", pixels.shape(1), " values per row, the model takes ", servable_->tensor_elements());
    if (batch_size < 1) fail("batch_size must be >= 1");
    const auto n = static_cast<int64_t>(pixels.shape(0));
    const int64_t e = servable_->tensor_elements();
    Outputs out(servable_->signature());
    {
      nb::gil_scoped_release released;
      std::lock_guard<std::mutex> lock(mutex_);
      for (int64_t b = 0; b < n; b += batch_size) {
        const int64_t m = std::min(batch_size, n - b);
        transform::ModelInputs in = servable_->prepare_tensor(pixels.data() + b * e, m);
        const float* y = runner_->run(in);
        out.append(servable_->postprocess(y, in.batch, runner_->output_width()), {});
      }
    }
    return out.to_python(n, false);
  }

  nb::list inputs() const {
    nb::list out;
    for (const runtime::InputColumn& c : servable_->schema().columns) {
      nb::dict d;
      d["name"] = c.name;
      d["type"] = c.is_key ? "key" : c.is_string ? "string" : "number";
      d["nullable"] = c.nullable;
      d["delimiter"] = c.multi_valued ? c.delimiter : std::string();
      out.append(d);
    }
    return out;
  }
  std::string name() const { return servable_->name(); }
  int64_t version() const { return servable_->version(); }
  std::string path() const { return servable_->dir(); }
  std::string device() const { return device_.to_string(); }
  bool tabular() const { return servable_->tabular(); }
  std::string precision() const { return precision_name(runner_->precision()); }

 private:
  // The signature's outputs, gathered batch after batch.
  struct Outputs {
    const Signature& sig;
    std::vector<std::vector<float>> f;
    std::vector<std::vector<int64_t>> i;
    std::vector<std::vector<std::string>> s;
    std::vector<int> width;
    std::vector<std::string> keys;
    explicit Outputs(const Signature& signature)
        : sig(signature), f(static_cast<size_t>(sig.outputs_size())), i(f.size()), s(f.size()), width(f.size(), 1) {}
    void append(runtime::Predictions&& p, const std::vector<std::string>& batch_keys) {
      // Predictions are indexed as the signature's outputs, "key" (last) aside (runtime/responses.cc).
      for (size_t k = 0; k < f.size() && k < p.output_width.size(); ++k) {
        if (sig.outputs(static_cast<int>(k)).name() == "key") continue;
        width[k] = p.output_width[k];
        if (p.output_is_string[k]) s[k].insert(s[k].end(), p.string_outputs[k].begin(), p.string_outputs[k].end());
        else if (p.output_is_int[k]) i[k].insert(i[k].end(), p.int_outputs[k].begin(), p.int_outputs[k].end());
        else f[k].insert(f[k].end(), p.float_outputs[k].begin(), p.float_outputs[k].end());
      }
      keys.insert(keys.end(), batch_keys.begin(), batch_keys.end());
    }
    nb::dict to_python(int64_t rows, bool with_keys) {
      nb::dict out;
      for (size_t k = 0; k < f.size(); ++k) {
        const std::string& name = sig.outputs(static_cast<int>(k)).name();
        const std::string& dtype = sig.outputs(static_cast<int>(k)).dtype();
        if (name == "key") {
          if (with_keys) out[name.c_str()] = nb::cast(keys);
        } else if (dtype == "BYTES") {
          out[name.c_str()] = nb::cast(s[k]);
        } else if (dtype == "INT64") {
          out[name.c_str()] = numpy_array(std::move(i[k]), rows, width[k]);
        } else {
          out[name.c_str()] = numpy_array(std::move(f[k]), rows, width[k]);
        }
      }
      return out;
    }
  };

  std::shared_ptr<const runtime::Servable> servable_;
  Device device_;
  std::mutex mutex_;  // one ModelRunner: batches of several Python threads run in turn
  std::unique_ptr<runtime::ModelRunner> runner_;
};

}  // namespace

void bind_servable(nb::module_& m) {
  nb::class_<ServableHandle>(m, "ServableHandle")
      .def(nb::init<const std::string&, const std::string&, const std::string&>(), nb::arg("path"),
           nb::arg("device") = "cpu", nb::arg("precision") = "default")
      .def("predict", &ServableHandle::predict, nb::arg("columns"), nb::arg("batch_size"))
      .def("predict_tensor", &ServableHandle::predict_tensor, nb::arg("pixels"), nb::arg("batch_size"))
      .def_prop_ro("inputs", &ServableHandle::inputs)
      .def_prop_ro("name", &ServableHandle::name)
      .def_prop_ro("version", &ServableHandle::version)
      .def_prop_ro("path", &ServableHandle::path)
      .def_prop_ro("device", &ServableHandle::device)
      .def_prop_ro("tabular", &ServableHandle::tabular)
      .def_prop_ro("precision", &ServableHandle::precision);
}

}  // namespace kiln::python
