#include "runtime/json_request.h"

#include <simdjson.h>

#include <charconv>
#include <cmath>

#include "core/error.h"
#include "runtime/json_document.h"
#include "runtime/tensor_request_scan.h"

namespace kiln::runtime {

namespace dom = simdjson::dom;

namespace {

const char* type_name(dom::element_type t) {
  switch (t) {
    case dom::element_type::ARRAY: return "an array";
    case dom::element_type::OBJECT: return "an object";
    case dom::element_type::INT64:
    case dom::element_type::UINT64:
    case dom::element_type::DOUBLE: return "a number";
    case dom::element_type::STRING: return "a string";
    case dom::element_type::BOOL: return "a boolean";
    case dom::element_type::NULL_VALUE: return "null";
  }
  return "a value";
}

// A JSON number as the text a CSV would hold: integers exactly, doubles in the shortest form that
// reads back to the same double, so the Transformer parses the very value the client sent.
std::string_view number_text(const dom::element& v, RequestRows& rows) {
  char buf[32];
  std::to_chars_result r;
  switch (v.type()) {
    case dom::element_type::INT64: r = std::to_chars(buf, buf + sizeof buf, int64_t(v)); break;
    case dom::element_type::UINT64: r = std::to_chars(buf, buf + sizeof buf, uint64_t(v)); break;
    default: r = std::to_chars(buf, buf + sizeof buf, double(v)); break;
  }
  return rows.store(std::string_view(buf, static_cast<size_t>(r.ptr - buf)));
}

bool is_number(dom::element_type t) {
  return t == dom::element_type::INT64 || t == dom::element_type::UINT64 || t == dom::element_type::DOUBLE;
}

class TabularParser {
 public:
  TabularParser(const InputSchema& schema, ParsedRequest& out) : schema_(schema), out_(out) {}

  void start(int64_t rows, const char* container) {
    if (rows == 0) fail(container, " is empty");
    std::vector<std::string> names;
    for (const InputColumn& c : schema_.columns) names.push_back(c.name);
    out_.rows.reset(static_cast<int>(schema_.columns.size()), rows, std::move(names), container);
    out_.count = rows;
    container_ = container;
  }

  // One instance object; `context` (classify/regress) fills what the example lacks.
  void row(int64_t r, dom::element v, const dom::object* context) {
    dom::object obj;
    if (v.get_object().get(obj))
      fail(container_, "[", r, "]: expected an object of features, got ", type_name(v.type()));
    for (auto [key, value] : obj) set_named(r, key, value);
    if (context)
      for (auto [key, value] : *context)
        if (int col = schema_.find(key); col < 0 || !out_.rows.present(r, col)) set_named(r, key, value);
    check_complete(r);
  }

  // Columnar: one array per feature.
  void column(std::string_view key, dom::element v) {
    int col = lookup(key);
    if (col < 0) return;
    dom::array values;
    if (v.get_array().get(values))
      fail("inputs.", key, ": expected an array with one value per example, got ", type_name(v.type()));
    if (static_cast<int64_t>(values.size()) != out_.count)
      fail("inputs.", key, ": has ", values.size(), " values, other inputs have ", out_.count);
    int64_t r = 0;
    for (dom::element x : values) {
      if (out_.rows.present(r, col)) fail("inputs.", key, ": given twice");
      set(r, col, x);
      ++r;
    }
  }

  void check_complete(int64_t r) {
    for (size_t c = 0; c < schema_.columns.size(); ++c) {
      if (out_.rows.present(r, static_cast<int>(c))) continue;
      if (schema_.columns[c].is_key) {  // optional: missing, echoed as ""
        out_.rows.set_na(r, static_cast<int>(c));
        continue;
      }
      fail(out_.rows.where(r, static_cast<int>(c)), ": missing (send null for a missing value)");
    }
  }

 private:
  // -1: a field the model does not take (the label, any other column) is ignored, as training
  // ignores CSV columns the FeatureSpec does not use; one policy for requests and kiln predict.
  int lookup(std::string_view key) const { return schema_.find(key); }

  void set_named(int64_t r, std::string_view key, dom::element value) {
    int col = lookup(key);
    if (col < 0) return;
    if (out_.rows.present(r, col)) fail(out_.rows.where(r, col), ": given twice");
    set(r, col, value);
  }

