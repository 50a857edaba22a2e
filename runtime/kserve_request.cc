#include "runtime/kserve_request.h"

#include <simdjson.h>

#include <charconv>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "runtime/json_document.h"

namespace kiln::runtime {

namespace dom = simdjson::dom;

namespace {

enum class Kind { kFloat, kSigned, kUnsigned, kBytes };

struct DataType {
  const char* name;
  Kind kind;
  size_t size;  // bytes per element in binary form (BYTES: variable)
};

constexpr DataType kTypes[] = {
    {"FP32", Kind::kFloat, 4},     {"FP64", Kind::kFloat, 8},     {"INT8", Kind::kSigned, 1},
    {"INT16", Kind::kSigned, 2},   {"INT32", Kind::kSigned, 4},   {"INT64", Kind::kSigned, 8},
    {"UINT8", Kind::kUnsigned, 1}, {"UINT16", Kind::kUnsigned, 2}, {"UINT32", Kind::kUnsigned, 4},
    {"UINT64", Kind::kUnsigned, 8}, {"BYTES", Kind::kBytes, 0},
};

const DataType& find_type(std::string_view name, const std::string& input) {
  for (const DataType& t : kTypes)
    if (name == t.name) return t;
  fail("input '", input, "': unsupported datatype '", name,
       "' (FP32, FP64, INT8-64, UINT8-64 or BYTES; FP16, BF16 and BOOL are not accepted)");
}

template <typename T>
T load_le(const char* p) {
  T v;
  std::memcpy(&v, p, sizeof v);  // x86-64 is little-endian, as the protocol
  return v;
}

// One element of an input, decoded from JSON or binary: a number (as double plus its exact text)
// or a string.
struct Element {
  bool is_string = false;
  std::string_view text;  // string value, or the number written as text
  double number = 0;
};

class TensorReader {
 public:
  TensorReader(const std::string& input, const DataType& type, int64_t count) : input_(input), type_(type), count_(count) {}

  void from_json(dom::element data, std::vector<Element>& out, RequestRows& arena) {
    out.reserve(static_cast<size_t>(count_));
    walk(data, out, arena);
    if (static_cast<int64_t>(out.size()) != count_)
      fail("input '", input_, "': data has ", out.size(), " elements, its shape says ", count_);
  }

  void from_binary(std::string_view bytes, std::vector<Element>& out, RequestRows& arena) {
    out.reserve(static_cast<size_t>(count_));
    size_t pos = 0;
    for (int64_t i = 0; i < count_; ++i) {
      Element e;
      if (type_.kind == Kind::kBytes) {
        if (bytes.size() - pos < 4) fail("input '", input_, "': binary BYTES data ends inside element ", i);
        uint32_t n = load_le<uint32_t>(bytes.data() + pos);
        pos += 4;
        if (bytes.size() - pos < n) fail("input '", input_, "': binary BYTES element ", i, " overruns the data");
        e.is_string = true;
        e.text = bytes.substr(pos, n);
        pos += n;
      } else {
        if (bytes.size() - pos < type_.size) fail("input '", input_, "': binary data holds fewer than ", count_, " elements");
        const char* p = bytes.data() + pos;
        pos += type_.size;
        char buf[32];
        std::to_chars_result r;
        if (type_.kind == Kind::kFloat) {
          double d = type_.size == 4 ? static_cast<double>(load_le<float>(p)) : load_le<double>(p);
          if (!std::isfinite(d)) fail("input '", input_, "': element ", i, " is not finite");
          r = type_.size == 4 ? std::to_chars(buf, buf + 32, load_le<float>(p)) : std::to_chars(buf, buf + 32, d);
          e.number = d;
        } else if (type_.kind == Kind::kSigned) {
          int64_t v = type_.size == 1   ? load_le<int8_t>(p)
                      : type_.size == 2 ? load_le<int16_t>(p)
                      : type_.size == 4 ? load_le<int32_t>(p)
                                        : load_le<int64_t>(p);
          r = std::to_chars(buf, buf + 32, v);
          e.number = static_cast<double>(v);
        } else {
          uint64_t v = type_.size == 1   ? load_le<uint8_t>(p)
                       : type_.size == 2 ? load_le<uint16_t>(p)
                       : type_.size == 4 ? load_le<uint32_t>(p)
                                         : load_le<uint64_t>(p);
          r = std::to_chars(buf, buf + 32, v);
          e.number = static_cast<double>(v);
        }
        e.text = arena.store(std::string_view(buf, static_cast<size_t>(r.ptr - buf)));
      }
      out.push_back(e);
    }
    if (pos != bytes.size())
      fail("input '", input_, "': binary_data_size is ", bytes.size(), " bytes, the elements take ", pos);
  }

