#include "io/config_file.h"

#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/text_format.h>
#include <google/protobuf/util/json_util.h>

#include <cctype>
#include <sstream>

#include "core/error.h"
#include "io/atomic_file.h"

namespace kiln::io {

namespace pb = google::protobuf;

namespace {

// Text-format errors carry line:column; the field they are about is the identifier before the
// colon on that line, which we add so the message names it.
class ErrorCollector final : public pb::io::ErrorCollector {
 public:
  ErrorCollector(std::string source, const std::string& text) : source_(std::move(source)) {
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) lines_.push_back(line);
  }
  void AddError(int line, pb::io::ColumnNumber column, const std::string& message) override {
    if (!first_.empty()) return;
    first_ = str_cat(source_, ":", line + 1, ":", column + 1, ": ", message);
    std::string field = field_on_line(line);
    if (!field.empty() && message.find(field) == std::string::npos) first_ += str_cat(" (field '", field, "')");
  }
  const std::string& first() const { return first_; }

 private:
  std::string field_on_line(int line) const {
    if (line < 0 || line >= static_cast<int>(lines_.size())) return "";
    const std::string& l = lines_[line];
    size_t colon = l.find(':');
    if (colon == std::string::npos) return "";
    size_t end = colon;
    while (end > 0 && std::isspace(static_cast<unsigned char>(l[end - 1]))) --end;
    size_t begin = end;
    while (begin > 0 && (std::isalnum(static_cast<unsigned char>(l[begin - 1])) || l[begin - 1] == '_')) --begin;
    return l.substr(begin, end - begin);
  }
  std::string source_;
  std::vector<std::string> lines_;
  std::string first_;
};

bool looks_like_json(const std::string& path, const std::string& text) {
  if (path.size() >= 5 && path.compare(path.size() - 5, 5, ".json") == 0) return true;
  for (char c : text) {
    if (std::isspace(static_cast<unsigned char>(c))) continue;
    return c == '{';
  }
  return false;
}

}  // namespace

void parse_config_text(const std::string& text, const std::string& source_name, pb::Message& message) {
  if (looks_like_json(source_name, text)) {
    pb::util::JsonParseOptions opts;
    opts.ignore_unknown_fields = false;
    auto status = pb::util::JsonStringToMessage(text, &message, opts);
    if (!status.ok()) fail(source_name, ": ", std::string(status.message()));
    return;
  }
  ErrorCollector errors(source_name, text);
  pb::TextFormat::Parser parser;
  parser.RecordErrorsTo(&errors);
  if (!parser.ParseFromString(text, &message)) fail(errors.first().empty() ? source_name + ": parse error" : errors.first());
}

void load_config(const std::string& path, pb::Message& message) {
  std::string text;
  try {
    text = read_file(path);
  } catch (const Error&) {
    fail("config file not found or unreadable: ", path);
  }
  parse_config_text(text, path, message);
}

namespace {

std::string quote_if_string(const pb::FieldDescriptor* f, const std::string& value) {
  if (f->cpp_type() != pb::FieldDescriptor::CPPTYPE_STRING) return value;
  if (value.size() >= 2 && (value.front() == '"' || value.front() == '\'') && value.back() == value.front())
    return value;
  return "\"" + pb::CEscape(value) + "\"";
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : s) {
    if (c == sep) {
      out.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  out.push_back(cur);
  return out;
}

// Parses one field value without protobuf logging to stderr (our error says it all).
bool parse_field_value(const std::string& text, const pb::FieldDescriptor* f, pb::Message* msg) {
  ErrorCollector quiet("", text);
  pb::TextFormat::Parser parser;
  parser.RecordErrorsTo(&quiet);
  return parser.ParseFieldValueFromString(quote_if_string(f, text), f, msg);
}

}  // namespace

void apply_override(const std::string& assignment, pb::Message& root) {
  size_t eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0) fail("--set ", assignment, ": expected path.to.field=value");
  std::string path = assignment.substr(0, eq), value = assignment.substr(eq + 1);
  std::string where = "--set " + path;
  pb::Message* msg = &root;
  std::vector<std::string> parts = split(path, '.');
  for (size_t i = 0; i < parts.size(); ++i) {
    std::string name = parts[i];
    int index = -1;
    size_t bracket = name.find('[');
    if (bracket != std::string::npos) {
      if (name.back() != ']') fail(where, ": malformed index in '", name, "'");
      try {
        index = std::stoi(name.substr(bracket + 1, name.size() - bracket - 2));
      } catch (const std::exception&) {
        fail(where, ": malformed index in '", name, "'");
      }
      name = name.substr(0, bracket);
    }
    const pb::Descriptor* d = msg->GetDescriptor();
    const pb::FieldDescriptor* f = d->FindFieldByName(name);
    if (!f) fail(where, ": ", d->full_name(), " has no field '", name, "'");
    const pb::Reflection* r = msg->GetReflection();
    bool last = i + 1 == parts.size();
    if (!last) {
      if (f->cpp_type() != pb::FieldDescriptor::CPPTYPE_MESSAGE) fail(where, ": '", name, "' is not a message");
      if (f->is_repeated()) {
        if (index < 0) fail(where, ": '", name, "' is repeated; give an index, e.g. ", name, "[0]");
        int size = r->FieldSize(*msg, f);
        if (index > size) fail(where, ": index ", index, " is past the end of '", name, "' (size ", size, ")");
        msg = index == size ? r->AddMessage(msg, f) : r->MutableRepeatedMessage(msg, f, index);
      } else {
        msg = r->MutableMessage(msg, f);
      }
      continue;
    }
    if (index >= 0) fail(where, ": an index is only allowed on repeated message fields along the path");
    if (f->is_repeated()) {
      r->ClearField(msg, f);
      if (!value.empty())
        for (const std::string& item : split(value, ','))
          if (!parse_field_value(item, f, msg))
            fail(where, ": '", item, "' is not a valid ", f->type_name(), " for ", f->full_name());
    } else if (f->cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE) {
      pb::Message* sub = r->MutableMessage(msg, f);
      parse_config_text(value, where, *sub);
    } else if (!parse_field_value(value, f, msg)) {
      fail(where, ": '", value, "' is not a valid ", f->type_name(), " for ", f->full_name());
    }
  }
}

void apply_overrides(const std::vector<std::string>& assignments, pb::Message& message) {
  for (const std::string& a : assignments) apply_override(a, message);
}

}  // namespace kiln::io