  void set(int64_t r, int col, dom::element v) {
    const InputColumn& c = schema_.columns[static_cast<size_t>(col)];
    RequestRows& rows = out_.rows;
    rows.mark_present(r, col);
    const dom::element_type t = v.type();
    if (t == dom::element_type::NULL_VALUE) {
      if (!c.nullable)
        fail(rows.where(r, col), ": null, but this feature is required (its missing-value policy is DROP_ROW)");
      rows.set_na(r, col);
      return;
    }
    if (!c.is_string) {
      // The training CSV's NA spellings ("", "NA", ...) mean missing here too.
      if (t == dom::element_type::STRING && schema_.is_na_string(v.get_string().value_unsafe())) {
        if (!c.nullable)
          fail(rows.where(r, col), ": '", v.get_string().value_unsafe(), "' means missing, but this feature is required");
        rows.set_na(r, col);
        return;
      }
      if (!is_number(t)) fail(rows.where(r, col), ": expected a number, got ", type_name(t));
      rows.set(r, col, number_text(v, rows));
      return;
    }
    if (t == dom::element_type::STRING) {
      std::string_view s = v.get_string().value_unsafe();
      rows.set(r, col, s);
      if (schema_.is_na_string(s)) {
        if (!c.nullable) fail(rows.where(r, col), ": '", s, "' means missing, but this feature is required");
        rows.set_na(r, col);
      }
    } else if (is_number(t)) {
      rows.set(r, col, number_text(v, rows));
    } else if (t == dom::element_type::ARRAY && c.multi_valued) {
      std::string joined;
      dom::array items;
      if (v.get_array().get(items)) return;
      for (dom::element x : items) {
        if (!joined.empty()) joined += c.delimiter;
        if (x.type() == dom::element_type::STRING) joined += x.get_string().value_unsafe();
        else if (is_number(x.type())) joined += number_text(x, rows);
        else fail(rows.where(r, col), ": array elements must be strings, got ", type_name(x.type()));
      }
      rows.set(r, col, rows.store(joined));
    } else {
      fail(rows.where(r, col), ": expected a string", c.multi_valued ? " or an array of strings" : "", ", got ",
           type_name(t));
    }
  }