 private:
  void walk(dom::element v, std::vector<Element>& out, RequestRows& arena) {
    if (v.type() == dom::element_type::ARRAY) {
      dom::array items;
      if (v.get_array().get(items)) return;
      for (dom::element x : items) walk(x, out, arena);
      return;
    }
    if (static_cast<int64_t>(out.size()) >= count_)
      fail("input '", input_, "': data has more elements than its shape ", count_);
    Element e;
    if (type_.kind == Kind::kBytes) {
      if (v.type() != dom::element_type::STRING) fail("input '", input_, "': BYTES data must be strings");
      e.is_string = true;
      e.text = v.get_string().value_unsafe();
    } else {
      char buf[32];
      std::to_chars_result r;
      switch (v.type()) {
        case dom::element_type::INT64: r = std::to_chars(buf, buf + 32, int64_t(v)); e.number = static_cast<double>(int64_t(v)); break;
        case dom::element_type::UINT64: r = std::to_chars(buf, buf + 32, uint64_t(v)); e.number = static_cast<double>(uint64_t(v)); break;
        case dom::element_type::DOUBLE: r = std::to_chars(buf, buf + 32, double(v)); e.number = double(v); break;
        default: fail("input '", input_, "': ", type_.name, " data must be numbers");
      }
      e.text = arena.store(std::string_view(buf, static_cast<size_t>(r.ptr - buf)));
    }
    out.push_back(e);
  }

  const std::string& input_;
  const DataType& type_;
  int64_t count_;
};

}  // namespace

void parse_kserve_request(std::string_view body, size_t json_size, const InputSchema& schema,
                          const RequestLimits& limits, KserveRequest& out) {
  if (json_size > body.size())
    fail("Inference-Header-Content-Length is ", json_size, " but the body has ", body.size(), " bytes");
  dom::element doc = parse_json_document(body.substr(0, json_size), limits);
  dom::object top;
  if (doc.get_object().get(top)) fail("the request must be a JSON object");
  std::string_view binary = body.substr(json_size);

  dom::element x;
  if (!top["id"].get(x)) {
    std::string_view id;
    if (x.get_string().get(id)) fail("id: expected a string");
    out.response.id = std::string(id);
  }
  if (!top["parameters"].get(x)) {
    dom::element b;
    if (x.type() != dom::element_type::OBJECT) fail("parameters: expected an object");
    if (!x["binary_data_output"].get(b)) {
      bool v;
      if (b.get_bool().get(v)) fail("parameters.binary_data_output: expected a boolean");
      out.response.binary_output = v;
    }
  }
  if (!top["outputs"].get(x)) {
    dom::array outs;
    if (x.get_array().get(outs)) fail("outputs: expected an array");
    for (dom::element o : outs) {
      RequestedOutput r;
      std::string_view name;
      if (o["name"].get_string().get(name)) fail("outputs: each entry needs a string \"name\"");
      r.name = std::string(name);
      r.binary = out.response.binary_output;
      dom::element b;
      if (!o["parameters"]["binary_data"].get(b)) {
        bool v;
        if (b.get_bool().get(v)) fail("outputs '", name, "': parameters.binary_data must be a boolean");
        r.binary = v;
      }
      out.response.outputs.push_back(std::move(r));
    }
  }
  dom::array inputs;
  if (top["inputs"].get_array().get(inputs)) fail("inputs: expected an array of tensors");
  if (inputs.size() == 0) fail("inputs is empty");

  ParsedRequest& p = out.parsed;
  RequestRows& rows = p.rows;
  int64_t n = -1;
  size_t binary_pos = 0;
  // Elements are decoded first (the row count comes from the shapes), then placed.
  struct Decoded {
    int col;
    std::vector<Element> values;
  };
  std::vector<Decoded> decoded;
  RequestRows arena;  // owns number texts until they are moved into `rows`
  std::vector<std::string> seen;
  for (dom::element in : inputs) {
    std::string_view name_v, dtype_v;
    if (in["name"].get_string().get(name_v)) fail("inputs: each tensor needs a string \"name\"");
    std::string name(name_v);
    if (in["datatype"].get_string().get(dtype_v)) fail("input '", name, "': needs a string \"datatype\"");
    for (const std::string& s : seen)
      if (s == name) fail("input '", name, "' is given twice");
    seen.push_back(name);
    const DataType& type = find_type(dtype_v, name);
    dom::array shape;
    if (in["shape"].get_array().get(shape) || shape.size() == 0) fail("input '", name, "': needs a non-empty \"shape\"");
    std::vector<int64_t> dims;
    for (dom::element d : shape) {
      int64_t v;
      if (d.get_int64().get(v) || v < 0) fail("input '", name, "': shape must hold non-negative integers");
      dims.push_back(v);
    }
    if (dims[0] > limits.max_rows) fail("input '", name, "': ", dims[0], " examples, the limit is ", limits.max_rows);
    int64_t per_row = 1;
    for (size_t i = 1; i < dims.size(); ++i) {
      if (dims[i] > (int64_t{1} << 31) || per_row > (int64_t{1} << 31)) fail("input '", name, "': shape too large");
      per_row *= dims[i];
    }
    int64_t count = dims[0] * per_row;
    if (count > limits.max_rows * std::max<int64_t>(schema.tensor_elements, 1))
      fail("input '", name, "': ", count, " elements exceed the request limit");
    // Binary data of this input: its size, checked against what is left of the body.
    auto binary_size = [&](dom::element size_el) {
      uint64_t size;
      if (size_el.get_uint64().get(size)) fail("input '", name, "': binary_data_size must be a non-negative integer");
      if (size > binary.size() - binary_pos) fail("input '", name, "': binary_data_size ", size, " overruns the body");
      return size;
    };
    int col = schema.find(name);
    if (col < 0) {  // not a model input (the label, another column): ignored, its binary data skipped
      dom::element size_el;
      if (!in["parameters"]["binary_data_size"].get(size_el)) binary_pos += binary_size(size_el);
      continue;
    }
    if (schema.tensor() ? per_row != schema.tensor_elements : per_row != 1)
      fail("input '", name, "': shape [", dims[0], ", ...] has ", per_row, " elements per example, the model needs ",
           schema.tensor() ? schema.tensor_elements : 1);
    if (n >= 0 && dims[0] != n) fail("input '", name, "': ", dims[0], " examples, other inputs have ", n);
    n = dims[0];
    if (n == 0) fail("input '", name, "': no examples");
    if (schema.tensor() && type.kind == Kind::kBytes) fail("input '", name, "': image data must be numeric, not BYTES");
    TensorReader reader(name, type, count);
    Decoded d{col, {}};
    dom::element data, size_el;
    if (!in["parameters"]["binary_data_size"].get(size_el)) {
      const uint64_t size = binary_size(size_el);
      reader.from_binary(binary.substr(binary_pos, size), d.values, arena);
      binary_pos += size;
    } else if (!in["data"].get(data)) {
      reader.from_json(data, d.values, arena);
    } else {
      fail("input '", name, "': needs \"data\" or parameters.binary_data_size");
    }
    decoded.push_back(std::move(d));
  }
  if (binary_pos != binary.size()) fail("the body has ", binary.size() - binary_pos, " bytes of binary data no input claims");
  if (n < 0) fail("inputs: none of the model's inputs is given (the model takes: ", schema.column_list(), ")");
  p.count = n;
  if (schema.tensor()) {
    p.tensor.reserve(static_cast<size_t>(n * schema.tensor_elements));
    for (const Element& e : decoded.at(0).values) {
      float f = static_cast<float>(e.number);
      if (!std::isfinite(f)) fail("input '", schema.columns[0].name, "': ", e.number, " is outside the float range");
      p.tensor.push_back(f);
    }
    return;
  }
  std::vector<std::string> names;
  for (const InputColumn& c : schema.columns) names.push_back(c.name);
  rows.reset(static_cast<int>(schema.columns.size()), n, std::move(names), "inputs");
  for (const Decoded& d : decoded) {
    const InputColumn& c = schema.columns[static_cast<size_t>(d.col)];
    for (int64_t r = 0; r < n; ++r) {
      const Element& e = d.values[static_cast<size_t>(r)];
      rows.mark_present(r, d.col);
      rows.set(r, d.col, rows.store(e.text));
      if (e.is_string && schema.is_na_string(e.text)) {
        if (!c.nullable) fail(rows.where(r, d.col), ": '", e.text, "' means missing, but this feature is required");
        rows.set_na(r, d.col);
      } else if (e.is_string && !c.is_string && !c.is_key) {
        fail("input '", c.name, "': expected a numeric datatype (FP32, FP64, INT*), got BYTES");
      }
    }
  }
  for (size_t c = 0; c < schema.columns.size(); ++c) {
    if (rows.present(0, static_cast<int>(c))) continue;
    if (!schema.columns[c].is_key) fail("input '", schema.columns[c].name, "' is missing");
    for (int64_t r = 0; r < n; ++r) rows.set_na(r, static_cast<int>(c));  // the optional key
  }
}

}  // namespace kiln::runtime