  const InputSchema& schema_;
  ParsedRequest& out_;
  const char* container_ = "instances";
};

// Image models: nested arrays of numbers, flattened row-major.
void flatten(dom::element v, std::vector<float>& out, size_t limit, const std::string& where) {
  if (v.type() == dom::element_type::ARRAY) {
    dom::array items;
    if (v.get_array().get(items)) return;
    for (dom::element x : items) flatten(x, out, limit, where);
    return;
  }
  if (!is_number(v.type())) fail(where, ": expected numbers, got ", type_name(v.type()));
  if (out.size() >= limit) fail(where, ": more values than the input's shape holds");
  double d = double(v);
  float f = static_cast<float>(d);
  if (!std::isfinite(f)) fail(where, ": ", d, " is outside the float range");
  out.push_back(f);
}

void parse_tensor_instances(dom::array list, const char* container, const InputSchema& schema,
                            ParsedRequest& out) {
  const std::string& name = schema.columns.at(0).name;
  const size_t n = static_cast<size_t>(schema.tensor_elements);
  out.count = static_cast<int64_t>(list.size());
  if (out.count == 0) fail(container, " is empty");
  out.tensor.reserve(static_cast<size_t>(out.count) * n);
  int64_t r = 0;
  for (dom::element x : list) {
    std::string where = str_cat(container, "[", r, "]");
    if (x.type() == dom::element_type::OBJECT) {
      dom::element inner;
      if (x[name].get(inner)) fail(where, ": expected the input '", name, "'");
      if (x.get_object().value_unsafe().size() != 1) fail(where, ": the model takes one input, '", name, "'");
      x = inner;
      where += "." + name;
    }
    size_t before = out.tensor.size();
    flatten(x, out.tensor, before + n, where);
    if (out.tensor.size() - before != n)
      fail(where, ": has ", out.tensor.size() - before, " values, the input needs ", n);
    ++r;
  }
}

void check_rows(int64_t rows, const RequestLimits& limits, const char* container) {
  if (rows > limits.max_rows) fail(container, " has ", rows, " examples, the limit is ", limits.max_rows);
}

}  // namespace

void parse_tf_request(std::string_view body, TfApi api, const InputSchema& schema, const RequestLimits& limits,
                      ParsedRequest& out) {
  if (api == TfApi::kPredict && schema.tensor() &&
      scan_plain_tensor_instances(body, schema.tensor_elements, limits, out.tensor, out.count))
    return;
  dom::element doc = parse_json_document(body, limits);
  dom::object top;
  if (doc.get_object().get(top)) fail("the request body must be a JSON object, got ", type_name(doc.type()));
  dom::element instances, inputs, examples, context_el;
  const bool has_instances = !top["instances"].get(instances);
  const bool has_inputs = !top["inputs"].get(inputs);
  const bool has_examples = !top["examples"].get(examples);
  for (auto [key, value] : top) {
    (void)value;
    if (key != "instances" && key != "inputs" && key != "examples" && key != "context" && key != "signature_name")
      fail("unknown request field '", key, "'");
  }
  if (api != TfApi::kPredict) {
    if (!has_examples) fail("a ", api == TfApi::kClassify ? "classify" : "regress", " request needs \"examples\"");
    if (schema.tensor()) fail("classify and regress take tabular examples; use predict for this model");
    dom::array list;
    if (examples.get_array().get(list)) fail("examples: expected an array of objects");
    check_rows(static_cast<int64_t>(list.size()), limits, "examples");
    dom::object context;
    bool has_context = !top["context"].get(context_el);
    if (has_context && context_el.get_object().get(context)) fail("context: expected an object of features");
    TabularParser p(schema, out);
    p.start(static_cast<int64_t>(list.size()), "examples");
    int64_t r = 0;
    for (dom::element x : list) p.row(r++, x, has_context ? &context : nullptr);
    return;
  }
  if (has_instances == has_inputs)
    fail("a predict request needs exactly one of \"instances\" (row format) and \"inputs\" (columnar format)");
  if (has_instances) {
    dom::array list;
    if (instances.get_array().get(list)) fail("instances: expected an array, got ", type_name(instances.type()));
    check_rows(static_cast<int64_t>(list.size()), limits, "instances");
    if (schema.tensor()) return parse_tensor_instances(list, "instances", schema, out);
    TabularParser p(schema, out);
    p.start(static_cast<int64_t>(list.size()), "instances");
    int64_t r = 0;
    for (dom::element x : list) p.row(r++, x, nullptr);
    return;
  }
  out.columnar = true;
  if (schema.tensor()) {
    dom::array list;
    if (inputs.type() == dom::element_type::OBJECT) {
      dom::element inner;
      if (inputs[schema.columns[0].name].get(inner) || inputs.get_object().value_unsafe().size() != 1)
        fail("inputs: the model takes one input, '", schema.columns[0].name, "'");
      inputs = inner;
    }
    if (inputs.get_array().get(list)) fail("inputs: expected an array of examples");
    check_rows(static_cast<int64_t>(list.size()), limits, "inputs");
    return parse_tensor_instances(list, "inputs", schema, out);
  }
  dom::object cols;
  if (inputs.get_object().get(cols)) fail("inputs: expected an object with one array per feature");
  int64_t rows = -1;
  for (auto [key, value] : cols) {
    dom::array a;
    if (value.get_array().get(a)) fail("inputs.", key, ": expected an array, got ", type_name(value.type()));
    if (rows < 0) rows = static_cast<int64_t>(a.size());
  }
  if (rows < 0) fail("inputs is empty");
  check_rows(rows, limits, "inputs");
  TabularParser p(schema, out);
  p.start(rows, "inputs");
  for (auto [key, value] : cols) p.column(key, value);
  for (int64_t r = 0; r < rows; ++r) p.check_complete(r);
}

void parse_json_lines(std::string_view text, const std::string& file, const InputSchema& schema,
                      const RequestLimits& limits, ParsedRequest& out) {
  // Rows are parsed one line at a time, so the count comes first.
  std::vector<std::pair<std::string_view, int64_t>> lines;
  int64_t line_no = 0;
  for (size_t pos = 0; pos < text.size();) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    ++line_no;
    std::string_view line = text.substr(pos, end - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.find_first_not_of(" \t") != std::string_view::npos) lines.emplace_back(line, line_no);
    pos = end + 1;
  }
  if (lines.empty()) fail(file, ": no rows");
  TabularParser p(schema, out);
  if (!schema.tensor()) p.start(static_cast<int64_t>(lines.size()), "row");
  for (size_t i = 0; i < lines.size(); ++i) {
    try {
      // Each line gets its own parse: the strings of earlier lines must survive, so they are
      // stored in the rows' arena.
      dom::element doc = parse_json_document(lines[i].first, limits);
      if (schema.tensor()) {
        const size_t n = static_cast<size_t>(schema.tensor_elements);
        dom::element x = doc;
        if (x.type() == dom::element_type::OBJECT) {
          dom::element inner;
          if (x[schema.columns[0].name].get(inner)) fail("expected the input '", schema.columns[0].name, "'");
          x = inner;
        }
        size_t before = out.tensor.size();
        flatten(x, out.tensor, before + n, "row");
        if (out.tensor.size() - before != n) fail("has ", out.tensor.size() - before, " values, the input needs ", n);
        ++out.count;
      } else {
        p.row(static_cast<int64_t>(i), doc, nullptr);
        for (size_t c = 0; c < schema.columns.size(); ++c) {
          int col = static_cast<int>(c);
          out.rows.set(static_cast<int64_t>(i), col, out.rows.store(out.rows.field(static_cast<int64_t>(i), col)));
        }
      }
    } catch (const Error& e) {
      fail(file, ":", lines[i].second, ": ", e.what());
    }
  }
}

}  // namespace kiln::runtime
